"""Payment Terminal links: every variant CoinsPaid's link builders produced is accepted, and
every bad link gets a clear HTML error with the right 4xx status while nothing is created."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from kit.deposits import BTC_ADDRESS, LINK, created, known_address
from kit.returns import BRACKETED
from kit.site import MERCHANT_SECRET
from sqlalchemy import func, select

from checkout import db, terminal
from checkout.models import DepositAddress, Merchant, Page
from checkout.pagekinds import present
from checkout.web import language as i18n
from checkout.web.customer import LINK_STATUS
from checkout.wire import signing

SHOP = Merchant(client_id=11, name="Shop", api_key="k", api_secret=MERCHANT_SECRET,
                return_hosts_json='["shop.example"]', frame_origins_json="[]")
VALID = {"client_id": 11, "currency": "BTC", "foreign_id": "user-7", "amount": "0.00123",
         "convert_to": "EUR", "is_iframe": False, "url_back": "https://shop.example/back"}


def json_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def b64(text: str | bytes, *, urlsafe: bool = False, padded: bool = True) -> str:
    raw = text.encode() if isinstance(text, str) else text
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return encoded if padded else encoded.rstrip("=")


def query(payload: dict[str, Any], secret: str = MERCHANT_SECRET, **variant: bool
          ) -> dict[str, str]:
    text = json_text(payload)
    return {"data": b64(text, **variant), "signature": signing.sign(text.encode(), secret)}


def decode(data: str | None, signature: str | None) -> terminal.TerminalLink:
    return terminal.decode_link(
        data, signature, find_merchant=lambda cid: SHOP if cid == 11 else None,
        currency_places=present.deposit_places,
        convert_supported=present.is_conversion_currency)


# Hypothesis reruns a test many times, so it gets a plain app with translations, not a fixture.
BARE_APP = Flask(__name__)
i18n.init_app(BARE_APP)


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    with app.test_request_context():
        yield


# A foreign_id whose JSON encodes to base64 with both "+" and "/" (the URL-unsafe letters).
def _awkward_payload() -> dict[str, Any]:
    rng = random.Random(7)
    for _ in range(10_000):
        payload = {**VALID, "foreign_id": "".join(rng.choice("?>~}|{o") for _ in range(7))}
        encoded = b64(json_text(payload))
        if "+" in encoded and "/" in encoded and encoded.endswith("="):
            return payload
    raise AssertionError("no awkward payload found")


AWKWARD = _awkward_payload()


# ---------------------------------------------------------------- accepted variants


@pytest.mark.parametrize(("urlsafe", "padded"), [
    (False, True), (False, False), (True, True), (True, False)])
def test_standard_and_url_safe_base64_with_or_without_padding(
        ctx: None, urlsafe: bool, padded: bool) -> None:
    q = query(AWKWARD, urlsafe=urlsafe, padded=padded)
    link = decode(q["data"], q["signature"])
    assert link.foreign_id == AWKWARD["foreign_id"]
    assert link.digest == hashlib.sha256(json_text(AWKWARD).encode()).hexdigest()


def test_a_plus_that_arrived_as_a_space_is_restored(ctx: None) -> None:
    q = query(AWKWARD)
    assert decode(q["data"].replace("+", " "), q["signature"]).foreign_id == AWKWARD["foreign_id"]


def test_the_same_json_gives_the_same_digest_whatever_the_encoding(ctx: None) -> None:
    digests = {decode(**query(AWKWARD, urlsafe=u, padded=p)).digest  # type: ignore[misc]
               for u in (True, False) for p in (True, False)}
    assert len(digests) == 1


def test_an_uppercase_hex_signature_is_the_same_signature(ctx: None) -> None:
    q = query(VALID)
    assert decode(q["data"], q["signature"].upper()).currency == "BTC"


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("client_id", 11, 11), ("client_id", "11", 11),
    ("foreign_id", "abc", "abc"), ("foreign_id", 12345, "12345"),
    ("is_iframe", True, True), ("is_iframe", "true", True), ("is_iframe", "1", True),
    ("is_iframe", 1, True), ("is_iframe", False, False), ("is_iframe", "false", False),
    ("is_iframe", 0, False), ("is_iframe", "0", False),
    ("amount", "0.00123", Decimal("0.00123")), ("amount", 2, Decimal(2)),
    ("amount", None, None), ("currency", "btc", "BTC"), ("convert_to", "eur", "EUR"),
    ("is_iframe", None, False), ("convert_to", None, None), ("convert_to", "", None),
    ("url_back", None, None), ("url_back", "", None),
])
def test_fields_in_every_documented_form(ctx: None, field: str, value: Any,
                                         expected: Any) -> None:
    payload = {**VALID, field: value}
    link = decode(**query(payload))
    got = {"client_id": link.merchant.client_id}.get(field, getattr(link, field, None))
    assert got == expected


def test_a_json_number_amount_is_read_as_a_decimal_never_a_float(ctx: None) -> None:
    text = '{"client_id":11,"currency":"BTC","foreign_id":"x","amount":0.1}'
    link = decode(b64(text), signing.sign(text.encode(), MERCHANT_SECRET))
    assert link.amount == Decimal("0.1") and isinstance(link.amount, Decimal)


def test_optional_fields_may_be_left_out(ctx: None) -> None:
    link = decode(**query({"client_id": 11, "currency": "XRP", "foreign_id": "u"}))
    assert (link.amount, link.convert_to, link.is_iframe, link.url_back) == (
        None, None, False, None)


# ---------------------------------------------------------------- refused links (unit)


@given(st.text(max_size=200))
def test_any_data_text_is_decoded_or_refused_with_a_link_error(text: str) -> None:
    try:
        terminal.decode_data(text)
    except terminal.LinkError as exc:
        assert LINK_STATUS[exc.fault] == 400


@given(st.dictionaries(st.sampled_from(["client_id", "currency", "foreign_id", "amount",
                                         "convert_to", "is_iframe", "url_back", "other"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                                 st.lists(st.integers(), max_size=2)), max_size=8))
def test_any_signed_payload_is_accepted_or_refused_with_a_4xx(payload: dict[str, Any]) -> None:
    with BARE_APP.test_request_context():
        try:
            link = decode(**query({"client_id": 11, **payload}))
        except terminal.LinkError as exc:
            assert 400 <= LINK_STATUS[exc.fault] < 500
        else:
            assert link.merchant is SHOP


# Unicode categories str.isprintable() refuses (controls, format, unassigned, separators).
PRINTABLE_NOT = ("Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp", "Zs")


@given(foreign_id=st.one_of(
           st.integers(0, 10**12),
           st.text(st.characters(blacklist_categories=PRINTABLE_NOT), min_size=1, max_size=40)),
       amount=st.one_of(st.none(), st.decimals(min_value="0.00000001", max_value="1000000",
                                               places=8)),
       is_iframe=st.sampled_from([True, False, "true", "false", 1, 0]),
       urlsafe=st.booleans(), padded=st.booleans(), ascii_only=st.booleans())
def test_any_valid_link_decodes_to_what_the_shop_signed(
        foreign_id: int | str, amount: Decimal | None, is_iframe: Any, urlsafe: bool,
        padded: bool, ascii_only: bool) -> None:
    payload = {"client_id": 11, "currency": "BTC", "foreign_id": foreign_id,
               "is_iframe": is_iframe}
    if amount is not None and amount > 0:
        payload["amount"] = format(amount, "f")
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=ascii_only)
    with BARE_APP.test_request_context():
        link = decode(b64(text, urlsafe=urlsafe, padded=padded),
                      signing.sign(text.encode(), MERCHANT_SECRET))
    assert link.foreign_id == str(foreign_id)
    assert link.amount == (Decimal(payload["amount"]) if "amount" in payload else None)
    assert link.is_iframe is (is_iframe in (True, "true", 1))
    assert link.digest == hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- refused links (routes)


def _tamper(q: dict[str, str]) -> dict[str, str]:
    text = base64.b64decode(q["data"]).decode().replace("0.00123", "0.00001")
    return {"data": b64(text), "signature": q["signature"]}


def _signed_text(text: str) -> dict[str, str]:
    return {"data": b64(text), "signature": signing.sign(text.encode(), MERCHANT_SECRET)}


GOOD = query(VALID)
BAD_LINKS: list[tuple[str, dict[str, Any], int]] = [
    ("no query values", {"data": ""}, 400),
    ("no data", {"signature": GOOD["signature"]}, 400),
    ("no signature", {"data": GOOD["data"]}, 400),
    ("empty signature", {"data": GOOD["data"], "signature": ""}, 400),
    ("data is not base64", {"data": "!!!not base64!!!", "signature": GOOD["signature"]}, 400),
    ("data is one base64 letter short", {"data": GOOD["data"].rstrip("=")[:-1],
                                         "signature": GOOD["signature"]}, 400),
    ("data is not JSON", _signed_text("client_id=11&currency=BTC"), 400),
    ("data is a JSON list", _signed_text("[11, \"BTC\"]"), 400),
    ("data is not UTF-8", {"data": b64(b"\xff\xfe{}"), "signature": GOOD["signature"]}, 400),
    ("JSON with NaN", _signed_text('{"client_id":11,"currency":"BTC","foreign_id":"x",'
                                   '"amount":NaN}'), 400),
    ("data too long", {"data": "A" * 9000, "signature": GOOD["signature"]}, 400),
    ("wrong secret", query(VALID, "another-secret"), 403),
    ("signature of the base64 text", {"data": GOOD["data"], "signature": signing.sign(
        GOOD["data"].encode(), MERCHANT_SECRET)}, 403),
    ("signature truncated", {"data": GOOD["data"], "signature": GOOD["signature"][:-2]}, 403),
    ("signature not hex", {"data": GOOD["data"], "signature": "zz" * 64}, 403),
    ("signature in base64", {"data": GOOD["data"], "signature": base64.b64encode(
        bytes.fromhex(GOOD["signature"])).decode()}, 403),
    ("tampered amount", _tamper(GOOD), 403),
    ("re-serialised JSON", {"data": b64(json.dumps(VALID)), "signature": GOOD["signature"]},
     403),
    ("unknown merchant", query({**VALID, "client_id": 999}), 404),
    ("negative merchant", query({**VALID, "client_id": -11}), 404),
    ("client_id missing", query({k: v for k, v in VALID.items() if k != "client_id"}), 400),
    ("client_id text", query({**VALID, "client_id": "eleven"}), 400),
    ("client_id boolean", query({**VALID, "client_id": True}), 400),
    ("client_id fraction", _signed_text('{"client_id":11.5,"currency":"BTC","foreign_id":"x"}'),
     400),
    ("currency missing", query({k: v for k, v in VALID.items() if k != "currency"}), 422),
    ("currency unknown", query({**VALID, "currency": "DOGGY"}), 422),
    ("currency a number", query({**VALID, "currency": 5}), 422),
    ("currency fiat", query({**VALID, "currency": "EUR"}), 422),
    ("convert_to unknown", query({**VALID, "convert_to": "XYZ"}), 422),
    ("convert_to hostile", query({**VALID, "convert_to": "EUR;DROP"}), 422),
    ("foreign_id missing", query({k: v for k, v in VALID.items() if k != "foreign_id"}), 400),
    ("foreign_id empty", query({**VALID, "foreign_id": ""}), 400),
    ("foreign_id boolean", query({**VALID, "foreign_id": True}), 400),
    ("foreign_id null", query({**VALID, "foreign_id": None}), 400),
    ("foreign_id with newline", query({**VALID, "foreign_id": "a\nb"}), 400),
    ("foreign_id too long", query({**VALID, "foreign_id": "x" * 256}), 400),
    ("foreign_id an object", query({**VALID, "foreign_id": {"id": 1}}), 400),
    ("amount negative", query({**VALID, "amount": "-1"}), 400),
    ("amount zero", query({**VALID, "amount": "0"}), 400),
    ("amount exponent", query({**VALID, "amount": "1e3"}), 400),
    ("amount NaN text", query({**VALID, "amount": "NaN"}), 400),
    ("amount words", query({**VALID, "amount": "ten"}), 400),
    ("amount with comma", query({**VALID, "amount": "0,001"}), 400),
    ("amount more places than BTC has", query({**VALID, "amount": "0.000000001"}), 400),
    ("amount boolean", query({**VALID, "amount": True}), 400),
    # The shop and we could read a repeated key differently (the last one wins here, the
    # first in some parsers): the signed text must mean one thing.
    ("client_id repeated", _signed_text('{"client_id":11,"client_id":12,"currency":"BTC",'
                                        '"foreign_id":"x"}'), 400),
    ("amount repeated", _signed_text('{"client_id":11,"currency":"BTC","foreign_id":"x",'
                                     '"amount":"0.001","amount":"0.0001"}'), 400),
    ("currency repeated", _signed_text('{"client_id":11,"currency":"BTC","currency":"LTC",'
                                       '"foreign_id":"x"}'), 400),
    ("a nested key repeated", _signed_text('{"client_id":11,"currency":"BTC","foreign_id":"x",'
                                           '"extra":{"a":1,"a":2}}'), 400),
    ("currency with trailing space", query({**VALID, "currency": "BTC "}), 422),
    ("currency with a tab", query({**VALID, "currency": "\tBTC"}), 422),
    ("convert_to with trailing space", query({**VALID, "convert_to": "EUR "}), 422),
    ("is_iframe nonsense", query({**VALID, "is_iframe": "maybe"}), 400),
    ("is_iframe 2", query({**VALID, "is_iframe": 2}), 400),
] + [
    (f"url_back {url!r}", query({**VALID, "url_back": url}), 400) for url in [
        "https://evil.example/", "javascript:alert(document.domain)", "//evil.example/",
        "https://shop.example@evil.example/", "https://evil.example\\@shop.example/",
        "https:\\\\evil.example", "https://shоp.example/", "https://shop.example:8080/",
        "https://shop.example.evil.example/", "data:text/html,hi", "/relative", 42,
    ]
]


def _counts(app: Flask) -> tuple[int, int]:
    with app.app_context():
        s = db.session()
        return (s.scalar(select(func.count()).select_from(Page)) or 0,
                s.scalar(select(func.count()).select_from(DepositAddress)) or 0)


@pytest.mark.parametrize(("why", "params", "status"), BAD_LINKS, ids=[c[0] for c in BAD_LINKS])
def test_a_bad_link_gets_a_clear_error_page_and_creates_nothing(
        app: Flask, client: FlaskClient, merchant: Merchant, why: str,
        params: dict[str, Any], status: int) -> None:
    # `/` and `/terminal` are the same handler; each bad link goes to one of them.
    path = "/" if BAD_LINKS.index((why, params, status)) % 2 else "/terminal"
    response = client.get(path, query_string=params)
    assert response.status_code == status, why
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    assert "We cannot open this payment" in page
    assert MERCHANT_SECRET not in page
    assert _counts(app) == (0, 0)


def test_a_repeated_data_or_signature_value_is_refused(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    for params in ([("data", GOOD["data"]), ("data", GOOD["data"]),
                    ("signature", GOOD["signature"])],
                   [("data", GOOD["data"]), ("signature", GOOD["signature"]),
                    ("signature", "0" * 128)]):
        response = client.get("/terminal", query_string=params)
        assert response.status_code == 400
    assert _counts(app) == (0, 0)


def test_the_root_without_a_link_is_a_neutral_landing_page(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "payment link the shop gave you" in response.get_data(as_text=True)


def test_an_unknown_page_is_an_html_404(client: FlaskClient) -> None:
    for path in ("/p/nope", "/p/nope/status", "/p/nope/qr.svg", "/p/" + "x" * 100):
        response = client.get(path)
        assert response.status_code == 404
        assert response.mimetype == "text/html"


def signed(text: str) -> dict[str, str]:
    return {"data": base64.b64encode(text.encode()).decode(),
            "signature": signing.sign(text.encode(), MERCHANT_SECRET)}




@pytest.mark.parametrize("url", BRACKETED[:2])
def test_a_link_whose_url_back_has_brackets_gets_a_400_page(
        app: Flask, client: FlaskClient, merchant: Merchant, url: str) -> None:
    response = client.get("/terminal", query_string=terminal.encode_link(
        {**LINK, "url_back": url}, MERCHANT_SECRET))
    assert response.status_code == 400
    assert "not the shop" in response.get_data(as_text=True)
    assert created(app) == (0, 0)


@pytest.mark.parametrize(("foreign_id", "accepted"), [
    (int("9" * 255), True), (int("9" * 256), False), (-(10 ** 253), True),
    (-(10 ** 254), False)], ids=["255 digits", "256 digits", "minus and 254", "minus and 255"])
def test_a_numeric_foreign_id_has_the_same_255_character_bound_as_text(
        app: Flask, foreign_id: int, accepted: bool) -> None:
    """The column is VARCHAR(255): a longer id would be taken at the processor, then fail
    to store on PostgreSQL."""
    shop = Merchant(client_id=11, name="Shop", api_key="k", api_secret=MERCHANT_SECRET,
                    return_hosts_json="[]", frame_origins_json="[]")
    query = terminal.encode_link({**LINK, "foreign_id": foreign_id, "url_back": None},
                                 MERCHANT_SECRET)
    with app.test_request_context():
        try:
            link = terminal.decode_link(query["data"], query["signature"],
                                        find_merchant=lambda cid: shop,
                                        currency_places=lambda code: 8,
                                        convert_supported=lambda code: True)
        except terminal.LinkError as exc:
            assert not accepted and LINK_STATUS[exc.fault] == 400
        else:
            assert accepted and link.foreign_id == str(foreign_id)


@pytest.mark.parametrize("number", ["1e20000000", "1E-20000000", "0e-20000000"])
def test_an_amount_with_a_huge_exponent_is_refused_without_spelling_it_out(
        app: Flask, client: FlaskClient, merchant: Merchant, number: str) -> None:
    """PHP's json_encode writes small floats as 1.0e-5, so exponent numbers are read; one of
    a billion digits must not cost a gigabyte before it is refused."""
    text = f'{{"client_id":11,"currency":"BTC","foreign_id":"u","amount":{number}}}'
    tracemalloc.start()
    try:
        response = client.get("/terminal", query_string=signed(text))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 400
    assert "invalid amount" in response.get_data(as_text=True)
    assert peak < 4_000_000, f"{peak} bytes to refuse one amount"
    assert created(app) == (0, 0)


# (Above BTC's minimum deposit in the sandbox, 0.0001: a smaller amount is refused as such.)
@pytest.mark.parametrize(("number", "amount"), [("1.0e-3", "0.001"), ("2E+1", "20"),
                                                 ("12", "12")])
def test_exponent_numbers_within_bounds_still_open_a_page(
        app: Flask, client: FlaskClient, merchant: Merchant, number: str, amount: str) -> None:
    known_address(app, "BTC", BTC_ADDRESS)
    text = f'{{"client_id":11,"currency":"BTC","foreign_id":"u","amount":{number}}}'
    response = client.get("/terminal", query_string=signed(text))
    assert response.status_code == 303
    assert client.get(response.headers["Location"] + "/status").get_json()["amount"] == amount


@pytest.mark.parametrize("json_text", ["[" * 3000 + "]" * 3000, '{"":' * 1200 + "1" + "}" * 1200,
                                       '{"client_id":11,"x":' + "[" * 2500 + "]" * 2500 + "}"])
def test_deeply_nested_json_is_a_damaged_link_not_a_server_error(
        app: Flask, client: FlaskClient, merchant: Merchant, json_text: str) -> None:
    """Read before any signature is checked: anyone could raise a 500 with one GET."""
    data = base64.urlsafe_b64encode(json_text.encode()).decode()
    assert len(data) <= terminal.MAX_DATA
    response = client.get("/terminal", query_string={"data": data, "signature": "0" * 128})
    assert response.status_code == 400
    assert "damaged" in response.get_data(as_text=True)
    assert created(app) == (0, 0)
