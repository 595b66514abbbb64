"""Review of the customer page, its links, returns and iframe mode: each case here is a
defect that was found and fixed, stated as the behaviour customers and shops rely on."""

from __future__ import annotations

import base64
import re
import tracemalloc
from datetime import timedelta
from typing import Any

import pytest
from conftest import MERCHANT_SECRET
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from checkout import clock, db, returns, signing, terminal
from checkout.models import DepositAddress, Merchant, Page, RateQuote
from checkout.pages import LINK_STATUS

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "user-7", "amount": "0.00123",
        "convert_to": "EUR", "url_back": "https://shop.example/back"}
HOSTS = ["shop.example"]
BTC_ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
SHOP_FRAMES = "frame-ancestors https://shop.example"


def signed(text: str) -> dict[str, str]:
    return {"data": base64.b64encode(text.encode()).decode(),
            "signature": signing.sign(text.encode(), MERCHANT_SECRET)}


def created(app: Flask) -> tuple[int, int]:
    with app.app_context():
        s = db.session()
        return (s.scalar(select(func.count()).select_from(Page)) or 0,
                s.scalar(select(func.count()).select_from(DepositAddress)) or 0)


def known_address(app: Flask, currency: str, address: str, tag: str | None = None) -> None:
    with app.app_context(), db.transaction() as s:
        s.add(DepositAddress(merchant_id=11, foreign_id="u", currency=currency, convert_to="",
                             address=address, tag=tag))
        s.add(RateQuote(currency_from=currency, currency_to="EUR", rate="1",
                        fetched_at=clock.now()))


# ---------------------------------------------------------------- return URLs


BRACKETED = ["https://shop.example]/", "https://[shop.example]/", "https://shop.example[/",
             "https://[shop.example/", "http://[::1]:80]/", "https://]shop.example/"]


@pytest.mark.parametrize("url", BRACKETED)
def test_a_bracket_in_the_host_is_a_refused_return_url_not_a_crash(url: str) -> None:
    with pytest.raises(returns.ReturnUrlError):
        returns.check(url, HOSTS)


@pytest.mark.parametrize("url", BRACKETED[:2])
def test_a_link_whose_url_back_has_brackets_gets_a_400_page(
        app: Flask, client: FlaskClient, merchant: Merchant, url: str) -> None:
    response = client.get("/terminal", query_string=terminal.encode_link(
        {**LINK, "url_back": url}, MERCHANT_SECRET))
    assert response.status_code == 400
    assert "not the shop" in response.get_data(as_text=True)
    assert created(app) == (0, 0)


# ---------------------------------------------------------------- link fields


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


# ---------------------------------------------------------------- iframe errors


def framing(response: Any) -> tuple[str, str | None, bool]:
    csp = response.headers["Content-Security-Policy"]
    ancestors = csp[csp.index("frame-ancestors"):]
    compact = 'class="compact"' in response.get_data(as_text=True)
    return ancestors, response.headers.get("X-Frame-Options"), compact


@pytest.mark.parametrize(("why", "payload", "status"), [
    ("unsupported currency", {**LINK, "currency": "DOGGY"}, 422),
    ("conversion not supported", {**LINK, "convert_to": "XYZ"}, 422),
    ("url_back not the shop's", {**LINK, "url_back": "https://evil.example/"}, 400),
    ("invalid amount", {**LINK, "amount": "-1"}, 400),
    ("no order reference", {**LINK, "foreign_id": ""}, 400),
])
def test_an_iframe_link_the_shop_signed_shows_its_error_inside_the_shops_frame(
        app: Flask, client: FlaskClient, merchant: Merchant, why: str,
        payload: dict[str, Any], status: int) -> None:
    """A refused frame is a blank box in the shop's modal: the customer never reads why."""
    query = terminal.encode_link({**payload, "is_iframe": True}, MERCHANT_SECRET)
    response = client.get("/terminal", query_string=query)
    assert response.status_code == status, why
    assert framing(response) == (SHOP_FRAMES, None, True)
    assert response.headers["Cache-Control"] == "no-store"
    assert created(app) == (0, 0)


