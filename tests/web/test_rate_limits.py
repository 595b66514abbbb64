"""Rate limits: a 429 with Retry-After once a limit is passed (HTML for customers, CoinsPaid's
JSON shape for machines), refused attempts counted on their own, and the processor's signed
callbacks never limited, even in a burst, even from an address that sent refused ones."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import deposit_body, signed_headers
from kit.invoices import ORDER
from kit.site import MERCHANT_SECRET, sql_statements

from checkout import terminal
from checkout.models import Merchant
from checkout.web import ratelimit
from checkout.wire import signing

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "user-7"}


@pytest.fixture
def tight(make_app: Any) -> Flask:
    return make_app(RATELIMIT_LINKS="5 per minute", RATELIMIT_BAD_LINKS="3 per minute",
                    RATELIMIT_STATUS="4 per minute", RATELIMIT_API="3 per minute",
                    RATELIMIT_BAD_CALLBACKS="3 per minute", RATELIMIT_PAGES="4 per minute")


@pytest.fixture
def shop(tight: Flask) -> Merchant:
    from checkout import merchants

    with tight.app_context():
        return merchants.add(merchants.NewMerchant(
            client_id=11, name="Shop", key="test-key-11", secret=MERCHANT_SECRET,
            return_hosts=("shop.example",), frame_origins=(), webhook_url=None))


def test_bad_links_are_limited_on_their_own_with_an_html_429(
        tight: Flask, shop: Merchant) -> None:
    client = tight.test_client()
    forged = {**terminal.encode_link(LINK, MERCHANT_SECRET), "signature": "0" * 128}
    answers = [client.get("/terminal", query_string=forged) for _ in range(4)]
    assert [a.status_code for a in answers] == [403, 403, 403, 429]
    last = answers[-1]
    assert last.mimetype == "text/html" and int(last.headers["Retry-After"]) > 0
    assert "Too many requests" in last.get_data(as_text=True)


def test_the_status_poll_answers_429_past_its_limit(tight: Flask, shop: Merchant) -> None:
    client = tight.test_client()
    codes = [client.get("/p/" + "a" * 32 + "/status").status_code for _ in range(5)]
    assert codes == [404, 404, 404, 404, 429]


def test_the_api_answers_429_in_json_per_key(tight: Flask, shop: Merchant) -> None:
    client = tight.test_client()
    body = b"{}"
    headers = {"X-Processing-Key": "test-key-11", "X-Processing-Signature": "00",
               "Content-Type": "application/json"}
    codes = [client.post("/api/v2/invoices/create", data=body, headers=headers)
             for _ in range(4)]
    assert [c.status_code for c in codes][-1] == 429
    assert codes[-1].get_json() == {"error": "Too many requests", "code": "too_many_requests"}
    assert "Retry-After" in codes[-1].headers
    # Another shop's key is counted apart.
    other = {**headers, "X-Processing-Key": "another-key"}
    assert client.post("/api/v2/invoices/create", data=body, headers=other).status_code == 403


def test_signed_callbacks_are_never_limited_even_after_refused_ones(
        tight: Flask, shop: Merchant) -> None:
    client = tight.test_client()
    bad = [client.post("/callbacks/coinspaid", data=b"{}",
                       headers={"X-Processing-Key": "test-key-11",
                                "X-Processing-Signature": "0" * 128}) for _ in range(4)]
    assert [b.status_code for b in bad] == [403, 403, 403, 429]
    for n in range(50):  # a burst from the same address
        body = deposit_body(1000 + n, "confirmed")
        assert client.post("/callbacks/coinspaid", data=body,
                           headers=signed_headers(body)).status_code == 200
    refused = client.post("/callbacks/coinspaid", data=json.dumps({"id": 1}).encode(),
                          headers={"X-Processing-Key": "test-key-11",
                                   "X-Processing-Signature": "1" * 128})
    assert refused.status_code == 429 and refused.get_json()["code"] == "too_many_requests"


def test_a_callback_s_signature_is_computed_once_per_request(
        tight: Flask, shop: Merchant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The limiter's exemption and the view both need to know whether the processor signed
    the body: one HMAC-SHA512 over it answers both."""
    computed: list[bytes] = []
    real_sign = signing.sign

    def counted_sign(body: bytes, secret: str) -> str:
        computed.append(body)
        return real_sign(body, secret)

    monkeypatch.setattr(signing, "sign", counted_sign)
    client = tight.test_client()
    body = deposit_body(2000, "confirmed")
    headers = signed_headers(body)  # signed before counting starts
    computed.clear()
    assert client.post("/callbacks/coinspaid", data=body, headers=headers).status_code == 200
    assert computed.count(body) == 1
    forged = {**headers, "X-Processing-Signature": "0" * 128}
    computed.clear()
    assert client.post("/callbacks/coinspaid", data=body, headers=forged).status_code == 403
    assert computed.count(body) == 1


