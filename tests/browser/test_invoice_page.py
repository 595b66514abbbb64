"""The invoice page in Chromium, end to end: a shop creates an invoice through our drop-in
API (signed by its own code), the customer picks a currency, pays through the embedded
processor, and the processor's signed callbacks move the page; every final screen sends the
customer back with an outcome the shop can verify.

Screenshots of each state go to `build/screenshots/invoice-<state>-<width>-<scheme>.png`.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from flask import Flask
from kit.browser import photograph, scan_qr
from kit.invoice_browser import confirm, create, pay, phase
from kit.invoices import TestShop, advance_sandbox, settle
from kit.invoices import pay as sandbox_pay
from kit.live import LiveServer, start_live_server
from kit.site import MERCHANT_SECRET
from playwright.sync_api import expect

from checkout import merchants


def choose(page: Any, ticker: str) -> None:
    """The customer picks a currency on the page (or inside a frame) and continues."""
    page.get_by_label(ticker).check()
    page.get_by_role("button", name="Continue").click()
    phase(page, "waiting")






def verified_return(url: str, status: str, foreign_id: str = "order-7") -> None:
    """The shop's check of the return, written from the README (its own HMAC code)."""
    query = dict(parse_qsl(urlsplit(url).query))
    assert (query["status"], query["foreign_id"]) == (status, foreign_id)
    signed = f"foreign_id={quote(foreign_id, safe='')}&status={status}"
    expected = hmac.new(MERCHANT_SECRET.encode(), signed.encode(), hashlib.sha512).hexdigest()
    assert hmac.compare_digest(query["signature"], expected)


