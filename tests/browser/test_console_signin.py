"""The back office's sign-in in Chromium, as a new user lives it: the one-time link printed by
`flask user add`, a password, the authenticator (the QR read back by zxing-cpp and the key as
text, both the same secret), a real TOTP code from pyotp, the recovery codes shown once; then
signing out, signing in with password and code, the list of sessions, signing another one out
and signing out; and an enrolled user's invitation accepted on its page. Every screen is
photographed at 320 and 1280 px, light and dark, in English, German and Arabic, and passes
axe-core with no violation."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from flask import Flask
from kit.accessibility import audit, fits_at_200_percent
from kit.browser import scan_qr, shoot
from kit.console import PASSWORD as KIT_PASSWORD
from kit.console import add_person
from kit.live import LiveServer
from playwright.sync_api import Page, expect

from checkout import access, clock, db, i18n
from checkout.models import Merchant
from checkout.services import console_sessions, people

PASSWORD = "a long phrase of seven words to remember"
LANGUAGES = [lang for lang in ("en", "de", "ar") if lang in i18n.LANGUAGES]
PHONE = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"


def _added_link(app: Flask, site: LiveServer, email: str, client_id: int) -> str:
    result = app.test_cli_runner().invoke(args=[
        "user", "add", "--email", email, "--client-id", str(client_id), "--role", "owner",
        "--base-url", site.url])
    assert result.exit_code == 0, result.output
    found = re.search(r"(http://\S+/console/enrol/\S+)", result.output)
    assert found, result.output
    return found.group(1)


def _with_lang(url: str, lang: str) -> str:
    return url if lang == "en" else f"{url}?lang={lang}"


def _look(page: Page, state: str, lang: str) -> None:
    """axe-core light and dark, the text at 200 % at 320 px, and the screenshots."""
    expect(page.locator("html")).to_have_attribute("lang", lang)
    audit(page, f"{state} ({lang})")
    fits_at_200_percent(page, f"{state} ({lang})")
    shoot(page, f"console-{state}-{lang}")


def _next_code(secret: str) -> str:
    """A code of the next 30 s step: the one now was spent by the step before (a code is
    good once) and the site accepts one step of drift."""
    return pyotp.TOTP(secret).at(time.time() + 30)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_enrol_sign_out_sign_in_and_the_sessions(app: Flask, site: LiveServer,
                                                 merchant: Merchant, context: Any,
                                                 lang: str) -> None:
    email = f"owner-{lang}@shop.example"
    page = context.new_page()
    page.goto(_with_lang(_added_link(app, site, email, merchant.client_id), lang))

    # The password, twice.
    _look(page, "enrol-password", lang)
    page.locator("#password").fill(PASSWORD)
    page.locator("#again").fill(PASSWORD)
    page.locator("form.enrol button[type=submit]").click()

    # The authenticator: the QR and the key are the same secret.
    secret_text = page.locator('[data-field="totp-secret"]')
    expect(secret_text).to_be_visible()
    _look(page, "enrol-factor", lang)
    secret = secret_text.inner_text().replace(" ", "")
    uri = scan_qr(page.locator(".enrol-qr img"))
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert parse_qs(parts.query)["secret"] == [secret]
    assert email in parts.path.replace("%40", "@")
    page.locator("#code").fill(pyotp.TOTP(secret).now())
    page.locator("form.enrol button[type=submit]").click()

    # Ten recovery codes, once; signed in.
    codes = page.locator('[data-field="recovery-codes"] li')
    expect(codes).to_have_count(10)
    _look(page, "recovery-codes", lang)
    page.locator("main a.button").click()
    expect(page.locator(".who")).to_have_text(email)

    # Signing out, then in with the password and a code.
    page.locator(".signout button").click()
    expect(page.locator("#email")).to_be_visible()
    _look(page, "login", lang)
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    expect(page.locator("#code")).to_be_visible()
    _look(page, "code", lang)
    page.locator("#code").fill(_next_code(secret))
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".who")).to_have_text(email)

    # A second session elsewhere (a phone), listed and signed out from here.
    with app.app_context(), db.transaction() as session:
        user = people.by_email(session, email)
        assert user is not None
        console_sessions.start(session, user, now=clock.now(), address="203.0.113.9",
                               user_agent=PHONE, stage=console_sessions.SIGNED_IN)
    page.locator('nav a[href*="/console/sessions"]').click()
    rows = page.locator("table.sessions tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("table.sessions strong")).to_have_count(1)  # "this session"
    _look(page, "sessions", lang)
    rows.filter(has_text="203.0.113.9").locator("button").click()
    expect(page.locator("p.notice")).to_be_visible()
    expect(rows).to_have_count(1)
    _look(page, "sessions-signed-out-elsewhere", lang)

    page.locator(".signout button").click()
    expect(page.locator("#email")).to_be_visible()
    page.goto(f"{site.url}/console/sessions")
    expect(page.locator("#email")).to_be_visible()  # signed out: back to the sign-in


@pytest.mark.parametrize("lang", LANGUAGES)
def test_an_enrolled_user_accepts_an_invitation_on_its_page(app: Flask, site: LiveServer,
                                                            merchant: Merchant, context: Any,
                                                            lang: str) -> None:
    person = add_person(app, f"helper-{lang}@agency.example")
    with app.app_context(), db.transaction() as session:
        user = people.by_email(session, person.email)
        assert user is not None
        token = people.new_link(session, user, now=clock.now(),
                                merchant_id=merchant.client_id, role="support")
    page = context.new_page()
    page.goto(_with_lang(f"{site.url}/console/enrol/{token}", lang))
    expect(page.locator("p.notice")).to_contain_text(merchant.name)
    _look(page, "invitation", lang)
    page.locator("#password").fill(KIT_PASSWORD)
    page.locator("#code").fill(pyotp.TOTP(person.secret).now())
    page.locator("form.enrol button[type=submit]").click()
    expect(page.locator(".who")).to_have_text(person.email)
    with app.app_context():
        helper = people.by_email(db.session(), person.email)
        assert helper is not None
        assert access.of(db.session(), helper).role_at(merchant.client_id) == "support"
