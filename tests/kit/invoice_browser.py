"""Driving the invoice page in Chromium: create one through the drop-in API, pay it in the
sandbox, confirm it, wait for a phase."""

from __future__ import annotations

from typing import Any

from flask import Flask
from playwright.sync_api import expect

from kit.invoices import ORDER, TestShop, advance_sandbox, settle
from kit.invoices import pay as sandbox_pay
from kit.live import LiveServer


def create(shop: TestShop, **changes: Any) -> str:
    response = shop.create(ORDER, **changes)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["url"])


def phase(page: Any, expected: str) -> None:
    expect(page.locator('[data-field="status-box"]')).to_have_attribute(
        "data-phase", expected)


def pay(app: Flask, live: LiveServer, page: Any, amount: str | None = None,
        status: str = "confirmed") -> str:
    address = page.locator('[data-field="address"]').inner_text()
    # The plain amount a wallet takes (the text is in the page's language: 0,0012 in German).
    amount = amount or page.locator('[data-field="amount"]').get_attribute("data-plain") or ""
    sandbox_pay(live.url, address, amount, status)
    settle(app)
    return amount


def confirm(app: Flask, live: LiveServer) -> None:
    """Long enough for the sandbox to confirm, well within the 15 minutes of a quote."""
    advance_sandbox(live.url, 60)
    settle(app)
    settle(app)
