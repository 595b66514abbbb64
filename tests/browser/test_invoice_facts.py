"""The invoice page in Chromium where it must say exactly what happened to the money: more
than due, nothing arrived (yet), a new address, the time left from the first screen, the way
back. The shop creates invoices over our API; payments go through the embedded processor and
reach us as its signed callbacks. Each state is photographed (browser.test_money_states).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Flask
from kit.browser import photograph, wait_for_phase
from kit.invoices import ORDER, TYPE_3, TestShop, advance_sandbox, settle
from kit.invoices import pay as sandbox_pay
from kit.live import LiveServer
from playwright.sync_api import expect

# The address the processor writes to, shown in full.
EMAIL = "buyer@example.com"


def create(shop: TestShop, payload: dict[str, Any] | None = None, **changes: Any) -> str:
    response = shop.create(payload or ORDER, **changes)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["url"])


def left(page: Any) -> int:
    minutes, seconds = page.locator('[data-field="countdown-time"]').inner_text().split(":")
    return int(minutes) * 60 + int(seconds)


def test_the_time_left_shows_from_the_picker_on_and_ticks(
        app: Flask, shop: TestShop, context: Any) -> None:
    page = context.new_page()
    page.goto(create(shop, timer=True))
    wait_for_phase(page, "choose")
    expect(page.locator('[data-field="countdown"]')).to_be_visible()
    first = left(page)
    assert 14 * 60 < first <= 15 * 60
    page.wait_for_function("s => { const t = document.querySelector("
                           "'[data-field=\"countdown-time\"]').textContent.split(':');"
                           " return +t[0] * 60 + +t[1] < s; }", arg=first)
    photograph(page, "choose-countdown", "invoice")
    page.get_by_label("BTC").check()
    page.get_by_role("button", name="Continue").click()
    wait_for_phase(page, "waiting")
    expect(page.locator('[data-field="countdown"]')).to_be_visible()


def test_the_email_step_shows_the_time_left_without_javascript_too(
        app: Flask, shop: TestShop, browser: Any, context: Any) -> None:
    url = create(shop, TYPE_3, email_user=None)
    page = context.new_page()
    page.goto(url)
    wait_for_phase(page, "email")
    expect(page.locator('[data-field="countdown"]')).to_be_visible()
    assert 14 * 60 < left(page) <= 15 * 60
    photograph(page, "email-countdown", "invoice")

    plain = browser.new_context(java_script_enabled=False)
    try:
        bare = plain.new_page()
        bare.goto(url)
        countdown = bare.locator('[data-field="countdown"]')
        expect(countdown).to_be_visible()
        # The time is the server's at loading: said, since nothing ticks without a script.
        expect(countdown.locator(".muted")).to_be_visible()
        assert "when this page was loaded" in countdown.evaluate("e => e.textContent")
        assert bare.locator('meta[http-equiv="refresh"]').count() == 0
        bare.fill("#email", "buyer@example.com")
        bare.get_by_role("button", name="Continue").click()
        expect(bare.locator('[data-field="status-box"]')).to_have_attribute("data-phase",
                                                                             "waiting")
        expect(bare.locator('[data-field="countdown"]')).to_be_visible()
    finally:
        plain.close()


def test_an_overpayment_is_told_in_full_once_it_is_confirmed(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    page = context.new_page()
    page.goto(create(shop, TYPE_3))
    wait_for_phase(page, "waiting")
    address = page.locator('[data-field="address"]').inner_text()
    asked = Decimal(page.locator('[data-field="amount"]').get_attribute("data-plain") or "")
    sandbox_pay(live_server.url, address, "0.001", "not_confirmed")
    settle(app)
    wait_for_phase(page, "confirming")
    advance_sandbox(live_server.url, 60)
    settle(app)
    settle(app)
    # The page was open all along: the final screen is drawn by the server for it.
    wait_for_phase(page, "overpaid")
    expect(page.locator('[data-field="over-row"]')).to_be_visible()
    listed = sum(Decimal(line.split(" ")[0]) for line in
                 page.locator('[data-field="transactions"] li').all_inner_texts())
    expect(page.locator('[data-field="paid-amount"]')).to_have_text("0.001")
    assert listed == Decimal("0.001")
    expect(page.locator('[data-field="due-row"]')).to_contain_text(f"{asked} BTC")
    expect(page.locator('[data-field="over-amount"]')).to_have_text(
        f"{Decimal('0.001') - asked} BTC")
    expect(page.locator('[data-field="over-fiat"]')).to_contain_text("EUR")
    expect(page.locator('[data-field="refund-note"]')).to_contain_text(EMAIL)
    photograph(page, "overpaid", "invoice")


def test_a_fresh_quote_is_taken_only_after_a_warning_and_its_screen_warns_again(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    page = context.new_page()
    page.goto(create(shop))
    page.get_by_label("BTC").check()
    page.get_by_role("button", name="Continue").click()
    wait_for_phase(page, "waiting")
    first = page.locator('[data-field="address"]').inner_text()
    advance_sandbox(live_server.url, 16 * 60)
    settle(app)
    wait_for_phase(page, "requote")
    expect(page.locator("#status-text")).to_contain_text("no payment has reached us yet")
    expect(page.locator('[data-field="requote-warning"]')).to_be_visible()
    photograph(page, "requote", "invoice")
    page.get_by_role("button", name="Get a fresh quote").click()
    wait_for_phase(page, "waiting")
    assert page.locator('[data-field="address"]').inner_text() != first
    expect(page.locator('[data-field="new-address-warning"]')).to_be_visible()
    photograph(page, "fresh-quote", "invoice")


def test_an_expired_invoice_says_what_we_know(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    page = context.new_page()
    page.goto(create(shop, TYPE_3))
    wait_for_phase(page, "waiting")
    advance_sandbox(live_server.url, 16 * 60)
    settle(app)
    wait_for_phase(page, "expired")
    status = page.locator("#status-text")
    expect(status).to_contain_text("before any payment reached us")
    expect(status).not_to_contain_text("nothing was paid")
    # Money after the time is settled on the page: no email is named for it.
    expect(page.locator('[data-field="over-under-note"]')).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text(EMAIL)
    photograph(page, "expired", "invoice")


def test_a_waiting_invoice_has_a_quiet_way_back_until_it_is_final(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    page = context.new_page()
    page.goto(create(shop, TYPE_3))
    wait_for_phase(page, "waiting")
    back = page.locator('[data-field="quiet-back"] a')
    expect(back).to_be_visible()
    assert back.get_attribute("href") == ORDER["url_failed"]
    assert back.get_attribute("target") == "_top"
    photograph(page, "waiting-way-back", "invoice")
    address = page.locator('[data-field="address"]').inner_text()
    amount = page.locator('[data-field="amount"]').get_attribute("data-plain") or ""
    sandbox_pay(live_server.url, address, amount, "confirmed")
    settle(app)
    wait_for_phase(page, "paid")
    expect(page.locator('[data-field="return-link"]')).to_be_visible()
    expect(page.locator('[data-field="quiet-back"]')).to_be_hidden()
