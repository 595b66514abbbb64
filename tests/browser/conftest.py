"""Debian's Chromium driven by Playwright (never `playwright install`): skipped with a message
when /usr/bin/chromium is missing, unless CHECKOUT_REQUIRE_BROWSER=1 (CI), then failed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LiveServer
from flask import Flask

from checkout.models import Merchant

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


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
    ctx.set_default_timeout(10_000)
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
