"""The XRP, USDT ERC-20 and TRON pages in Chromium: the QR scans (zxing-cpp) to what most
wallets read, what the QR cannot carry is shown and copied beside it, and the pages are
photographed at 320 px and 1280 px into build/screenshots/ (`wallet-<currency>-<width>.png`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from kit.browser import scan_qr
from kit.live import LiveServer
from kit.site import MERCHANT_SECRET
from playwright.sync_api import expect

from checkout import terminal

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
AMOUNTS = {"XRP": "25", "USDTE": "19.99", "USDTT": "19.99"}


def open_link(page: Any, site: LiveServer, currency: str) -> dict[str, Any]:
    payload = {"client_id": 11, "currency": currency, "foreign_id": f"wallet-{currency}",
               "amount": AMOUNTS[currency], "convert_to": "EUR",
               "url_back": "https://shop.example/back"}
    query = urlencode(terminal.encode_link(payload, MERCHANT_SECRET))
    page.goto(f"{site.url}/terminal?{query}")
    return dict(requests.get(page.url.split("?")[0] + "/status", timeout=5).json())


def font(page: Any, selector: str) -> tuple[float, int]:
    size, weight = page.eval_on_selector(selector, "e => { const s = getComputedStyle(e);"
                                                   " return [s.fontSize, s.fontWeight]; }")
    return float(size.removesuffix("px")), int(weight)


def photograph(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((320, 640), (1280, 900)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, name


@pytest.mark.parametrize("currency", ["XRP", "USDTE", "USDTT"])
def test_the_qr_holds_the_address_and_the_amount_is_typed_beside_it(
        site: LiveServer, customer: Any, currency: str) -> None:
    page = customer
    model = open_link(page, site, currency)
    expect(page.locator('[data-field="address"]')).to_have_text(model["address"])
    assert scan_qr(page.locator('[data-field="qr"]')) == model["address"]
    note = page.locator('[data-field="qr-note"]')
    expect(note).to_be_visible()
    expect(note).to_contain_text("type the amount")
    photograph(page, f"wallet-{currency.lower()}")
    # The amount's copy button beside the note copies exactly what is due.
    page.locator('.qr button[data-copy="amount"]').click()
    assert page.evaluate("navigator.clipboard.readText()") == model["amount_due"]


def test_the_xrp_tag_is_as_loud_as_the_address_and_copied_on_its_own(
        site: LiveServer, customer: Any) -> None:
    page = customer
    model = open_link(page, site, "XRP")
    tag = page.locator('[data-field="tag"]')
    expect(tag).to_have_text(model["tag"])
    size, weight = font(page, '[data-field="tag"]')
    address_size, address_weight = font(page, '[data-field="address"]')
    assert size >= address_size and weight >= address_weight
    expect(page.locator(".field-tag .warning")).to_contain_text("payment may be lost")
    expect(page.locator('[data-field="qr-note"]')).to_contain_text("Destination tag")
    page.locator('button[data-copy="tag"]').click()
    assert page.evaluate("navigator.clipboard.readText()") == model["tag"]
    # The Xaman link stays, as a button beside the QR, opening in a new tab.
    wallet = page.locator('[data-field="wallet-link"]')
    expect(wallet).to_have_text("Open in Xaman")
    assert wallet.get_attribute("href") == model["payment_uri"]
    assert wallet.get_attribute("target") == "_blank"
