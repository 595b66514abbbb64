"""The back office's deliveries and flagged callbacks in Chromium: signed in with a real
password and TOTP code, a failing delivery retried (the shop receives it), a replay previewed
then confirmed, a merchant's deliveries paused and resumed; axe-core on every screen, light
and dark, and screenshots at 320 and 1280 px in English, German and Arabic."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from kit.accessibility import audit
from kit.browser import SHOTS, shoot
from kit.callbacks import Shop, deposit_body, issue_address, post, running_shop, use_shop
from kit.console import PASSWORD, Person, add_person, next_code
from kit.live import LiveServer, wait_until
from playwright.sync_api import Page, expect
from sqlalchemy import update

from checkout import db
from checkout.models import Delivery, Merchant
from checkout.services import deliveries

A = 11


@pytest.fixture
def shop(app: Flask, merchant: Merchant) -> Iterator[Shop]:
    with running_shop() as the_shop:
        use_shop(app, the_shop, A)
        yield the_shop


def forwarded_and_failed(app: Flask, shop: Shop, processor_id: int, *,
                         give_up: bool = False, tag: str | None = None) -> int:
    """A real deposit callback for one of our pages, forwarded to the shop, which said 500."""
    address, foreign_id = f"bc1-ours-{processor_id}", f"user-{processor_id}"
    issue_address(app, address=address, foreign_id=foreign_id)
    post(app.test_client(), deposit_body(processor_id, "confirmed", address=address,
                                         foreign_id=foreign_id, tag=tag))
    shop.script = [500]
    with app.app_context():
        deliveries.run_due()
    with app.app_context(), db.transaction() as session:
        found = session.scalar(Delivery.__table__.select().with_only_columns(
            Delivery.id).order_by(Delivery.id.desc()).limit(1))
        assert found is not None
        if give_up:
            session.execute(update(Delivery).where(Delivery.id == found).values(
                state=deliveries.FAILED))
        return int(found)


def sign_in(page: Page, site: LiveServer, app: Flask, person: Person) -> None:
    page.goto(f"{site.url}/console/deliveries")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.locator('input[name="code"]').fill(next_code(app, person))
    page.locator('input[name="code"]').press("Enter")
    expect(page.get_by_role("heading", level=1, name="Deliveries")).to_be_visible()


def look(page: Page, name: str, prepare: Callable[[Page], None] | None = None) -> None:
    """axe-core light and dark, then screenshots of this screen in each language (after
    `prepare`, which opens what the screen hides)."""
    audit(page, name)
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


def test_retry_replay_pause_and_resume_in_the_browser(
        app: Flask, site: LiveServer, shop: Shop, context: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    failing = forwarded_and_failed(app, shop, 1)
    forwarded_and_failed(app, shop, 2, give_up=True)
    forwarded_and_failed(app, shop, 3, tag="tag-the-processor-made-up")  # flagged too
    person = add_person(app, "developer@shop.example", roles={A: "owner"})
    page = context.new_page()
    sign_in(page, site, app, person)

    page.goto(f"{site.url}/console/deliveries?state=failing")
    look(page, "deliveries-failing")
    received = len(shop.received)
    page.get_by_role("button", name=f"Retry now delivery {failing}").click()
    expect(page.get_by_role("status")).to_contain_text("the shop accepted it")
    wait_until(lambda: len(shop.received) == received + 1, what="the retry at the shop")
    look(page, "deliveries-retried")

    page.goto(f"{site.url}/console/deliveries?merchant={A}&state=given_up")
    page.get_by_role("link", name="Replay these deliveries…").click()
    expect(page.get_by_text("1 delivery will be sent again now.")).to_be_visible()
    look(page, "deliveries-replay-preview")
    page.get_by_role("button", name="Replay 1 delivery").click()
    expect(page.get_by_role("status")).to_contain_text("Deliveries queued to be sent again now: 1.")

    page.get_by_role("button", name="Pause Shop").click()
    expect(page.get_by_role("status")).to_contain_text("paused")
    look(page, "deliveries-paused")
    with app.app_context():
        deliveries.run_due()
    assert len(shop.received) == received + 1  # the replayed one waits while paused
    page.get_by_role("button", name="Resume Shop").click()
    expect(page.get_by_role("status")).to_contain_text("resumed")
    with app.app_context():
        deliveries.run_due()
    assert len(shop.received) == received + 2

    page.get_by_role("link", name="Flagged callbacks").click()
    expect(page.get_by_role("heading", level=1, name="Flagged callbacks")).to_be_visible()

    def open_body(page: Page) -> None:
        page.locator("details summary").first.click()
        expect(page.locator("details pre").first).to_be_visible()

    open_body(page)
    look(page, "flagged", open_body)
