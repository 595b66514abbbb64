"""Driving the deposit page in Chromium: links to open, payments through the sandbox, the worker
run until idle, waiting for a phase, QR decoding and screenshots (build/screenshots/)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import zxingcpp
from flask import Flask
from PIL import Image
from playwright.sync_api import expect

from checkout import terminal, worker
from checkout.sandbox import clock as sandbox_clock
from kit import payments
from kit.live import LiveServer
from kit.site import MERCHANT_SECRET


def decode_qr(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1, "exactly one QR code in the screenshot"
    return str(results[0].text)


def scan_qr(image: Any) -> str:
    """What a QR image (a locator of its `<img>`) says, as a phone's camera reads it off the
    screen, once the browser has loaded it: a screenshot taken as soon as the element shows
    may catch an empty box while the image is still on its way (a loaded machine did,
    once). Waited for as a condition, with Playwright's timeout: a new `src` set meanwhile
    (the page's script swaps it when the amount due changes) is waited for too."""
    image.page.wait_for_function("image => image.complete && image.naturalWidth > 0",
                                 arg=image.element_handle())
    return decode_qr(image.screenshot())


def simulate(live: LiveServer, address: str, amount: str, status: str | None = None) -> None:
    payments.pay(live.url, address, amount, status or None)


def run_worker(app: Flask) -> None:
    """Run the worker until it is idle: the sandbox confirms, then sends its callbacks."""
    for _ in range(10):
        if worker.run_once(app) == 0:
            return
    raise AssertionError("the worker never went idle")


SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


SIZES = ((320, 640), (1280, 900))


LANGUAGES = ("de", "ar")  # besides English: a long-word language and a right-to-left one


def link(base: str, **fields: Any) -> str:
    payload = {"client_id": 11, "currency": "BTC", "foreign_id": "order-1042",
               "amount": "0.0012", "convert_to": "EUR", "url_back": "https://shop.example/back",
               **fields}
    payload = {k: v for k, v in payload.items() if v is not None}
    return f"{base}/terminal?{urlencode(terminal.encode_link(payload, MERCHANT_SECRET))}"


def pay(app: Flask, site: LiveServer, page: Any, amount: str, status: str = "confirmed") -> None:
    """The customer's wallet sends `amount`; the processor's callbacks reach the site."""
    address = page.locator('[data-field="address"]').inner_text()
    simulate(site, address, amount, status)
    run_worker(app)


def confirm_all(app: Flask) -> None:
    sandbox_clock.advance(app, 3600)
    run_worker(app)


def wait_for_phase(page: Any, phase: str) -> None:
    expect(page.locator('[data-field="status-box"]')).to_have_attribute(
        "data-phase", phase)


def photograph(page: Any, state: str, kind: str = "deposit") -> None:
    """Every state at a phone's and a desktop's width, light and dark, in English, German and
    Arabic (right-to-left), for a reviewer: `<kind>-<state>-<lang>-<width>-<scheme>.png`."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shoot(page, f"{kind}-{state}-en")
    url = page.url.split("?")[0]
    for lang in LANGUAGES:
        other = page.context.new_page()
        try:
            other.goto(f"{url}?lang={lang}")
            expect(other.locator("html")).to_have_attribute("lang", lang)
            shoot(other, f"{kind}-{state}-{lang}")
        finally:
            other.close()


def shoot(page: Any, name: str) -> None:
    size = page.viewport_size
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.screenshot(path=str(SHOTS / f"{name}-{width}-{scheme}.png"), full_page=True)
            # Never sideways scrolling at a phone's width.
            assert page.evaluate("document.documentElement.scrollWidth") <= width, name
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(size)
