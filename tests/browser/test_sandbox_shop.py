"""The sandbox shop's page, where a newcomer finds the links again: at 320 px and 1280 px
(`build/screenshots/sandbox-shop-<width>.png`), its links open payable pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kit.live import LiveServer
from playwright.sync_api import expect

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def test_the_shop_page_reads_at_a_phones_width_and_its_links_open_pages(
        live_server: LiveServer, context: Any) -> None:
    runner = live_server.app.test_cli_runner()
    assert runner.invoke(args=["demo", "--base-url", live_server.url]).exit_code == 0
    page = context.new_page()
    page.goto(f"{live_server.url}/sandbox/shop")
    expect(page.locator("#pay-command")).to_contain_text("sandbox pay")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((320, 640), (1280, 900)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"sandbox-shop-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.locator("[data-try^='25 XRP']").click()
    expect(page.locator('[data-field="tag"]')).to_be_visible()
    expect(page.locator("h1")).to_have_text("Pay with XRP")
