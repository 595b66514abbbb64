"""Debian's Chromium driven by Playwright (never `playwright install`): skipped with a message
when /usr/bin/chromium is missing, unless CHECKOUT_REQUIRE_BROWSER=1 (CI), then failed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from kit.live import PATIENCE, LiveServer
from playwright.sync_api import expect

from checkout.models import Merchant

CHROMIUM = Path("/usr/bin/chromium")
# Every Playwright wait is bounded (a browser that never answers fails the test with where it
# waited), and generous: a loaded machine with two test workers is slow, not broken. A check
# that something does NOT happen within a time is written as such (a count after a wait),
# never as a short timeout.
PATIENCE_MS = int(PATIENCE * 1000)
expect.set_options(timeout=PATIENCE_MS)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks every test here `browser`; under pytest-xdist (`--dist loadgroup`) each file's
    tests run on one worker, in order, with that worker's one Chromium."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.xdist_group(f"browser-{Path(item.path).stem}"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CHECKOUT_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS,
                                              headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(locale="en-GB")
    ctx.set_default_timeout(PATIENCE_MS)
    ctx.set_default_navigation_timeout(PATIENCE_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def app(make_app: Any) -> Any:
    """The site with quick polls and a quick no-JavaScript refresh, so tests wait little."""
    return make_app(POLL_WAITING_MS=250, POLL_SEEN_MS=250, NOSCRIPT_REFRESH=1)


@pytest.fixture
def site(app: Flask, live_server: LiveServer, merchant: Merchant) -> Iterator[LiveServer]:
    """The site served for real, with merchant 11."""
    yield live_server


@pytest.fixture
def customer(context: Any, site: LiveServer) -> Any:
    """A customer's tab that may use the clipboard on the site (copy buttons)."""
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page = context.new_page()
    # The shop's pages are not on this machine: its return links land on a stand-in.
    page.route("https://shop.example/**", lambda route: route.fulfill(
        status=200, content_type="text/html",
        body="<!doctype html><html lang=en><title>Shop</title><main>Back at the shop</main>"))
    return page
