"""Accessibility of every customer page state (issue 10, item 3), in Chromium.

axe-core (bundled by axe-playwright-python: no network) audits each state of both page
kinds, light and dark, full page and iframe layout, every language the site has of English,
German and Arabic, and the test fails on any violation of any rule. At each state the text
is also set to 200% at 320 px, where the page must never scroll sideways (WCAG 1.4.4, 1.4.10).
Keyboard-only tests pay a deposit and an invoice with visible focus at every step.

The flows are those of test_money_states.py and test_invoice_page.py, driven the same way:
real callbacks from the embedded processor, real worker runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from kit.accessibility import audit, check
from kit.browser import confirm_all, link, pay, photograph, wait_for_phase
from kit.framing import LINK as FRAMED_LINK
from kit.framing import Shop
from kit.invoice_browser import confirm as confirm_invoice
from kit.invoice_browser import create
from kit.invoice_browser import pay as pay_invoice
from kit.invoice_browser import phase as invoice_phase
from kit.invoices import TestShop, advance_sandbox, settle
from kit.live import LiveServer
from playwright.sync_api import Page, expect

from checkout import i18n, merchants

LANGUAGES = [lang for lang in ("en", "de", "ar") if lang in i18n.LANGUAGES]
Check = Callable[[Page, str], None]








def with_lang(url: str, lang: str) -> str:
    if lang == "en":
        return url
    return url + ("&" if "?" in url else "?") + urlencode({"lang": lang})


# ---------------------------------------------------------------- the deposit page


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("layout", ["page", "iframe"])
def test_every_deposit_state_passes_axe(app: Flask, site: LiveServer, customer: Page,
                                        layout: str, lang: str) -> None:
    framed = layout == "iframe" or None
    page = customer
    page.goto(with_lang(link(site.url, is_iframe=framed), lang))
    if framed:
        expect(page.locator("body")).to_have_class("compact")
    wait_for_phase(page, "waiting")
    check(page, "waiting")
    pay(app, site, page, "0.0005")
    wait_for_phase(page, "partial")
    check(page, "partial")
    pay(app, site, page, "0.0007", status="not_confirmed")
    wait_for_phase(page, "confirming")
    check(page, "seen")
    confirm_all(app)
    wait_for_phase(page, "paid")
    check(page, "paid")
    page.locator('[data-field="receipt-link"]').click()
    page.wait_for_selector(".txids")
    check(page, "receipt")

    page.goto(with_lang(link(site.url, foreign_id="order-2", is_iframe=framed), lang))
    pay(app, site, page, "0.002")
    wait_for_phase(page, "overpaid")
    check(page, "overpaid")

    page.goto(with_lang(link(site.url, foreign_id="order-3", is_iframe=framed), lang))
    pay(app, site, page, "0.0012", status="cancelled")
    wait_for_phase(page, "cancelled")
    check(page, "cancelled")

    page.goto(with_lang(link(site.url, currency="LTC", amount=None, foreign_id="customer-9",
                             is_iframe=framed), lang))
    check(page, "open amount")
    pay(app, site, page, "0.005")
    wait_for_phase(page, "below_minimum")
    check(page, "refused too small")

    page.goto(with_lang(link(site.url, currency="XRP", amount="25", is_iframe=framed), lang))
    check(page, "destination tag")


def test_a_deposit_without_javascript_passes_axe(app: Flask, site: LiveServer,
                                                 customer: Page) -> None:
    """What a browser without JavaScript shows: the server's page, its <noscript> parts
    shown. (axe itself needs JavaScript, so the page's own script is blocked instead.)"""
    page = customer
    page.route("**/static/checkout.*js", lambda route: route.abort())  # any digest
    page.goto(link(site.url))
    page.evaluate("""() => document.querySelectorAll('body noscript').forEach(n => {
        const t = document.createElement('template'); t.innerHTML = n.textContent;
        n.replaceWith(t.content); })""")
    expect(page.get_by_role("link", name="Check again now")).to_be_visible()
    check(page, "waiting, no JavaScript")


# ---------------------------------------------------------------- the invoice page


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_invoice_state_passes_axe(app: Flask, live_server: LiveServer, shop: TestShop,
                                        customer: Page, lang: str) -> None:
    page = customer
    page.goto(with_lang(create(shop), lang))
    invoice_phase(page, "choose")
    check(page, "currency picker")
    page.locator('input[name="currency"][value="BTC"]').check()
    page.locator('form[data-field="picker"] button[type="submit"]').click()
    invoice_phase(page, "waiting")
    check(page, "waiting")
    pay_invoice(app, live_server, page, status="not_confirmed")
    invoice_phase(page, "confirming")
    check(page, "seen")
    confirm_invoice(app, live_server)
    invoice_phase(page, "paid")
    check(page, "paid")
    page.locator('[data-field="receipt-link"]').click()
    page.wait_for_selector(".txids")
    check(page, "receipt")

    # A form error: the picker sent without a choice (as a browser without validation would).
    page.goto(with_lang(create(shop, foreign_id="order-8", email_user=None), lang))
    page.locator('form[data-field="picker"]').evaluate("f => f.noValidate = true")
    page.locator('form[data-field="picker"] button[type="submit"]').click()
    expect(page.locator('[data-field="form-error"]')).to_be_visible()
    check(page, "picker with an error and the email field")

    # The shop chose the currency but gave no email: the email form comes first.
    page.goto(with_lang(create(shop, foreign_id="order-9", email_user=None, timer=True,
                               sender_currency="BTC"), lang))
    invoice_phase(page, "email")
    check(page, "email form")

    page.goto(with_lang(create(shop, foreign_id="order-10", type="good_until_expired",
                               timer=True, sender_currency="BTC"), lang))
    invoice_phase(page, "waiting")
    due = page.locator('[data-field="amount"]').get_attribute("data-plain") or ""
    pay_invoice(app, live_server, page, str((Decimal(due) / 2).quantize(Decimal("0.00000001"))))
    confirm_invoice(app, live_server)
    invoice_phase(page, "partial")
    check(page, "partial")

    page.goto(with_lang(create(shop, foreign_id="order-11"), lang))
    page.locator('input[name="currency"][value="BTC"]').check()
    page.locator('form[data-field="picker"] button[type="submit"]').click()
    invoice_phase(page, "waiting")
    advance_sandbox(live_server.url, 16 * 60)
    settle(app)
    invoice_phase(page, "requote")
    check(page, "requote")

    page.goto(with_lang(create(shop, foreign_id="order-12", timer=True, sender_currency="BTC"),
                        lang))
    invoice_phase(page, "waiting")
    advance_sandbox(live_server.url, 16 * 60)
    settle(app)
    invoice_phase(page, "expired")
    check(page, "failed: expired")

    page.goto(with_lang(create(shop, foreign_id="order-13", timer=True, sender_currency="BTC"),
                        lang))
    invoice_phase(page, "waiting")
    due = page.locator('[data-field="amount"]').get_attribute("data-plain") or ""
    pay_invoice(app, live_server, page, str((Decimal(due) / 2).quantize(Decimal("0.00000001"))))
    invoice_phase(page, "underpaid")
    check(page, "failed: underpaid")

    page.goto(with_lang(create(shop, foreign_id="order-14"), lang))
    assert shop.cancel("order-14").status_code == 200
    invoice_phase(page, "cancelled_by_shop")
    check(page, "failed: cancelled by the shop")


def test_an_invoice_that_timed_out_passes_axe(app: Flask, live_server: LiveServer,
                                              shop: TestShop, customer: Page) -> None:
    app.config["SANDBOX_CONFIRM_SECONDS"] = 3 * 24 * 3600  # a chain that never confirms
    page = customer
    page.goto(create(shop, timer=True, sender_currency="BTC"))
    invoice_phase(page, "waiting")
    pay_invoice(app, live_server, page, status="not_confirmed")
    for _ in range(3):
        advance_sandbox(live_server.url, 9 * 3600)
        settle(app)
    invoice_phase(page, "timeout")
    check(page, "failed: timeout")


# ---------------------------------------------------------------- error pages and frames


@pytest.mark.parametrize("lang", LANGUAGES)
def test_error_pages_pass_axe(app: Flask, site: LiveServer, customer: Page, lang: str) -> None:
    page = customer
    for state, url in [
        ("landing", "/"), ("unknown page", "/p/nothing-here"),
        ("damaged link", "/terminal?data=e30&signature=00"),
    ]:
        page.goto(with_lang(site.url + url, lang))
        check(page, state)
    page.goto(with_lang(link(site.url, currency="DOGGY"), lang))
    expect(page.locator('[role="alert"]')).to_be_visible()
    check(page, "refused link with the way back")


def test_the_busy_page_passes_axe(app: Flask, site: LiveServer, customer: Page) -> None:
    """The processor cannot be reached: the customer gets the retry page."""
    app.config["PROCESSOR_URL"] = "http://127.0.0.1:9/api/v2"  # nothing listens there
    page = customer
    page.goto(link(site.url))
    expect(page.locator("h1")).to_have_text("The payment service is busy")
    check(page, "busy, try again")


@pytest.fixture
def framing_shop(app: Flask, site: LiveServer) -> Iterator[Shop]:
    """A shop on another origin that frames the checkout (test_page_review's Shop)."""
    shop = Shop(site)
    with app.app_context():
        merchants.edit(11, merchants.MerchantEdit(add_frame_origins=(shop.live.url,)))
    yield shop
    shop.live.server.shutdown()
    shop.live.server.server_close()


def test_the_page_and_its_errors_inside_a_shops_frame_pass_axe(
        framing_shop: Shop, context: Any) -> None:
    shop = framing_shop
    page = context.new_page()
    shop.frame(FRAMED_LINK)
    page.goto(shop.live.url + "/")
    frame = page.frame_locator("iframe")
    expect(frame.locator('[data-field="address"]')).to_be_visible()
    audit(page.frames[1], "waiting, in a shop's iframe")
    shop.frame({**FRAMED_LINK, "currency": "DOGGY"})
    page.goto(shop.live.url + "/")
    expect(frame.locator('[role="alert"]')).to_be_visible()
    audit(page.frames[1], "refused link, in a shop's iframe")


def test_the_embed_modal_passes_axe(framing_shop: Shop, context: Any) -> None:
    shop = framing_shop
    shop.embed(FRAMED_LINK)
    page = context.new_page()
    page.goto(shop.live.url + "/")
    expect(page.frame_locator("iframe").locator('[data-field="address"]')).to_be_visible()
    # The modal's own markup on the shop's page (the shop's page itself is not ours).
    audit(page, "embed.js modal", within='[data-checkout="overlay"]')
    audit(page.frames[1], "the checkout inside the modal")


def test_the_audit_fails_on_a_violation(context: Any) -> None:
    """The audit can fail: axe really runs and its findings fail the test."""
    page = context.new_page()
    page.set_content('<!doctype html><html lang="en"><title>t</title><main>'
                     '<p style="color:#999;background:#fff">faint</p><img src="data:,">'
                     '</main></html>')
    with pytest.raises(AssertionError) as failed:
        audit(page, "a bad page")
    assert "image-alt" in str(failed.value) and "color-contrast" in str(failed.value)


@pytest.mark.parametrize("accent", ["#ffd400", "#0b5cad", "#1d2025"])
def test_a_branded_page_keeps_aa_contrast_in_light_and_dark(
        app: Flask, site: LiveServer, customer: Page, tmp_path: Any, accent: str) -> None:
    """A pale, a usual and a dark accent, and a logo: the page the customer sees still
    passes axe (colour contrast included) in both schemes."""
    from PIL import Image

    Image.new("RGBA", (240, 80), (20, 20, 20, 255)).save(tmp_path / "logo.png")
    runner = app.test_cli_runner()
    result = runner.invoke(args=[
        "merchant", "edit", "--client-id", "11", "--display-name", "Nord Books",
        "--accent", accent, "--logo", str(tmp_path / "logo.png"),
        "--instructions", "Pay from your own wallet, not from an exchange."])
    assert result.exit_code == 0, result.output
    page = customer
    page.goto(link(site.url))
    expect(page.locator("img.logo")).to_be_visible()
    expect(page.locator('[data-field="instructions"]')).to_contain_text("own wallet")
    check(page, f"branded {accent}")
    photograph(page, f"branded-{accent[1:]}")
