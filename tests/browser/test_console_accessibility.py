"""The back office's bar, on every page of it (issue 17): signed in through the browser with
a real TOTP code, every page the navigation offers (found in the navigation itself, so a
part added later is walked with no change here) plus the sign-in and code pages: axe-core
with no violation in light and dark, nothing wider than a 320 px screen (tables scroll in
their own .table-wrap), a visible focus outline at every Tab stop, and no console error (a
CSP violation is one). Screenshots of the overview, the audit log and the sign-in page at
320 and 1280 px, light and dark, in English, German and Arabic.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask
from kit.accessibility import audit
from kit.browser import shoot
from kit.console import add_person, sign_in_browser
from kit.console_rows import add_merchant, callback, delivery, deposit_page, invoice_page
from kit.live import LiveServer
from playwright.sync_api import Page, expect

from checkout import audit as audit_log
from checkout import clock, db, i18n

A, B = 11, 22
LANGUAGES = [lang for lang in ("en", "de", "ar") if lang in i18n.LANGUAGES]
TAB_STOPS = 40  # enough for the frame and a page's filters; every stop is checked

FOCUS = """() => { const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e), r = e.getBoundingClientRect();
  return {tag: e.tagName, text: (e.textContent || e.value || '').trim().slice(0, 40),
          style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor,
          shown: r.width > 0 && r.height > 0}; }"""
WIDE = """() => [...document.querySelectorAll('body *')].filter(e => {
  if (e.offsetParent === null || e.closest('.table-wrap')) return false;
  const r = e.getBoundingClientRect();
  return r.right > innerWidth + 1 || r.left < -1; })
  .slice(0, 3).map(e => e.outerHTML.slice(0, 120))"""


@pytest.fixture
def back_office(app: Flask, live_server: LiveServer) -> LiveServer:
    """Two merchants with something on every page: payments that ended each way, failing
    deliveries, flagged callbacks, audit entries with long and hostile details."""
    add_merchant(app, A, "Schokoladenmanufaktur Ä")
    add_merchant(app, B, "Shop B")
    now = clock.system_now()
    with app.app_context(), db.transaction() as session:
        for merchant in (A, B):
            deposit_page(session, merchant, status="confirmed", paid="0.0123", rate="61234.5",
                         at=now - timedelta(days=1))
            deposit_page(session, merchant, status="confirmed", reason="overpaid", paid="1.5",
                         rate="61234.5", currency="ETH", at=now - timedelta(days=2))
            invoice_page(session, merchant, status="failed", reason="expired",
                         amount="123456789.99", at=now - timedelta(days=3))
            invoice_page(session, merchant, status="failed", reason="underpaid",
                         pay_currency="USDTTRC20", at=now - timedelta(days=3))
            delivery(session, merchant, state="pending", error="HTTP 500", at=now)
            delivery(session, merchant, state="failed", error="timed out", at=now)
            callback(session, merchant, outcome="flagged", flag="unknown address", at=now)
            for n in range(3):
                audit_log.record(session, "settings.change", actor="owner@shop.example",
                                 merchant_id=merchant, target=f"webhook-{n}",
                                 detail={"webhook_url": "https://shop.example/" + "x" * 120,
                                         "note": "<b>not bold</b>"},
                                 address="2001:db8:85a3::8a2e:370:7334")
        audit_log.record(session, "user.add", actor=audit_log.COMMAND_LINE,
                         target="op@site.example")
    return live_server


@pytest.fixture
def tab(context: Any, back_office: LiveServer) -> Iterator[tuple[Page, list[str]]]:
    """A page, and the errors its console and the browser reported (CSP violations too)."""
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{page.url}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    yield page, errors
    page.close()


def fits_320(page: Page, name: str) -> None:
    size = page.viewport_size
    page.set_viewport_size({"width": 320, "height": 640})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, (name, width, page.evaluate(WIDE))
        assert page.evaluate(WIDE) == [], name
    finally:
        if size:
            page.set_viewport_size(size)


def focus_is_visible_at_every_tab_stop(page: Page, name: str) -> None:
    page.evaluate("document.activeElement && document.activeElement.blur()")
    stops = 0
    for _ in range(TAB_STOPS):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS)
        if focus is None:
            break  # past the last control: the page was walked
        stops += 1
        assert focus["shown"], (name, focus)
        assert focus["style"] not in ("none", "hidden") and focus["width"] >= 2, (name, focus)
        assert focus["color"] not in ("transparent", "rgba(0, 0, 0, 0)"), (name, focus)
    assert stops > 0, name


def meets_the_bar(page: Page, name: str) -> None:
    expect(page.locator("h1")).to_be_visible()
    audit(page, name)
    fits_320(page, name)
    focus_is_visible_at_every_tab_stop(page, name)


def navigation(page: Page) -> list[str]:
    hrefs = page.eval_on_selector_all("header nav a", "links => links.map(a => a.href)")
    assert hrefs, "the signed-in frame has a navigation"
    return list(dict.fromkeys(hrefs))


def test_every_page_of_the_back_office_meets_the_bar(app: Flask, back_office: LiveServer,
                                                     tab: tuple[Page, list[str]]) -> None:
    page, errors = tab
    operator = add_person(app, "op@site.example", operator=True)
    sign_in_browser(app, page, back_office.url, operator, on_each=meets_the_bar)
    walked = []
    for href in navigation(page):
        answer = page.goto(href)
        assert answer is not None and answer.status == 200, href
        meets_the_bar(page, urlsplit(href).path)
        walked.append(urlsplit(href).path)
    assert {"/console/", "/console/audit"} <= set(walked)
    assert errors == []
    # A page's filtered view and its error state are pages too (answered 400: the one
    # console message then is the browser's note of that status).
    for path in ("/console/audit?action=settings.change&merchant=11",
                 "/console/?from=2026-02-30", "/console/audit?from=soon"):
        page.goto(back_office.url + path)
        meets_the_bar(page, path)
    assert [e for e in errors if "status of 400" not in e] == []


def test_a_merchant_user_sees_a_navigation_of_what_their_role_allows(
        app: Flask, back_office: LiveServer, tab: tuple[Page, list[str]]) -> None:
    page, errors = tab
    viewer = add_person(app, "viewer@a.example", roles={A: "viewer"})
    sign_in_browser(app, page, back_office.url, viewer)
    paths = [urlsplit(href).path for href in navigation(page)]
    assert "/console/" in paths and "/console/audit" not in paths
    for href in navigation(page):
        page.goto(href)
        meets_the_bar(page, urlsplit(href).path)
        assert "Shop B" not in page.content()
    assert errors == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_screenshots_of_the_overview_audit_log_and_sign_in(
        app: Flask, back_office: LiveServer, tab: tuple[Page, list[str]], lang: str) -> None:
    page, errors = tab
    query = "" if lang == "en" else "?" + urlencode({"lang": lang})
    page.goto(f"{back_office.url}/console/login{query}")
    expect(page.locator("html")).to_have_attribute("lang", i18n.tag(lang))
    shoot(page, f"console-login-{lang}")
    sign_in_browser(app, page, back_office.url,
                    add_person(app, "owner@a.example", roles={A: "owner", B: "accountant"}))
    for name, path in (("overview", "/console/"), ("audit", "/console/audit")):
        page.goto(f"{back_office.url}{path}{query}")
        expect(page.locator("html")).to_have_attribute("dir", i18n.text_direction(lang))
        shoot(page, f"console-{name}-{lang}")
        if lang == "ar":
            # Right to left: the header's first item (the brand) on the right, table cells
            # starting at the right.
            brand = page.locator(".brand").bounding_box()
            assert brand is not None and brand["x"] > 640, brand
            align = page.eval_on_selector("th", "e => getComputedStyle(e).textAlign")
            assert align in ("start", "right"), align
    assert errors == []