@pytest.mark.parametrize(("why", "query"), [
    ("not iframe", terminal.encode_link({**LINK, "currency": "DOGGY"}, MERCHANT_SECRET)),
    ("wrong signature", terminal.encode_link({**LINK, "currency": "DOGGY", "is_iframe": True},
                                             "not-the-secret")),
    ("unknown merchant", terminal.encode_link({**LINK, "client_id": 12, "is_iframe": True},
                                              MERCHANT_SECRET)),
    ("malformed flag", terminal.encode_link({**LINK, "is_iframe": "maybe"}, MERCHANT_SECRET)),
])
def test_other_error_pages_still_refuse_every_frame(
        app: Flask, client: FlaskClient, merchant: Merchant, why: str,
        query: dict[str, str]) -> None:
    response = client.get("/terminal", query_string=query)
    assert 400 <= response.status_code < 500, why
    assert framing(response) == ("frame-ancestors 'none'", "DENY", False)


def test_the_retry_page_of_an_iframe_link_shows_inside_the_shops_frame(
        make_app: Any, merchant: Merchant) -> None:
    app = make_app(PROCESSOR_URL="http://127.0.0.1:9/api/v2", PROCESSOR_TIMEOUT=0.5)
    client = app.test_client()
    framed = client.get("/terminal", query_string=terminal.encode_link(
        {**LINK, "is_iframe": True}, MERCHANT_SECRET))
    assert framed.status_code == 503 and "Try again" in framed.get_data(as_text=True)
    assert framing(framed) == (SHOP_FRAMES, None, True)
    full = client.get("/terminal", query_string=terminal.encode_link(LINK, MERCHANT_SECRET))
    assert full.status_code == 503
    assert framing(full) == ("frame-ancestors 'none'", "DENY", False)
    assert created(app) == (0, 0)


# ---------------------------------------------------------------- the wallet link


def page_html(client: FlaskClient, currency: str, **extra: Any) -> str:
    query = terminal.encode_link({"client_id": 11, "currency": currency, "foreign_id": "u",
                                  **extra}, MERCHANT_SECRET)
    response = client.get("/terminal", query_string=query)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return client.get(response.headers["Location"]).get_data(as_text=True)


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


@pytest.mark.parametrize(("currency", "address", "tag"), [
    ("USDTT", "TFpdNXBtw55yS7bExnbtYZcAdvtT18tq9u", None),
    ("TRX", "TFpdNXBtw55yS7bExnbtYZcAdvtT18tq9u", None),
    ("BNB", "bnb136ns6lfw4zs5hg4n85vdthaad7hq5m4gtkgf23", "104587"),
    ("ADA", "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq"
            "835lu7drv2xwl2wywfgse35a3x", None),
])
def test_a_currency_without_a_wallet_uri_shows_its_qr_without_a_link(
        app: Flask, client: FlaskClient, merchant: Merchant, currency: str, address: str,
        tag: str | None) -> None:
    """A bare address in an href is a relative URL: "Open in your wallet" led to our 404."""
    known_address(app, currency, address, tag)
    html = page_html(client, currency, amount="25")
    assert address in html  # still shown, and in the QR
    assert 'data-field="wallet-link"' not in html
    assert all(not h.startswith(address) and address not in h for h in hrefs(html))
    assert 'data-field="qr"' in html and "Scan with your wallet" in html


