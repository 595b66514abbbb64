"""A payment's story in the back office, in Chromium: a support user signs in with a real TOTP
code, opens a paid deposit's story, resends the latest event (the shop's webhook receives it
again, signed with the merchant's secret) and adds a note; axe-core finds nothing in light or
dark, and screenshots at 320 and 1280 px in English, German and Arabic go to
build/screenshots/ (console-story-*)."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from kit.accessibility import check
from kit.browser import photograph, run_worker
from kit.callbacks import Shop
from kit.console import PASSWORD, add_person, next_code
from kit.deposits import LINK, open_link
from kit.live import LiveServer
from kit.payments import pay
from playwright.sync_api import Page, expect

from checkout import db
from checkout.models import Page as PageRow

NOTE = "Customer called <b>twice</b> & was told to wait"


@pytest.fixture
def paid(app: Flask, site: LiveServer, webhook: Shop) -> str:
    """A deposit page paid through the sandbox; the shop was told once."""
    page_id = open_link(app.test_client(), LINK).rsplit("/", 1)[1]
    with app.app_context():
        address = db.session().get(PageRow, page_id).address  # type: ignore[union-attr]
    pay(site.url, address or "", LINK["amount"], "confirmed")
    run_worker(app)
    assert len(webhook.received) == 1
    return page_id


def test_support_resends_the_latest_event_and_adds_a_note(
        app: Flask, site: LiveServer, context: object, paid: str, webhook: Shop) -> None:
    person = add_person(app, "support@shop.example", roles={11: "support"})
    page: Page = context.new_page()  # type: ignore[attr-defined]
    page.goto(f"{site.url}/console/payments/{paid}")
    # Not signed in: the sign-in comes first, then the story it was asked for.
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("The 6-digit code from your authenticator app").fill(next_code(app, person))
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{site.url}/console/payments/{paid}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("user-7")
    expect(page.locator(".story-tried")).to_contain_text("HTTP 200")
    check(page, "story")
    photograph(page, "story", kind="console")

    page.get_by_role("button", name="Resend the latest event to the shop").click()
    expect(page.get_by_role("status")).to_contain_text("queued for the shop again")
    run_worker(app)
    assert len(webhook.received) == 2
    again = webhook.received[1]
    assert again.body == webhook.received[0].body and webhook.verifies(again)
    assert json.loads(again.body)["status"] == "confirmed"

    page.get_by_label("Note").fill(NOTE)
    page.get_by_role("button", name="Add the note").click()
    expect(page.get_by_role("status")).to_contain_text("Your note is added.")
    expect(page.locator(".story-note-text")).to_have_text(NOTE)
    assert page.locator(".story-note-text b").count() == 0
    page.reload()  # the resend's attempt, now sent, in the story
    expect(page.locator(".story-tried")).to_have_count(2)
    check(page, "story-acted")
    photograph(page, "story-acted", kind="console")

    page.get_by_label("Note").fill("   ")
    page.get_by_role("button", name="Add the note").click()
    expect(page.get_by_role("alert")).to_contain_text("Please write a note.")
    check(page, "story-note-refused")
    photograph(page, "story-note-refused", kind="console")
    page.close()