def test_the_default_limits_let_a_busy_carrier_nat_through(app: Flask, client: FlaskClient,
                                                           merchant: Merchant) -> None:
    """Three hundred customers behind one address, each polling a minute at 3 s."""
    assert app.config["RATELIMIT_STATUS"] == "20000 per minute"
    codes = {client.get("/p/" + "b" * 32 + "/status").status_code for _ in range(300)}
    assert codes == {404}


# ---------------------------------------------------------------------------------------------
# Refusals counted per address, without refusing the shop's own from that address

CREATE = "/api/v2/invoices/create"
BOT = {"REMOTE_ADDR": "203.0.113.9"}
SHOP_SERVER = {"REMOTE_ADDR": "198.51.100.4"}


@pytest.fixture
def strict(make_app: Any) -> Flask:
    app = make_app(RATELIMIT_BAD_API="5 per minute", RATELIMIT_BAD_LINKS="3 per minute",
                   RATELIMIT_FORMS="2 per minute")
    from checkout import merchants

    with app.app_context():
        merchants.add(merchants.NewMerchant(
            client_id=11, name="Shop", key="test-key-11", secret=MERCHANT_SECRET,
            return_hosts=("shop.example",), frame_origins=(), webhook_url=None))
    return app


def create(client: FlaskClient, key: str, environ: dict[str, str],
           secret: str = MERCHANT_SECRET) -> Any:
    body = json.dumps(ORDER).encode()
    headers = {**signed_headers(body, key=key, secret=secret)}
    return client.post(CREATE, data=body, headers=headers, environ_base=environ)


def test_a_bot_making_up_a_key_per_call_is_limited_per_address_without_lookups(
        strict: Flask) -> None:
    client = strict.test_client()
    codes = [create(client, secrets.token_hex(16), BOT).status_code for _ in range(5)]
    assert codes == [403] * 5
    answer, sent = sql_statements(strict, lambda: create(client, secrets.token_hex(16), BOT))
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0
    assert answer.get_json() == {"error": "Too many requests", "code": "too_many_requests"}
    assert sent == [], "past the limit, no key is looked up"
    # The shop's own server, at another address, is not the bot's neighbour.
    assert create(client, "test-key-11", SHOP_SERVER).status_code == 200
    # A wrong secret with a real key is a refused authentication too.
    assert create(client, "test-key-11", BOT, secret="guess").status_code == 429


def test_a_signed_link_is_served_after_its_addresss_refused_ones(strict: Flask) -> None:
    client = strict.test_client()
    forged = {**terminal.encode_link(LINK, MERCHANT_SECRET), "signature": "0" * 128}
    codes = [client.get("/terminal", query_string=forged).status_code for _ in range(4)]
    assert codes == [403, 403, 403, 429]
    good = client.get("/terminal", query_string=terminal.encode_link(LINK, MERCHANT_SECRET))
    assert good.status_code == 303 and good.headers["Location"].startswith("/p/")
    # The refused are still limited, and a signed link with a mistake of the shop's is its
    # error page, not a 429.
    assert client.get("/terminal", query_string=forged).status_code == 429
    unsupported = terminal.encode_link({**LINK, "currency": "NOPE"}, MERCHANT_SECRET)
    assert client.get("/terminal", query_string=unsupported).status_code == 422


def test_each_customer_form_is_limited(strict: Flask) -> None:
    client = strict.test_client()
    body = json.dumps(ORDER).encode()
    created = client.post(CREATE, data=body, headers=signed_headers(body, key="test-key-11"))
    page = "/p/" + str(created.get_json()["data"]["url"]).rsplit("/", 1)[1]
    for action in ("pick", "email", "again"):
        codes = [client.post(f"{page}/{action}", data={}).status_code for _ in range(3)]
        assert codes == [400, 400, 429], action


def test_a_name_in_the_limits_table_that_no_view_has_stops_the_app(app: Flask) -> None:
    limiter = app.extensions[ratelimit.EXTENSION]
    with pytest.raises(LookupError, match="pages.pik"):
        ratelimit.limit_views(app, limiter, "RATELIMIT_FORMS", "pages.pik")
