"""Refunds in the back office in Chromium, as an owner decides one: signed in with a real TOTP
code, the waiting refund found in the list, a wrong code refused, then approved with the code
asked again and seen sent through the embedded sandbox; the policies in the settings, a
hostile value refused under its field. axe-core finds nothing in light or dark; screenshots
at 320 and 1280 px in English, German and Arabic (build/screenshots/console-refund*)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from kit.accessibility import audit
from kit.browser import SHOTS, shoot
from kit.console import Clock, add_person, sign_in_browser
from kit.live import LiveServer
from kit.refunds import overpaid_page, requested_refund, state_of
from playwright.sync_api import Page, expect


def look(page: Page, name: str, prepare: Callable[[Page], None] | None = None) -> None:
    """axe-core light and dark, then screenshots in each language."""
    audit(page, name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = page.url
    for lang in ("en", "de", "ar"):
        page.goto(url + ("&" if "?" in url else "?") + f"lang={lang}")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        if prepare is not None:
            prepare(page)
        if lang != "en":
            audit(page, f"{name}-{lang}")
        shoot(page, f"console-{name}-{lang}")
    page.goto(url)


def test_an_owner_approves_a_waiting_refund_with_the_code_asked_again(
        app: Flask, site: LiveServer, context: Any) -> None:
    tick = Clock(app)
    refund_id = requested_refund(app, overpaid_page(app, app.test_client(), site))
    owner = add_person(app, "owner@shop.example", roles={11: "owner"})
    page = context.new_page()
    sign_in_browser(app, page, site.url, owner)

    page.get_by_role("link", name="Refunds").click()
    row = page.locator("table.refunds-list tbody tr").first
    expect(row).to_contain_text("0.00077 BTC")
    expect(row).to_contain_text("Waiting for a decision")
    look(page, "refunds")

    row.get_by_role("link", name=f"Decide on refund {refund_id}").click()
    expect(page.locator("#approve-code")).to_be_visible()
    look(page, "refund-decision")

    page.fill("#approve-code", "000000")
    page.locator("#approve-code").press("Enter")
    expect(page.locator("#approve-code-error")).to_be_visible()
    assert state_of(app, refund_id).state == "requested"
    audit(page, "refund-wrong-code")
    shoot(page, "console-refund-wrong-code-en")

    page.fill("#reject-reason", "")
    page.fill("#approve-code", tick.code(owner))
    page.get_by_role("button", name="Approve and send").click()
    expect(page.locator("p.notice[role=status]")).to_contain_text("Approved and sent")
    expect(page.locator(".refund-state")).to_have_text("Sent")
    assert state_of(app, refund_id).state == "sent"
    look(page, "refund-sent")

    # The payment's story lists its refund and who approved it.
    page.locator(".refund-facts a.mono").click()
    expect(page.locator("#refunds-heading")).to_be_visible()
    expect(page.locator("ol.story")).to_contain_text(f"{owner.email} approved refund {refund_id}")
    look(page, "payment-refunds")


def test_an_owner_sets_the_policies(app: Flask, site: LiveServer, context: Any) -> None:
    tick = Clock(app)
    owner = add_person(app, "owner@shop.example", roles={11: "owner"})
    page = context.new_page()
    sign_in_browser(app, page, site.url, owner)
    page.goto(f"{site.url}/console/settings?merchant=11")
    look(page, "settings-policies")
    page.fill("#underpaid-percent", "1e3")
    page.fill("#refund-auto-below", "25")
    page.fill("#policies-code", tick.code(owner))
    page.locator("#policies-code").press("Enter")
    expect(page.locator("#underpaid-percent-error")).to_be_visible()
    # The answer to a POST: looked at as it is (a reload in another language would GET it).
    audit(page, "settings-policies-error")
    shoot(page, "console-settings-policies-error-en")
    page.fill("#underpaid-percent", "1.5")
    page.fill("#policies-code", tick.code(owner))
    page.locator("#policies-code").press("Enter")
    expect(page.locator("p.notice[role=status]")).to_be_visible()
    expect(page.locator("#refund-auto-below")).to_have_value("25")