def test_a_web_wallet_link_opens_beside_the_checkout_never_over_it(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    """XRP opens Xaman through https: inside the shop's iframe it must not replace the
    checkout with a site that refuses to be framed, and outside one it must not take the
    customer away from the page that shows the tag and the status."""
    known_address(app, "XRP", "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh", "123456")
    html = page_html(client, "XRP", is_iframe=True)
    link = re.search(r'<a class="button wallet-app"[^>]*>', html)
    assert link is not None
    assert 'href="https://xaman.app/detect/request:rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh' \
        in link.group(0)
    assert 'target="_blank"' in link.group(0) and 'rel="noopener noreferrer"' in link.group(0)


def test_a_wallet_uri_link_stays_a_plain_link(app: Flask, client: FlaskClient,
                                              merchant: Merchant) -> None:
    known_address(app, "BTC", BTC_ADDRESS)
    html = page_html(client, "BTC", amount="0.001")
    link = re.search(r'<a class="qr"[^>]*>', html)
    assert link is not None and "target=" not in link.group(0)
    assert 'href="bitcoin:bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq?amount=0.001"' \
        in link.group(0)


# ---------------------------------------------------------------- the approximate value


@pytest.mark.parametrize(("age", "shown"), [
    (timedelta(minutes=5), "59.93"), (timedelta(minutes=59), "59.93"),
    (timedelta(hours=2), None), (timedelta(days=3), None)])
def test_an_old_rate_shows_no_fiat_value_rather_than_a_wrong_one(
        make_app: Any, merchant: Merchant, age: timedelta, shown: str | None) -> None:
    """The processor cannot be asked here, so the quote is never refreshed: a three-day-old
    price was shown as "about 59.93 EUR"."""
    app = make_app(PROCESSOR_URL="http://127.0.0.1:9/api/v2", PROCESSOR_TIMEOUT=0.2)
    with app.app_context(), db.transaction() as s:
        s.add(DepositAddress(merchant_id=11, foreign_id="user-7", currency="BTC",
                             convert_to="EUR", address=BTC_ADDRESS))
        s.add(RateQuote(currency_from="BTC", currency_to="EUR", rate="48715.62",
                        fetched_at=clock.now() - age))
    client = app.test_client()
    page = client.get("/terminal", query_string=terminal.encode_link(
        LINK, MERCHANT_SECRET)).headers["Location"]
    fiat = client.get(page + "/status").get_json()["fiat"]
    html = client.get(page).get_data(as_text=True)
    if shown is None:
        assert fiat is None and not re.search(r"about [0-9.]+ EUR", html)
    else:
        assert fiat == {"currency": "EUR", "amount": shown, "due": shown, "rate": "48715.62"}
        assert f"about {shown} EUR" in html


# ---------------------------------------------------------------- page ids, language, caching


@pytest.mark.parametrize("path", ["/p/%00", "/p/%00/status", "/p/%00/qr.svg", "/p/a%00b",
                                  "/p/%C3%A9t%C3%A9", "/p/..%2F..", "/p/a b/status"])
def test_an_id_that_is_no_token_is_the_plain_404_of_any_unknown_page(
        client: FlaskClient, path: str) -> None:
    """PostgreSQL refuses a NUL in a query parameter with an error: that was a 500."""
    response = client.get(path)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_language_a_link_asks_for_carries_over_to_the_page(
        make_app: Any, merchant: Merchant) -> None:
    app = make_app(LANGUAGES=["en", "de"])
    known_address(app, "BTC", BTC_ADDRESS)
    client = app.test_client()
    query = terminal.encode_link({"client_id": 11, "currency": "BTC", "foreign_id": "u"},
                                 MERCHANT_SECRET)
    response = client.get("/terminal", query_string={**query, "lang": "de"})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert re.fullmatch(r"/p/[A-Za-z0-9_-]{32}\?lang=de", location)
    assert '<html lang="de"' in client.get(location).get_data(as_text=True)
    # A language the site does not have is not carried (nor echoed anywhere).
    other = client.get("/terminal", query_string={**query, "lang": "xx\"><b>"})
    assert other.headers["Location"] == location.split("?")[0]


def test_the_svg_qr_names_the_language_its_title_is_in_for_caches(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    known_address(app, "BTC", BTC_ADDRESS)
    query = terminal.encode_link({"client_id": 11, "currency": "BTC", "foreign_id": "u"},
                                 MERCHANT_SECRET)
    page = client.get("/terminal", query_string=query).headers["Location"]
    svg = client.get(page + "/qr.svg")
    assert svg.headers["Cache-Control"] == "no-store"
    assert "Accept-Language" in svg.headers.get("Vary", "")


# ---------------------------------------------------------------- hostile shop-provided text


HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>\'&'


def test_every_shop_provided_value_is_escaped_on_the_page(
        app: Flask, client: FlaskClient) -> None:
    from checkout import merchants

    with app.app_context():
        merchants.add(merchants.NewMerchant(
            client_id=11, name=f"Shop {HOSTILE}", key="k", secret=MERCHANT_SECRET,
            return_hosts=("shop.example",), frame_origins=("https://shop.example",)))
    with app.app_context(), db.transaction() as s:
        s.add(DepositAddress(merchant_id=11, foreign_id=HOSTILE, currency="BTC",
                             convert_to="", address=BTC_ADDRESS))
    query = terminal.encode_link({"client_id": 11, "currency": "BTC", "foreign_id": HOSTILE,
                                  "is_iframe": True}, MERCHANT_SECRET)
    response = client.get("/terminal", query_string=query)
    assert response.status_code == 303
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<img src=x" not in html and "<script>alert" not in html
    assert 'data-foreign-id="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;' in html
    assert "Shop &#34;&gt;&lt;img" in html