def test_pick_a_currency_pay_exactly_and_reach_the_receipt(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    page = context.new_page()
    page.goto(create(shop))
    phase(page, "choose")
    expect(page.locator("h1")).to_have_text("Order 7")
    expect(page.locator('[data-field="invoice-amount"]')).to_have_text("35 EUR")
    photograph(page, "choose", "invoice")
    choose(page, "BTC")
    due = page.locator('[data-field="amount"]').inner_text()
    assert scan_qr(page.locator('[data-field="qr"]')).endswith(f"amount={due}")
    expect(page.locator('[data-field="countdown"]')).to_be_visible()
    photograph(page, "waiting", "invoice")

    pay(app, live_server, page, status="not_confirmed")
    phase(page, "confirming")
    expect(page.locator('[data-field="countdown"]')).to_be_hidden()  # the clock stops
    confirm(app, live_server)
    phase(page, "paid")
    back = page.locator('[data-field="return-link"]')
    expect(back).to_be_visible()
    assert back.get_attribute("target") == "_top"
    verified_return(back.get_attribute("href") or "", "confirmed")
    photograph(page, "paid", "invoice")
    page.locator('[data-field="receipt-link"]').click()
    text = page.locator("main").inner_text()
    assert "Order 7" in text and "35 EUR" in text and f"{due} BTC" in text
    photograph(page, "receipt", "invoice")


def test_change_currency_once_before_paying(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    page = context.new_page()
    page.goto(create(shop))
    choose(page, "BTC")
    url = page.url
    page.select_option("#change-currency", "LTC")
    page.get_by_role("button", name="Change").click()
    phase(page, "waiting")
    assert page.url == url  # same page, same order
    expect(page.locator("h1")).to_have_text("Order 7")
    assert "LTC" in page.locator(".value-amount").inner_text()
    pay(app, live_server, page)
    confirm(app, live_server)
    phase(page, "paid")


def test_pay_less_see_what_is_due_then_pay_the_rest(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    page = context.new_page()
    page.goto(create(shop, type="good_until_expired", timer=True, sender_currency="BTC"))
    phase(page, "waiting")
    due = page.locator('[data-field="amount"]').inner_text()
    part = str((Decimal(due) / 2).quantize(Decimal("0.00000001")))
    pay(app, live_server, page, part)
    confirm(app, live_server)
    phase(page, "partial")
    rest = page.locator('[data-field="amount"]').inner_text()
    assert Decimal(rest) == Decimal(due) - Decimal(part)
    assert scan_qr(page.locator('[data-field="qr"]')).endswith(f"amount={rest}")
    photograph(page, "partial", "invoice")
    pay(app, live_server, page, rest)
    confirm(app, live_server)
    phase(page, "paid")


def test_the_timer_runs_out_and_a_fresh_quote_is_one_click(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    page = context.new_page()
    page.goto(create(shop))
    choose(page, "BTC")
    advance_sandbox(live_server.url, 16 * 60)
    settle(app)
    phase(page, "requote")
    photograph(page, "requote", "invoice")
    page.get_by_role("button", name="Get a fresh quote").click()
    phase(page, "waiting")


def test_paying_after_expiry_is_explained(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    page = context.new_page()
    page.goto(create(shop, timer=True, sender_currency="BTC"))
    phase(page, "waiting")
    address = page.locator('[data-field="address"]').inner_text()
    amount = page.locator('[data-field="amount"]').inner_text()
    advance_sandbox(live_server.url, 16 * 60)
    settle(app)
    phase(page, "expired")
    photograph(page, "expired", "invoice")
    sandbox_pay(live_server.url, address, amount, "confirmed")
    settle(app)
    # The page's own script reloads it when the late money shows: the test waits for that
    # (a reload of its own could be aborted by the script's, under load).
    expect(page.locator('[data-field="late"]')).to_be_visible()
    expect(page.locator('[data-field="late-transactions"]')).to_contain_text("confirmed")
    back = page.locator('[data-field="return-link"]')
    verified_return(back.get_attribute("href") or "", "failed")


def test_the_shop_cancels(app: Flask, live_server: LiveServer, shop: TestShop,
                          context: Any) -> None:
    page = context.new_page()
    page.goto(create(shop))
    assert shop.cancel("order-7").status_code == 200
    phase(page, "cancelled_by_shop")
    expect(page.locator("#status-text")).to_contain_text("Shop cancelled this payment")
    verified_return(page.locator('[data-field="return-link"]').get_attribute("href") or "",
                    "failed")
    photograph(page, "cancelled", "invoice")


def test_without_javascript_the_whole_invoice_can_be_paid(
        app: Flask, live_server: LiveServer, shop: TestShop, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(create(shop, email_user=None))
        page.get_by_label("BTC").check()
        page.fill("#email", "buyer@example.com")
        page.get_by_role("button", name="Continue").click()
        expect(page.locator('[data-field="status-box"]')).to_have_attribute("data-phase",
                                                                             "waiting")
        pay(app, live_server, page)
        confirm(app, live_server)
        # The page refreshes itself while money is on its way (every second in this suite):
        # the test waits for that, not a reload of its own that the refresh could abort.
        expect(page.locator("h1")).to_have_text("Paid")
    finally:
        context.close()


def test_an_invoice_is_paid_inside_the_shops_iframe_and_the_shop_hears_it(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    """No is_iframe in the processor's invoice API: the merchant's registered origins may
    always frame its invoice pages; the currency form works cookieless inside the frame."""
    url = create(shop)
    shop_app = Flask("framing_shop")

    @shop_app.get("/")
    def index() -> str:
        return (f'<!doctype html><title>Shop</title><iframe src="{url}" width="460" '
                'height="1100"></iframe><script>window.heard = [];'
                'addEventListener("message", e => window.heard.push(e.data));</script>')

    framing = start_live_server(shop_app, host="localhost")
    try:
        with app.app_context():
            merchants.edit(11, merchants.MerchantEdit(add_frame_origins=(framing.url,)))
        page = context.new_page()
        page.goto(framing.url + "/")
        frame = page.frame_locator("iframe")
        choose(frame, "BTC")
        address = frame.locator('[data-field="address"]').inner_text()
        amount = frame.locator('[data-field="amount"]').get_attribute("data-plain") or ""
        sandbox_pay(live_server.url, address, amount, "confirmed")
        settle(app)
        expect(frame.locator('[data-field="status-box"]')).to_have_attribute(
            "data-phase", "paid")
        page.wait_for_function("window.heard.some(m => m.status === 'confirmed' && m.final)")
        back = frame.locator('[data-field="return-link"]')
        assert back.get_attribute("target") == "_top"
        verified_return(back.get_attribute("href") or "", "confirmed")
    finally:
        framing.server.shutdown()
        framing.server.server_close()
