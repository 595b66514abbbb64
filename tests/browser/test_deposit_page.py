"""The deposit page in Chromium: what a customer sees, scans, copies, and watches change."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from flask import Flask
from kit.browser import decode_qr, run_worker, scan_qr, simulate
from kit.deposits import BTC_ADDRESS, LINK, send_deposit
from kit.live import LiveServer, start_live_server, wait_until
from kit.site import MERCHANT_SECRET
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from checkout import clock, db, merchants, money, terminal
from checkout.models import DepositAddress, Merchant, RateQuote


def link_url(base: str, payload: dict[str, Any] = LINK) -> str:
    return f"{base}/terminal?{urlencode(terminal.encode_link(payload, MERCHANT_SECRET))}"


def status_of(page: Any) -> Any:
    return page.locator('[data-field="status-box"]')




def steady_screenshot(locator: Any, tries: int = 5) -> bytes:
    """A page that refreshes itself every second may swap the element mid-shot: try again."""
    for attempt in range(tries):
        try:
            return bytes(locator.screenshot(timeout=15_000))
        except PlaywrightError:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- without the sandbox


def seed_address(app: Flask) -> DepositAddress:
    """An address taken before for this customer, and a fresh rate: no processor needed."""
    with app.app_context(), db.transaction() as s:
        row = DepositAddress(merchant_id=11, foreign_id="user-7", currency="BTC",
                             convert_to="EUR", address=BTC_ADDRESS, processor_id=501)
        s.add(row)
        s.add(RateQuote(currency_from="BTC", currency_to="EUR", rate="48715.62",
                        fetched_at=clock.now()))
    return row


def seed_merchant_and_address(app: Flask, frame_origins: tuple[str, ...] = ()) -> None:
    with app.app_context():
        merchants.add(merchants.NewMerchant(
            client_id=11, name="Shop", key="test-key-11", secret=MERCHANT_SECRET,
            return_hosts=("shop.example",), frame_origins=frame_origins))
    seed_address(app)


@pytest.fixture
def known_address(app: Flask, merchant: Merchant) -> DepositAddress:
    """The link reuses an address taken before for this customer."""
    return seed_address(app)


def test_the_page_shows_the_address_and_a_qr_that_scans_to_the_payment_uri(
        app: Flask, live_server: LiveServer, known_address: DepositAddress,
        context: Any) -> None:
    page = context.new_page()
    page.goto(link_url(live_server.url))
    assert re.search(r"/p/[A-Za-z0-9_-]{32}$", page.url)
    expect(page.locator('[data-field="address"]')).to_have_text(BTC_ADDRESS)
    amount_text = page.locator('[data-field="amount"]').inner_text()
    assert amount_text == "0.00123"
    model = requests.get(page.url + "/status", timeout=30).json()

    scanned = scan_qr(page.locator('[data-field="qr"]'))
    # Only the bech32 address is uppercased inside the QR (BIP173); the link keeps lowercase.
    assert scanned == model["payment_uri"].replace(BTC_ADDRESS, BTC_ADDRESS.upper())
    assert scanned.split("amount=")[1] == "0.00123"
    assert money.parse_amount(scanned.split("amount=")[1]) == money.parse_amount(
        amount_text)
    wallet = page.locator('[data-field="wallet-link"]')
    assert wallet.get_attribute("href") == model["payment_uri"]


def test_copy_buttons_copy_and_say_so(app: Flask, live_server: LiveServer,
                                      known_address: DepositAddress, context: Any) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"],
                              origin=live_server.url)
    page = context.new_page()
    page.goto(link_url(live_server.url))
    for name, value in (("address", BTC_ADDRESS), ("amount", "0.00123")):
        button = page.locator(f'button[data-copy="{name}"]')
        button.click()
        expect(button).to_have_text("Copied")
        expect(page.locator('[data-field="copy-feedback"]')).to_contain_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == value


def test_the_open_page_follows_the_payment_without_a_reload(
        app: Flask, live_server: LiveServer, known_address: DepositAddress,
        context: Any) -> None:
    page = context.new_page()
    page.goto(link_url(live_server.url))
    page.evaluate("window.sameDocument = true")
    expect(status_of(page)).to_have_attribute("data-status", "waiting")
    expect(page.locator('[data-field="return"]')).to_be_hidden()
    expect(page.locator('[data-field="pay-box"]')).to_be_visible()

    send_deposit(app, 1, "not_confirmed")
    expect(status_of(page)).to_have_attribute("data-status", "not_confirmed")
    expect(page.locator("#status-text")).to_contain_text("is on its way")
    # Enough is on its way: the pay instructions step aside at once.
    expect(page.locator('[data-field="pay-box"]')).to_be_hidden()
    expect(page.locator('[data-field="transactions"] li')).to_contain_text("0.00123")

    send_deposit(app, 1, "confirmed")
    expect(status_of(page)).to_have_attribute("data-status", "confirmed")
    expect(page.locator("#status-text")).to_contain_text("Payment confirmed")
    # Paid in full: the QR and address step aside so nobody pays twice by mistake.
    expect(page.locator('[data-field="pay-box"]')).to_be_hidden()
    back = page.locator('[data-field="return-link"]')
    expect(back).to_be_visible()
    assert back.get_attribute("href") == "https://shop.example/back"
    assert back.get_attribute("target") == "_top"
    assert page.evaluate("window.sameDocument") is True  # no reload happened


def test_without_javascript_the_page_is_complete_and_refreshes_itself(
        app: Flask, live_server: LiveServer, known_address: DepositAddress,
        browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(link_url(live_server.url))
        expect(page.locator('[data-field="address"]')).to_have_text(BTC_ADDRESS)
        expect(page.locator('[data-field="amount"]')).to_have_text("0.00123")
        expect(page.locator('[data-field="qr"]')).to_be_visible()
        expect(page.locator("button[data-copy]").first).to_be_hidden()  # they need a script
        model = requests.get(page.url + "/status", timeout=30).json()
        assert decode_qr(steady_screenshot(page.locator('[data-field="qr"]'))).lower() == \
            model["payment_uri"].lower()

        send_deposit(app, 1, "confirmed")
        expect(status_of(page)).to_have_attribute("data-status", "confirmed")
        expect(page.locator('[data-field="return-link"]')).to_be_visible()
        expect(page.locator('[data-field="pay-box"]')).to_be_hidden()
    finally:
        context.close()


# ---------------------------------------------------------------- end to end, with the sandbox


@pytest.fixture
def sandbox(app: Flask, live_server: LiveServer, merchant: Merchant) -> Iterator[LiveServer]:
    if requests.post(f"{live_server.url}/sandbox/simulate/payment", json={},
                     timeout=30).status_code == 404:
        pytest.skip("waits on the embedded sandbox: POST /sandbox/simulate/payment")
    yield live_server






def test_a_simulated_payment_turns_the_open_page_to_seen_then_confirmed(
        app: Flask, sandbox: LiveServer, context: Any) -> None:
    page = context.new_page()
    page.goto(link_url(sandbox.url))
    page.evaluate("window.sameDocument = true")
    address = page.locator('[data-field="address"]').inner_text()
    simulate(sandbox, address, "0.00123")
    run_worker(app)  # the sandbox sends its signed callback to /callbacks/coinspaid
    expect(status_of(page)).to_have_attribute("data-status", "not_confirmed")

    from checkout.sandbox import clock as sandbox_clock

    sandbox_clock.advance(app, 3600)
    run_worker(app)
    expect(status_of(page)).to_have_attribute("data-status", "confirmed")
    assert page.evaluate("window.sameDocument") is True


def test_without_javascript_a_simulated_payment_is_confirmed_by_refreshing(
        app: Flask, sandbox: LiveServer, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(link_url(sandbox.url))
        address = page.locator('[data-field="address"]').inner_text()
        simulate(sandbox, address, "0.00123", status="confirmed")
        run_worker(app)
        expect(status_of(page)).to_have_attribute("data-status", "confirmed")
    finally:
        context.close()


# ---------------------------------------------------------------- iframe, across two origins


SHOP_PAGE = """<!doctype html><html><body><h1>Shop</h1>
<script src="{checkout}/static/embed.js"></script>
<script>
window.received = []; window.loaded = false; window.wasClosed = false;
window.handle = Checkout.open({link!r}, {{
  onLoaded: function () {{ window.loaded = true; }},
  onStatus: function (m) {{ window.received.push(m); }},
  onClose: function () {{ window.wasClosed = true; }}
}});
</script></body></html>"""


def shop_server(checkout: str, link: str) -> LiveServer:
    """A tiny shop on `localhost`: the checkout runs on 127.0.0.1, another origin."""
    shop = Flask("shop")

    @shop.get("/")
    def index() -> str:
        return SHOP_PAGE.format(checkout=checkout, link=link)

    return start_live_server(shop, host="localhost")


@pytest.fixture
def two_shops(app: Flask, live_server: LiveServer) -> Iterator[tuple[LiveServer, LiveServer]]:
    link = link_url(live_server.url, {**LINK, "is_iframe": True})
    allowed, refused = shop_server(live_server.url, link), shop_server(live_server.url, link)
    seed_merchant_and_address(app, frame_origins=(allowed.url,))
    yield allowed, refused
    for shop in (allowed, refused):
        shop.server.shutdown()
        shop.server.server_close()


def test_an_allowed_shop_frames_the_page_and_hears_its_status(
        app: Flask, two_shops: tuple[LiveServer, LiveServer], context: Any) -> None:
    allowed, _ = two_shops
    page = context.new_page()
    page.goto(allowed.url + "/")
    page.wait_for_function("window.loaded === true")
    frame = page.frame_locator("iframe")
    expect(frame.locator('[data-field="address"]')).to_have_text(BTC_ADDRESS)
    page.wait_for_function("window.received.length >= 1")
    first = page.evaluate("window.received[0]")
    assert first["type"] == "checkout:status" and first["status"] == "waiting"
    assert first["foreign_id"] == "user-7" and first["final"] is False and first["id"]

    # The shop's own page forging a status: embed.js listens to the checkout's origin only.
    page.evaluate("window.postMessage({type: 'checkout:status', status: 'forged'}, '*')")
    send_deposit(app, 1, "confirmed")
    page.wait_for_function("window.received.some(m => m.status === 'confirmed' && m.final)")
    assert "forged" not in [m["status"] for m in page.evaluate("window.received")]
    assert frame.locator('[data-field="return-link"]').get_attribute("target") == "_top"
    page.get_by_role("button", name="Close").click()
    page.wait_for_function("window.wasClosed === true")
    assert page.locator("iframe").count() == 0


def test_a_shop_that_is_not_allowed_cannot_frame_the_page(
        app: Flask, two_shops: tuple[LiveServer, LiveServer], context: Any) -> None:
    _, refused = two_shops
    page = context.new_page()
    page.goto(refused.url + "/")
    page.wait_for_function("window.loaded === true")
    child = page.frames[1]
    assert child.query_selector('[data-field="address"]') is None
    assert BTC_ADDRESS not in child.content()
    assert page.evaluate("window.received.length") == 0


@pytest.fixture
def site_with(make_app: Any) -> Iterator[Any]:
    """A site with its own polling settings, a merchant and a known address."""
    servers: list[LiveServer] = []

    def start(**config: Any) -> tuple[Flask, LiveServer]:
        app = make_app(**config)
        live = start_live_server(app)
        servers.append(live)
        seed_merchant_and_address(app)
        return app, live

    yield start
    for live in servers:
        live.server.shutdown()
        live.server.server_close()


def test_coming_back_to_the_page_polls_at_once(site_with: Any, context: Any) -> None:
    """Phones kill background polling: focus or visibility asks for news without waiting."""
    app, live = site_with(POLL_WAITING_MS=600_000, POLL_SEEN_MS=600_000)
    page = context.new_page()
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/status" in r.url else None)
    page.goto(link_url(live.url))
    send_deposit(app, 1, "not_confirmed")
    expect(status_of(page)).to_have_attribute("data-status", "waiting")
    assert polls == []  # at a ten-minute cadence, nothing has asked yet
    with page.expect_request(lambda r: "/status" in r.url):
        page.evaluate("window.dispatchEvent(new Event('focus'))")
    expect(status_of(page)).to_have_attribute("data-status", "not_confirmed")


def test_polling_stays_fast_while_a_payment_is_on_its_way_and_stops_when_final(
        site_with: Any, context: Any) -> None:
    app, live = site_with(POLL_WAITING_MS=150, POLL_SEEN_MS=1_000)
    page = context.new_page()
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/status") else None)
    page.goto(link_url(live.url))

    # Waiting: polls come quickly (eight at a 150 ms cadence; a loaded machine only lags).
    wait_until(lambda: len(polls) >= 8, what="eight polls at a 150 ms cadence",
               tick=lambda: page.wait_for_timeout(50))

    send_deposit(app, 1, "not_confirmed")
    expect(status_of(page)).to_have_attribute("data-status", "not_confirmed")
    # Money on its way: the next phase must show at the next fast poll, not a second later.
    seen_at = len(polls)
    wait_until(lambda: len(polls) >= seen_at + 4, 2.5, what="fast polls while a payment is seen",
               tick=lambda: page.wait_for_timeout(50))

    send_deposit(app, 1, "confirmed")
    expect(status_of(page)).to_have_attribute("data-status", "confirmed")
    final_at = len(polls)
    page.wait_for_timeout(2_500)  # two and a half seen-cadences
    assert len(polls) == final_at, "a final page polls no more"


@pytest.mark.parametrize(("answer", "most"), [(503, 5), (404, 1)])
def test_a_failing_status_is_asked_less_often_and_a_gone_page_not_at_all(
        site_with: Any, context: Any, answer: int, most: int) -> None:
    _app, live = site_with(POLL_WAITING_MS=100, POLL_SEEN_MS=100)
    page = context.new_page()
    polls: list[str] = []

    def refuse(route: Any) -> None:
        polls.append(route.request.url)
        route.fulfill(status=answer, body="{}", content_type="application/json")

    page.route("**/status", refuse)
    page.goto(link_url(live.url))
    wait_until(lambda: len(polls) >= 1, what="the first poll",
               tick=lambda: page.wait_for_timeout(50))
    page.wait_for_timeout(2_000)
    # At a steady 100 ms, 2 s would be about 20 polls; backing off 200, 400, 800 ms… is 4
    # (a loaded machine's timers only lag: fewer polls, never more).
    assert 1 <= len(polls) <= most, f"{len(polls)} polls of a status answering {answer}"
    expect(status_of(page)).to_have_attribute("data-status", "waiting")
