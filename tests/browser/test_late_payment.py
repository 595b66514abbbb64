"""A payment after the invoice's time ran out, in Chromium: the expired page keeps watching,
the processor's signed callbacks for the late money reach the site, and the open page turns
by itself into "arrived after the time ran out", with the amount, its transaction and what
happens next; once credited, with what the processor converted it to. axe-core audits both
screens (English, German, Arabic; light and dark; 200% text at 320 px).

Screenshots: `build/screenshots/invoice-late-<seen|credited>-<lang>-<width>-<scheme>.png`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Flask
from kit.accessibility import check
from kit.browser import photograph, wait_for_phase
from kit.invoices import ORDER, TestShop, advance_sandbox, pay, settle
from kit.live import LiveServer
from playwright.sync_api import expect


def test_a_payment_after_expiry_is_shown_with_what_happens_next(
        app: Flask, live_server: LiveServer, shop: TestShop, context: Any) -> None:
    response = shop.create(ORDER, timer=True, sender_currency="BTC")
    assert response.status_code == 200, response.text
    page = context.new_page()
    page.goto(response.json()["data"]["url"])
    wait_for_phase(page, "waiting")
    address = page.locator('[data-field="address"]').inner_text()
    amount = page.locator('[data-field="amount"]').get_attribute("data-plain") or ""
    advance_sandbox(live_server.url, 16 * 60)
    settle(app)
    wait_for_phase(page, "expired")
    late = page.locator('[data-field="late"]')
    expect(late).to_be_hidden()

    # The customer's wallet sends anyway; the page, final but watching, notices by itself.
    pay(live_server.url, address, amount, "not_confirmed")
    settle(app)
    wait_for_phase(page, "late")
    expect(late).to_be_visible()
    expect(late.locator("h2")).to_have_text("Your payment arrived after the time ran out")
    expect(page.locator('[data-field="late-amount"]')).to_have_text(
        str(Decimal(amount).normalize()))
    expect(page.locator("#status-text")).to_contain_text(
        f"Your payment of {Decimal(amount).normalize()} BTC arrived after this invoice had "
        "closed")
    txs = page.locator('[data-field="late-transactions"] li')
    expect(txs).to_have_count(1)
    expect(txs.first).to_contain_text("seen, waiting for confirmation")
    txid = txs.first.locator(".mono").inner_text()
    assert len(txid) == 64
    assert txs.first.get_by_role("link", name="View on a block explorer").get_attribute(
        "href") is not None
    next_text = page.locator('[data-field="late-next"]').inner_text()
    for words in ("not lost", "this page shows it", "contact Shop", "do not pay this order again"):
        assert words in next_text
    # Settled on this page, never by the processor's email: no address is named for it.
    main = page.locator("main").inner_text()
    assert "refund link" not in main and "@" not in main
    expect(page.locator('[data-field="pay-box"]')).to_be_hidden()  # never pay twice
    expect(page.locator('[data-field="return-link"]')).to_be_visible()
    photograph(page, "late-seen", "invoice")
    check(page, "late: seen")  # axe, light and dark, and 200% text at 320 px

    advance_sandbox(live_server.url, 60)
    settle(app)
    settle(app)
    expect(txs.first).to_contain_text("confirmed")
    expect(txs.first).not_to_contain_text("waiting")
    expect(page.locator('[data-field="late-fiat"]')).to_contain_text("EUR")
    photograph(page, "late-credited", "invoice")
    for lang in ("en", "de", "ar"):
        other = context.new_page()
        try:
            other.goto(f"{page.url.split('?')[0]}?lang={lang}")
            expect(other.locator('[data-field="late"]')).to_be_visible()
            check(other, f"late: credited ({lang})")
        finally:
            other.close()
