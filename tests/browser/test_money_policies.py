"""The merchant's policies as the customer meets them, in Chromium, through the embedded
processor's signed callbacks: a deposit page paid a little short and accepted by the shop's
tolerance; an invoice paid after its time ran out, accepted, or short of the price with its
two choices (pay the difference, its QR decoded; or the money back). axe-core audits each.

Screenshots (`build/screenshots/`): `deposit-paid-short-accepted-*`,
`invoice-late-accepted-*`, `invoice-late-short-*`, at 320/1280 px, light/dark, en/de/ar.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

import requests
from flask import Flask
from kit.accessibility import check
from kit.browser import confirm_all, link, pay, photograph, scan_qr, wait_for_phase
from kit.invoices import ORDER, TestShop, advance_sandbox, settle
from kit.invoices import pay as sandbox_pay
from kit.live import LiveServer
from playwright.sync_api import expect

from checkout import db
from checkout.models import Merchant


def model_of(page: Any) -> dict[str, Any]:
    return dict(requests.get(page.url.split("?")[0] + "/status", timeout=30).json())


def tolerate(app: Flask, percent: str, fiat: str) -> None:
    with app.app_context(), db.transaction() as s:
        merchant = s.get(Merchant, 11)
        assert merchant is not None
        merchant.underpaid_percent, merchant.underpaid_fiat = percent, fiat


def test_a_short_payment_within_the_tolerance_is_paid(
        app: Flask, site: LiveServer, customer: Any) -> None:
    tolerate(app, "2", "5")
    page = customer
    page.goto(link(site.url))
    wait_for_phase(page, "waiting")
    pay(app, site, page, "0.00119")  # 0.00001 BTC short of 0.0012: 0.83 %
    wait_for_phase(page, "paid")
    expect(page.locator("h1")).to_have_text("Paid")
    note = page.locator('[data-field="shortfall-note"]')
    expect(note).to_have_text("Payment accepted: 0.00001 BTC less than asked arrived, and Shop "
                              "accepted it.")
    expect(page.locator('[data-field="pay-box"]')).to_be_hidden()
    expect(page.locator('[data-field="outcome"]')).to_be_visible()
    photograph(page, "paid-short-accepted")
    check(page, "paid: short accepted")


def expired_invoice(live: LiveServer, app: Flask, shop: TestShop, page: Any) -> tuple[str, str]:
    response = shop.create(ORDER, timer=True, sender_currency="BTC")
    assert response.status_code == 200, response.text
    page.goto(response.json()["data"]["url"])
    wait_for_phase(page, "waiting")
    address = page.locator('[data-field="address"]').inner_text()
    amount = page.locator('[data-field="amount"]').get_attribute("data-plain") or ""
    advance_sandbox(live.url, 16 * 60)
    settle(app)
    wait_for_phase(page, "expired")
    return address, amount


def pay_late(live: LiveServer, app: Flask, address: str, amount: Decimal) -> None:
    sandbox_pay(live.url, address, str(amount.quantize(Decimal("1e-8"), ROUND_DOWN)),
                "confirmed")
    settle(app)


def test_late_money_worth_the_price_is_accepted(
        app: Flask, site: LiveServer, shop: TestShop, customer: Any) -> None:
    page = customer
    address, amount = expired_invoice(site, app, shop, page)
    pay_late(site, app, address, Decimal(amount) * Decimal("1.05"))
    wait_for_phase(page, "late")
    expect(page.locator("#status-text")).to_have_text(
        "Your late payment was accepted: the order is paid.")
    expect(page.locator('[data-field="late-next"]')).to_contain_text(
        "Shop accepted your payment for this order")
    expect(page.locator('[data-field="pay-box"]')).to_be_hidden()
    photograph(page, "late-accepted", "invoice")
    check(page, "late: accepted")


def test_late_money_worth_less_offers_the_difference_or_the_money_back(
        app: Flask, site: LiveServer, shop: TestShop, customer: Any) -> None:
    page = customer
    address, amount = expired_invoice(site, app, shop, page)
    pay_late(site, app, address, Decimal(amount) / 2)
    wait_for_phase(page, "late")
    expect(page.locator("#status-text")).to_contain_text(
        "Pay the difference below to complete your order, or ask for your money back.")
    model = model_of(page)
    due = model["late"]["difference"]["amount"]
    assert model["amount_due"] == due
    box = page.locator('[data-field="pay-box"]')
    expect(box).to_be_visible()
    expect(page.locator('[data-field="rest-label"]')).to_be_visible()
    expect(page.locator('[data-field="amount"]')).to_have_text(due)
    expect(page.locator('[data-field="address"]')).to_have_text(address)
    scanned = scan_qr(page.locator('[data-field="qr"]'))
    assert scanned.lower() == model["payment_uri"].lower()
    assert scanned.split("amount=")[1] == due
    choices = page.locator('[data-field="late-next"] li')
    expect(choices).to_have_count(2)
    expect(choices.first).to_contain_text(f"Pay the difference: {due} BTC")
    expect(choices.nth(1)).to_have_text("Or ask for your money back instead.")
    photograph(page, "late-short", "invoice")
    check(page, "late: short")

    # The difference (and a little more: the rate moved) arrives: the order is paid.
    pay_late(site, app, address, Decimal(due) * Decimal("1.03"))
    expect(page.locator("#status-text")).to_have_text(
        "Your late payment was accepted: the order is paid.")
    expect(box).to_be_hidden()
    confirm_all(app)
