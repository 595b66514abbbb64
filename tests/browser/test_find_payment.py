"""Find my payment and the support text, as a customer meets them in Chromium: a page paid
through the embedded processor shows its "For support" text once final (without a reload),
copied by its button and selectable without the script; the customer who lost the page finds
it again at /find by the transaction id their wallet shows, and follows the link back.
Photographed (README, "Looking at the pages"): `find-<state>-<lang>-…` and
`deposit-support-<lang>-…`."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from flask import Flask
from kit.accessibility import check
from kit.browser import LANGUAGES, confirm_all, link, pay, photograph, shoot, wait_for_phase
from kit.live import LiveServer
from playwright.sync_api import expect


@pytest.fixture
def app(make_app: Any) -> Any:
    """Quick polls, and room for the searches a test makes in three languages."""
    return make_app(POLL_WAITING_MS=250, POLL_SEEN_MS=250, NOSCRIPT_REFRESH=1,
                    RATELIMIT_FIND="1000 per minute")


def paid_page(app: Flask, site: LiveServer, customer: Any) -> dict[str, Any]:
    """The customer pays a page in full; its model once final."""
    customer.goto(link(site.url))
    pay(app, site, customer, "0.0012")
    confirm_all(app)
    wait_for_phase(customer, "paid")
    model: dict[str, Any] = requests.get(customer.url.split("?")[0] + "/status",
                                         timeout=30).json()
    return model


def test_the_support_text_appears_when_the_page_is_paid_and_copies(
        app: Flask, site: LiveServer, customer: Any) -> None:
    customer.goto(link(site.url))
    customer.evaluate("window.sameDocument = true")
    expect(customer.locator('[data-field="support"]')).to_be_hidden()
    pay(app, site, customer, "0.0012")
    confirm_all(app)
    wait_for_phase(customer, "paid")
    # Drawn by the script from the poll's model, as the server draws it.
    block = customer.locator('[data-field="support-text"]')
    expect(block).to_be_visible()
    assert customer.evaluate("window.sameDocument") is True
    model = requests.get(customer.url.split("?")[0] + "/status", timeout=30).json()
    txid = model["transactions"][0]["txid"]
    text = str(block.text_content())
    assert text.splitlines()[0] == f"Payment page: {model['id']}"
    assert f"Transaction ID: {txid}" in text.splitlines()
    customer.reload()
    assert customer.locator('[data-field="support-text"]').text_content() == text

    photograph(customer, "support")
    check(customer, "paid, with the support text")
    button = customer.locator('button[data-copy="support-text"]')
    button.click()
    expect(button).to_have_text("Copied")
    assert customer.evaluate("navigator.clipboard.readText()") == text


def test_without_javascript_the_support_text_is_there_to_select(
        app: Flask, site: LiveServer, customer: Any, browser: Any) -> None:
    model = paid_page(app, site, customer)
    plain = browser.new_context(java_script_enabled=False, locale="en-GB")
    try:
        page = plain.new_page()
        page.goto(f"{site.url}/p/{model['id']}")
        block = page.locator('[data-field="support-text"]')
        expect(block).to_be_visible()
        text = str(block.text_content())
        assert model["transactions"][0]["txid"] in text
        expect(page.locator('button[data-copy="support-text"]')).to_be_hidden()
        # One click selects the whole text, ready to copy.
        block.click()
        assert page.evaluate("window.getSelection().toString()").strip() == text
    finally:
        plain.close()


def test_a_lost_page_is_found_by_its_txid_and_followed_back(
        app: Flask, site: LiveServer, customer: Any, browser: Any) -> None:
    model = paid_page(app, site, customer)
    txid = model["transactions"][0]["txid"]
    plain = browser.new_context(java_script_enabled=False, locale="en-GB")
    try:
        page = plain.new_page()
        page.goto(site.url + "/")
        page.locator('a[data-field="find-link"]').click()
        expect(page.locator("h1")).to_have_text("Find my payment")
        shoot(page, "find-empty-en")
        page.locator("#text").fill(txid[:-1])
        page.locator('button[type="submit"]').click()
        expect(page.locator('[data-field="find-miss"]')).to_be_visible()
        shoot(page, "find-miss-en")
        page.locator("#text").fill(" " + txid.upper() + " ")
        page.locator('button[type="submit"]').click()
        found = page.locator('a[data-field="find-link"]')
        expect(found).to_have_count(1)
        shoot(page, "find-hit-en")
        found.click()
        assert page.url.split("?")[0] == f"{site.url}/p/{model['id']}"
        expect(page.locator('[data-field="status-box"]')).to_have_attribute("data-phase", "paid")
    finally:
        plain.close()

    for lang in LANGUAGES:
        other = customer.context.new_page()
        try:
            other.goto(f"{site.url}/find?lang={lang}")
            expect(other.locator("html")).to_have_attribute("lang", lang)
            shoot(other, f"find-empty-{lang}")
            check(other, f"find, empty, {lang}")
            other.locator("#text").fill("no-such-payment")
            other.locator('button[type="submit"]').click()
            expect(other.locator('[data-field="find-miss"]')).to_be_visible()
            shoot(other, f"find-miss-{lang}")
            check(other, f"find, missed, {lang}")
            other.locator("#text").fill(txid)
            other.locator('button[type="submit"]').click()
            expect(other.locator('a[data-field="find-link"]')).to_have_count(1)
            expect(other.locator("html")).to_have_attribute("lang", lang)
            shoot(other, f"find-hit-{lang}")
            check(other, f"find, found, {lang}")
        finally:
            other.close()
