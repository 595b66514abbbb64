"""The invoice page in Chromium where money does not match the invoice: before paying it says
what the payment processor does if too much or too little is sent, and to which email; after
an over- or underpayment it says who returns the money and where the instructions go, the
address in full. The shop creates invoices over our API; payments go through the embedded
processor and reach us as its signed callbacks; the open page moves by itself.

Screenshots: `build/screenshots/invoice-words-<state>-<lang>-<width>-<scheme>.png`, states pay,
overpaid, short, underpaid (the late phase: test_late_payment.py).
"""

from __future__ import annotations

import html as html_lib
import re
from decimal import Decimal
from typing import Any

import requests
from flask import Flask
from kit.accessibility import check
from kit.browser import photograph, wait_for_phase
from kit.invoices import TYPE_3, TestShop, advance_sandbox, settle
from kit.invoices import pay as sandbox_pay
from kit.live import LiveServer
from playwright.sync_api import expect

from checkout import money

EMAIL = "buyer@example.com"
# Inside a sentence the address is isolated (FSI…PDI): it reads left to right in Arabic too.
SHOWN = f"\u2068{EMAIL}\u2069"
PROMISES = ("we will refund", "we refund", "is refunded", "will be refunded",
            "refunded automatically")


def open_invoice(shop: TestShop, context: Any) -> tuple[Any, str, Decimal]:
    response = shop.create(TYPE_3)
    assert response.status_code == 200, response.text
    page = context.new_page()
    page.goto(response.json()["data"]["url"])
    wait_for_phase(page, "waiting")
    address = page.locator('[data-field="address"]').inner_text()
    asked = Decimal(page.locator('[data-field="amount"]').get_attribute("data-plain") or "")
    return page, address, asked


def promises_nothing(page: Any) -> None:
    words = page.locator("main").inner_text().lower()
    for phrase in PROMISES:
        assert phrase not in words, phrase


def server_status(url: str) -> str:
    """The status line as the server writes it (what a reader without JavaScript gets)."""
    found = re.search(r'data-field="status-text"[^>]*>(.*?)</p>',
                      requests.get(url, timeout=10).text, re.S)
    assert found is not None
    return html_lib.unescape(found.group(1))


def test_the_pay_screen_says_what_too_much_or_too_little_does_and_to_which_email(
        app: Flask, shop: TestShop, context: Any) -> None:
    page, _address, _asked = open_invoice(shop, context)
    note = page.locator('[data-field="over-under-note"]')
    expect(note).to_be_visible()
    expect(note).to_contain_text("If you send more than asked, the payment goes through")
    expect(note).to_contain_text("If you send less, the payment fails")
    assert note.inner_text().count(EMAIL) == 2
    promises_nothing(page)
    photograph(page, "words-pay", "invoice")


def test_an_overpaid_invoice_names_the_processor_and_the_email_in_full(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    page, address, asked = open_invoice(shop, context)
    sandbox_pay(live_server.url, address, money.plain(asked + Decimal("0.0002")), "confirmed")
    settle(app)
    wait_for_phase(page, "overpaid")  # the open page turned by itself
    status = page.locator("#status-text")
    expect(status).to_contain_text(f"the payment processor emails {SHOWN} instructions to "
                                   "get the difference back")
    note = page.locator('[data-field="refund-note"]')
    expect(note).to_contain_text(EMAIL)
    expect(note).to_contain_text("not sent back through this page")
    expect(page.locator('[data-field="over-under-note"]')).to_have_count(0)
    promises_nothing(page)
    photograph(page, "words-overpaid", "invoice")
    check(page, "invoice: overpaid")


def test_an_underpaid_invoice_says_it_failed_and_the_script_says_the_same(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    page, address, asked = open_invoice(shop, context)
    short = money.ceil(asked / 2, 8)
    sandbox_pay(live_server.url, address, money.plain(short), "not_confirmed")
    settle(app)
    # Seen, not confirmed: the open page's script writes the line, from the labels and the
    # poll, exactly as the server writes it.
    wait_for_phase(page, "short")
    status = page.locator("#status-text")
    expect(status).to_contain_text(f"less than the {asked} BTC asked")
    expect(status).not_to_contain_text("Nothing more needs to be sent")
    assert status.evaluate("e => e.textContent") == server_status(page.url)
    photograph(page, "words-short", "invoice")

    advance_sandbox(live_server.url, 60)
    settle(app)
    settle(app)
    wait_for_phase(page, "underpaid")
    expect(status).to_contain_text("Less than asked arrived, so this payment failed.")
    expect(status).to_contain_text(f"The payment processor emails {SHOWN} instructions to get "
                                   "back what you sent.")
    expect(page.locator('[data-field="refund-note"]')).to_contain_text(EMAIL)
    promises_nothing(page)

    # A failed invoice's page keeps asking (money may still arrive): its script redraws the
    # status from the labels and the poll. Every answer in full, the line emptied first, so
    # what shows next is the script's own, and it must be the server's to the letter.
    page.route("**/status", lambda route: route.continue_(headers={
        k: v for k, v in route.request.headers.items() if k.lower() != "if-none-match"}))
    page.evaluate("document.getElementById('status-text').textContent = ''")
    expect(status).not_to_have_text("")
    assert status.evaluate("e => e.textContent") == server_status(page.url)
    page.unroute("**/status")
    photograph(page, "words-underpaid", "invoice")
    check(page, "invoice: underpaid")


def test_the_email_field_says_who_writes_to_it_and_why(
        app: Flask, shop: TestShop, context: Any) -> None:
    response = shop.create(TYPE_3, email_user=None)
    assert response.status_code == 200, response.text
    page = context.new_page()
    page.goto(response.json()["data"]["url"])
    wait_for_phase(page, "email")
    expect(page.locator("#status-text")).to_contain_text("the payment processor needs it")
    # Read out with the field itself, not only seen beside it.
    expect(page.get_by_label("Your email address")).to_have_accessible_description(
        re.compile("If you send more or less than asked, the payment processor emails"))
    promises_nothing(page)
