"""The back office's settings and users pages in Chromium, as an owner uses them: signed in
with a real TOTP code, the webhook URL changed with the code asked again, the accent
previewed (the sample page painted in the colours pages will use) and saved, a user invited
(the link shown). axe-core finds nothing in light or dark; screenshots at 320 and 1280 px,
in English, German and Arabic (build/screenshots/console-*)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from kit.accessibility import audit
from kit.browser import SHOTS, shoot
from kit.console import PASSWORD, Clock, Person, add_person
from kit.live import LiveServer
from playwright.sync_api import Page, expect

from checkout import branding, db, merchants
from checkout.models import Merchant

LANGUAGES = {"en": "en-GB", "de": "de-DE", "ar": "ar"}


@pytest.fixture
def owner_page(browser: Any, app: Flask, site: LiveServer, request: pytest.FixtureRequest
               ) -> Iterator[tuple[Page, Person, Clock]]:
    lang = request.param
    tick = Clock(app)
    person = add_person(app, "owner@shop.example", roles={11: "owner"})
    context = browser.new_context(locale=LANGUAGES[lang])
    try:
        page = context.new_page()
        page.goto(f"{site.url}/console/login")
        page.fill("#email", person.email)
        page.fill("#password", PASSWORD)
        page.locator("form.narrow button[type=submit]").click()
        page.fill("#code", tick.code(person))
        page.locator("form.narrow button[type=submit]").click()
        expect(page.locator(".who")).to_have_text(person.email)
        yield page, person, tick
    finally:
        context.close()


def look(page: Page, name: str) -> None:
    """No axe violation in light or dark, and the screenshots."""
    audit(page, name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shoot(page, name)


def stored(app: Flask) -> Merchant:
    with app.app_context():
        merchant = db.session().get(Merchant, 11)
        assert merchant is not None
        db.session().expunge(merchant)
        return merchant


@pytest.mark.parametrize("owner_page", list(LANGUAGES), indirect=True)
def test_an_owner_changes_settings_and_invites_a_user(app: Flask, site: LiveServer,
                                                      owner_page: tuple[Page, Person, Clock]
                                                      ) -> None:
    page, person, tick = owner_page
    lang = page.evaluate("document.documentElement.lang")
    page.goto(f"{site.url}/console/settings?merchant=11")
    expect(page.locator("#webhook-url")).to_have_value(
        "https://shop.example/coinspaid/callback")
    look(page, f"console-settings-{lang}")

    # A bad webhook URL and return host: refused by the command's checks, in the person's
    # language (the browser's), each under its field; nothing changes.
    hosts = page.locator("#return-hosts").input_value()
    page.fill("#webhook-url", "ftp://shop.example/hook")
    page.fill("#return-hosts", "https://shop.example/back")
    page.fill("#developer-code", tick.code(person))
    page.locator("#developer-code").press("Enter")
    expect(page.locator("#webhook-url-error")).to_contain_text("'ftp://shop.example/hook'")
    expect(page.locator("#return-hosts-error")).to_contain_text("'https://shop.example/back'")
    english = "must be an http(s) URL"
    if lang == "en":
        expect(page.locator("#webhook-url-error")).to_contain_text(english)
    else:
        expect(page.locator("#webhook-url-error")).not_to_contain_text(english)
    assert stored(app).webhook_url == "https://shop.example/coinspaid/callback"
    look(page, f"console-settings-field-errors-{lang}")
    page.fill("#return-hosts", hosts)

    # The webhook URL, with a wrong code first: nothing changes, the error says so.
    page.fill("#webhook-url", "https://shop.example/hooks/v2")
    page.fill("#developer-code", "000000")
    page.locator("#developer-code").press("Enter")
    expect(page.locator("#developer-code-error")).to_be_visible()
    assert stored(app).webhook_url == "https://shop.example/coinspaid/callback"
    look(page, f"console-settings-wrong-code-{lang}")
    page.fill("#developer-code", tick.code(person))
    page.locator("#developer-code").press("Enter")
    expect(page.locator("p.notice[role=status]")).to_be_visible()
    assert stored(app).webhook_url == "https://shop.example/hooks/v2"

    # The accent: previewed in the colours pages will use, then saved.
    page.fill("#accent", "#ffee00")
    page.locator("button[name=preview]").click()
    light = branding.palette("#ffee00")["light"].accent
    expect(page.locator(".preview-light .preview-button")).to_have_css(
        "background-color", _rgb(light))
    expect(page.locator("caption")).to_contain_text("#ffee00")
    assert stored(app).accent is None  # a preview saves nothing
    look(page, f"console-settings-preview-{lang}")
    page.locator("form.settings-form button.primary").first.click()
    expect(page.locator("p.notice[role=status]")).to_be_visible()
    assert stored(app).accent == "#ffee00"

    # The API secret replaced: the new one shown this once.
    old_secret = stored(app).api_secret
    page.fill("#secret-code", tick.code(person))
    page.locator("#secret-code").press("Enter")
    expect(page.locator("#new-secret")).to_have_text(stored(app).api_secret)
    assert stored(app).api_secret != old_secret
    look(page, f"console-settings-secret-{lang}")

    # A user invited: the one-time link shown to copy (no mail server set).
    page.goto(f"{site.url}/console/users?merchant=11")
    page.fill("#invite-email", f"new-{lang}@shop.example")
    page.select_option("#invite-role", "support")
    page.fill("#invite-code", tick.code(person))
    page.locator("#invite-code").press("Enter")
    expect(page.locator("#invitation-link")).to_contain_text("/console/enrol/")
    look(page, f"console-users-invited-{lang}")


def _rgb(colour: str) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_an_operator_sees_every_user_and_disables_one(browser: Any, app: Flask,
                                                      site: LiveServer, lang: str) -> None:
    tick = Clock(app)
    operator = add_person(app, "op@site.example", operator=True)
    add_person(app, "owner@shop.example", roles={11: "owner"})
    leaving = add_person(app, "leaving@shop.example", roles={11: "support"})
    with app.app_context():
        merchants.add(merchants.NewMerchant(22, "Second Shop", "key-22", "secret-22"))
    context = browser.new_context(locale=LANGUAGES[lang])
    try:
        page = context.new_page()
        page.goto(f"{site.url}/console/login")
        page.fill("#email", operator.email)
        page.fill("#password", PASSWORD)
        page.locator("form.narrow button[type=submit]").click()
        page.fill("#code", tick.code(operator))
        page.locator("form.narrow button[type=submit]").click()
        page.goto(f"{site.url}/console/settings")
        expect(page.locator("main")).to_contain_text("Second Shop")
        look(page, f"console-settings-choose-{lang}")
        page.goto(f"{site.url}/console/users")
        expect(page.locator("table")).to_contain_text("leaving@shop.example")
        page.select_option("#disable-user", str(leaving.id))
        page.fill("#disable-code", tick.code(operator))
        page.locator("#disable-code").press("Enter")
        expect(page.locator("p.notice[role=status]")).to_be_visible()
        with app.app_context():
            from checkout.models import User
            user = db.session().get(User, leaving.id)
            assert user is not None and user.disabled_at is not None
        look(page, f"console-users-all-{lang}")
    finally:
        context.close()
