"""The live page in another language: the script writes amounts and the status in the page
language's marks, as the server does, and the copy buttons still copy what a wallet accepts.
An Arabic page mirrors, but its address and amount read left to right."""

from __future__ import annotations

from typing import Any

from flask import Flask
from kit.browser import link, pay, wait_for_phase
from kit.live import LiveServer
from playwright.sync_api import expect


def copied(page: Any, button: str) -> str:
    page.get_by_role("button", name=button).click()
    return str(page.evaluate("navigator.clipboard.readText()"))


def test_a_german_page_shows_german_numbers_and_copies_plain_ones(
        app: Flask, site: LiveServer, customer: Any) -> None:
    page = customer
    page.goto(link(site.url) + "&lang=de")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    amount = page.locator('[data-field="amount"]')
    expect(amount).to_have_text("0,0012")
    assert copied(page, "Betrag kopieren") == "0.0012"
    pay(app, site, page, "0.0005")
    wait_for_phase(page, "partial")  # the script, not a reload, moved the page on
    expect(amount).to_have_text("0,0007")
    expect(page.locator("#status-text")).to_have_text(
        "0,0005 BTC sind eingegangen. Bitte senden Sie weitere 0,0007 BTC an dieselbe "
        "Adresse.")
    assert copied(page, "Betrag kopieren") == "0.0007"
    expect(page.locator('[data-field="network-warning"]')).to_contain_text(
        "Auszahlungsnetzwerk")
    assert page.url.endswith("?lang=de")
