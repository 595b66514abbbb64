"""The deposit page in every money state, as a customer meets it: paid through the embedded
processor (its signed callbacks reach our callback endpoint), read in Chromium, QR decoded.

In every state where the customer should pay, the QR, the wallet link, the amount shown and
the amount the copy button copies are the same number: the page model's `amount_due`.
Each state is also photographed at 320 px and 1280 px, light and dark, in English, German and
Arabic, into `build/screenshots/` (README, "Looking at the pages").
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask
from kit.browser import (
    confirm_all,
    link,
    pay,
    photograph,
    scan_qr,
    wait_for_phase,
)
from kit.live import LiveServer
from playwright.sync_api import expect


def model_of(page: Any) -> dict[str, Any]:
    url = page.url.split("?")[0]
    return dict(requests.get(url + "/status", timeout=30).json())








def assert_everything_carries_the_amount_due(page: Any) -> str:
    """The QR, the wallet link, the text and the copy button all say `amount_due`."""
    model = model_of(page)
    due = model["amount_due"]
    assert due is not None and Decimal(due) > 0
    expect(page.locator('[data-field="amount"]')).to_have_text(due)
    expect(page.locator('[data-field="qr"]')).to_have_attribute("src", re.compile(
        re.escape(f"?due={due}") + "$"))
    scanned = scan_qr(page.locator('[data-field="qr"]'))
    assert scanned.split("amount=")[1] == due
    assert page.locator('[data-field="wallet-link"]').get_attribute("href") == \
        model["payment_uri"]
    assert model["payment_uri"].endswith(f"?amount={due}")
    page.locator('button[data-copy="amount"]').click()
    assert page.evaluate("navigator.clipboard.readText()") == due
    return str(due)






def test_waiting_then_partial_then_seen_then_paid(app: Flask, site: LiveServer,
                                                  customer: Any) -> None:
    page = customer
    page.goto(link(site.url))
    wait_for_phase(page, "waiting")
    assert assert_everything_carries_the_amount_due(page) == "0.0012"
    photograph(page, "waiting")

    pay(app, site, page, "0.0005")  # part of it, confirmed at once
    wait_for_phase(page, "partial")
    status = page.locator("#status-text")
    # The page leads with what is still due, and everything actionable carries it.
    expect(status).to_have_text("0.0005 BTC received. Please send 0.0007 BTC more, "
                                "to the same address.")
    expect(page.locator('[data-field="rest-label"]')).to_be_visible()
    assert assert_everything_carries_the_amount_due(page) == "0.0007"
    photograph(page, "partial")

    pay(app, site, page, "0.0007", status="not_confirmed")  # the rest, on its way
    wait_for_phase(page, "confirming")
    expect(status).to_contain_text("Nothing more needs to be sent")
    expect(page.locator('[data-field="pay-box"]')).to_be_hidden()
    expect(page.locator('[data-field="confirmations"]')).to_have_text("Confirmations: 0 of 1")
    photograph(page, "seen")

    confirm_all(app)
    wait_for_phase(page, "paid")
    expect(page.locator("h1")).to_have_text("Paid")
    expect(page.locator('[data-field="outcome"]')).to_be_visible()
    expect(page.locator('[data-field="paid-amount"]')).to_have_text("0.0012")
    expect(page.locator('[data-field="reference"]')).to_have_text("order-1042")
    explorer = page.locator('[data-field="transactions"] a').first
    assert (explorer.get_attribute("href") or "").startswith("https://mempool.space/testnet4/tx/")
    back = page.locator('[data-field="return-link"]')
    expect(back).to_be_visible()
    assert back.get_attribute("target") == "_top"
    photograph(page, "confirmed")

    page.locator('[data-field="receipt-link"]').click()
    expect(page.locator("h1")).to_have_text("Receipt")
    receipt = page.locator("main").inner_text()
    assert "order-1042" in receipt and "0.0012 BTC" in receipt and "Shop" in receipt
    photograph(page, "receipt")


def test_the_same_states_are_told_without_javascript(
        app: Flask, site: LiveServer, browser: Any) -> None:
    # The customer clicks "Check again now": a page refreshing itself every second (this
    # suite's setting) could be reloaded under the click on a loaded machine.
    app.config["NOSCRIPT_REFRESH"] = 600
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(link(site.url))
        pay(app, site, page, "0.0005")
        page.reload()
        expect(page.locator('[data-field="amount"]')).to_have_text("0.0007")
        scanned = scan_qr(page.locator('[data-field="qr"]'))
        assert scanned.split("amount=")[1] == "0.0007"
        assert page.locator('[data-field="wallet-link"]').get_attribute("href") \
            .endswith("?amount=0.0007")
        check_again = page.get_by_role("link", name="Check again now")
        expect(check_again).to_be_visible()
        pay(app, site, page, "0.0007")
        check_again.click()
        expect(page.locator("h1")).to_have_text("Paid")
        # A final page never refreshes itself.
        assert page.locator('meta[http-equiv="refresh"]').count() == 0
    finally:
        context.close()


def test_overpayment_says_how_much_more_arrived(app: Flask, site: LiveServer,
                                                customer: Any) -> None:
    page = customer
    page.goto(link(site.url))
    pay(app, site, page, "0.002")
    wait_for_phase(page, "overpaid")
    expect(page.locator("#status-text")).to_have_text(
        "Payment confirmed. You sent 0.0008 BTC more than asked: you can get the difference "
        "back below.")
    expect(page.locator('[data-field="pay-box"]')).to_be_hidden()
    photograph(page, "overpaid")


def test_a_cancelled_payment_shows_no_pay_instructions_and_the_way_back(
        app: Flask, site: LiveServer, customer: Any) -> None:
    page = customer
    page.goto(link(site.url))
    pay(app, site, page, "0.0012", status="cancelled")
    wait_for_phase(page, "cancelled")
    expect(page.locator('[data-field="pay-box"]')).to_be_hidden()
    expect(page.locator('[data-field="qr"]')).to_be_hidden()
    expect(page.locator("#status-text")).to_contain_text("Please contact Shop")
    expect(page.get_by_role("link", name="Back to Shop")).to_be_visible()
    photograph(page, "cancelled")


def test_a_payment_refused_as_too_small_says_so(app: Flask, site: LiveServer,
                                                customer: Any) -> None:
    page = customer
    page.goto(link(site.url, currency="LTC", amount=None, foreign_id="customer-9"))
    expect(page.locator("[data-field=pay-box] .muted").last).to_contain_text("of at least 0.01 LTC")
    pay(app, site, page, "0.005")
    wait_for_phase(page, "below_minimum")
    expect(page.locator("#status-text")).to_have_text(
        "Your payment was refused because it is below the smallest payment accepted for LTC "
        "(0.01 LTC). It was not credited to Shop, and it is not sent back automatically: "
        "please contact Shop about it, with the transaction below, before you pay again.")
    expect(page.locator('[data-field="transactions"] li')).to_contain_text(
        "refused: below the minimum")
    photograph(page, "refused-too-small")


def test_a_rest_below_the_minimum_asks_for_the_minimum_and_says_why(
        app: Flask, site: LiveServer, customer: Any) -> None:
    page = customer
    page.goto(link(site.url, currency="LTC", amount="0.05"))
    pay(app, site, page, "0.045")
    wait_for_phase(page, "partial")
    assert assert_everything_carries_the_amount_due(page) == "0.01"
    # The minimum makes the customer send more than the rest: how much more, and its worth.
    extra = model_of(page)["fiat"]["extra"]
    expect(page.locator("#status-text")).to_contain_text("Please send 0.01 LTC more")
    expect(page.locator('[data-field="minimum-note"]')).to_have_text(
        "The rest, 0.005 LTC, is less than the smallest payment accepted (0.01 LTC), so you "
        f"have to send 0.01 LTC: 0.005 LTC (about {extra} EUR) more than the rest. Everything "
        "you send is credited to Shop.")
    photograph(page, "rest-below-minimum")


def test_reopening_a_paid_orders_link_shows_its_paid_page_and_paying_again_is_deliberate(
        app: Flask, site: LiveServer, customer: Any) -> None:
    page = customer
    url = link(site.url)
    page.goto(url)
    paid_page = page.url
    pay(app, site, page, "0.0012")
    wait_for_phase(page, "paid")

    page.goto(url)  # the shop's link, opened again
    assert page.url == paid_page
    expect(page.locator("h1")).to_have_text("Paid")
    photograph(page, "reopened")
    page.get_by_role("button", name="Make another payment").click()
    wait_for_phase(page, "waiting")
    assert page.url != paid_page
    assert assert_everything_carries_the_amount_due(page) == "0.0012"
    page.goto(url)
    assert page.url.split("?")[0] != paid_page  # the link now opens the new page


def test_the_destination_tag_sits_beside_the_address_above_the_fold(
        app: Flask, site: LiveServer, context: Any) -> None:
    page = context.new_page()
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(link(site.url, currency="XRP", amount="25"))
    tag = page.locator('[data-field="tag"]')
    expect(tag).to_be_visible()
    box = tag.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 640, box
    expect(page.locator("[data-field=test-badge]")).to_be_visible()
    wallet = page.locator('[data-field="wallet-link"]')
    assert wallet.get_attribute("target") == "_blank"
    photograph(page, "xrp-tag")


def test_tokens_on_several_networks_differ_in_the_heading(
        app: Flask, site: LiveServer, context: Any) -> None:
    page = context.new_page()
    page.goto(link(site.url, currency="USDTT", amount="19.99"))
    expect(page.locator("h1")).to_have_text("Pay with USDT on TRON (TRC-20)")
    photograph(page, "usdt-tron")


@pytest.mark.parametrize("currency", ["BTC", "XRP", "USDTE"])
def test_at_200_percent_text_the_page_never_scrolls_sideways(
        app: Flask, site: LiveServer, browser: Any, currency: str) -> None:
    # bypass_csp lets the test add the user's larger text; the page itself has none inline.
    context = browser.new_context(viewport={"width": 320, "height": 640}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(link(site.url, currency=currency, amount="25"))
        page.add_style_tag(content="html { font-size: 200% !important; }")
        expect(page.locator('[data-field="address"]')).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 320
    finally:
        context.close()
