"""The whole payment with the keyboard alone (issue 10, item 3): a deposit and an invoice,
from the link to the shop, with Tab, arrows, Space and Enter, never a click. Every element
that takes focus on the way shows a visible outline."""

from __future__ import annotations

from typing import Any

from flask import Flask
from kit.browser import confirm_all, link, pay, wait_for_phase
from kit.invoice_browser import confirm as confirm_invoice
from kit.invoice_browser import create
from kit.invoice_browser import pay as pay_invoice
from kit.invoice_browser import phase as invoice_phase
from kit.invoices import TestShop
from kit.live import LiveServer
from playwright.sync_api import Page, expect

FOCUS = """() => { const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e), r = e.getBoundingClientRect();
  return {tag: e.tagName, text: (e.textContent || e.value || '').trim().slice(0, 40),
          style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor,
          shown: r.width > 0 && r.height > 0}; }"""


def visible_focus(page: Page) -> dict[str, Any]:
    """The focused element, which must show a solid outline of at least 2 px."""
    focus = page.evaluate(FOCUS)
    assert focus is not None, "focus was lost to the page's body"
    assert focus["shown"], focus
    assert focus["style"] not in ("none", "hidden") and focus["width"] >= 2, focus
    assert focus["color"] not in ("transparent", "rgba(0, 0, 0, 0)"), focus
    return dict(focus)


def tab_to(page: Page, selector: str, limit: int = 40) -> None:
    """Press Tab until `selector` has focus, checking the focus ring at every stop."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUS) is None:
            # Past the last control focus leaves the page for the browser's own; the next
            # Tab comes back to the first.
            seen.append("(out of the page)")
            continue
        seen.append(visible_focus(page)["text"])
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} was not reached with {limit} presses of Tab: {seen}")


def press_enter_on(page: Page, selector: str) -> None:
    tab_to(page, selector)
    page.keyboard.press("Enter")


def copies(page: Page, what: str) -> None:
    """Tab to the copy button of `what`, press Enter: the clipboard holds what is shown."""
    shown = page.locator(f'[data-field="{what}"]').inner_text()
    press_enter_on(page, f'button[data-copy="{what}"]')
    expect(page.locator(f'button[data-copy="{what}"]')).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == shown


def start_from_the_top(page: Page) -> None:
    """Focus back at the document's start, as after the page changed under the customer."""
    page.evaluate("document.activeElement && document.activeElement.blur()")


def test_a_deposit_paid_with_the_keyboard_alone(app: Flask, site: LiveServer,
                                                customer: Page) -> None:
    page = customer
    page.goto(link(site.url))
    wait_for_phase(page, "waiting")
    copies(page, "amount")
    copies(page, "address")
    pay(app, site, page, "0.0012", status="not_confirmed")
    confirm_all(app)
    wait_for_phase(page, "paid")
    start_from_the_top(page)
    press_enter_on(page, '[data-field="return-link"]')
    page.wait_for_url("https://shop.example/back**")
    expect(page.locator("main")).to_have_text("Back at the shop")


def test_an_invoice_paid_with_the_keyboard_alone(app: Flask, live_server: LiveServer,
                                                 shop: TestShop,
                                                 customer: Page) -> None:
    page = customer
    page.goto(create(shop))
    invoice_phase(page, "choose")
    tab_to(page, 'input[name="currency"]')
    for _ in range(30):  # the arrows move through the radio group, choosing as they go
        if page.evaluate("document.activeElement.value") == "LTC":
            break
        page.keyboard.press("ArrowDown")
        visible_focus(page)
    page.keyboard.press("Space")
    expect(page.locator('input[name="currency"][value="LTC"]')).to_be_checked()
    press_enter_on(page, 'form[data-field="picker"] button[type="submit"]')
    invoice_phase(page, "waiting")
    # The attribute shows before the new page's stylesheet applies (a loaded machine lags):
    # its focus outline is checked once the page has loaded.
    page.wait_for_load_state("load")
    assert "LTC" in page.locator(".value-amount").inner_text()
    copies(page, "amount")
    copies(page, "address")
    pay_invoice(app, live_server, page)
    confirm_invoice(app, live_server)
    invoice_phase(page, "paid")
    # A final invoice screen is the server's to draw: the script reloads the page once.
    expect(page.locator("#checkout")).to_have_attribute("data-final", "true")
    page.wait_for_load_state("load")
    start_from_the_top(page)
    press_enter_on(page, '[data-field="return-link"]')
    page.wait_for_url("https://shop.example/paid**")
    expect(page.locator("main")).to_have_text("Back at the shop")
