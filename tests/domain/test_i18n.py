"""Every customer-facing string is wrapped for translation: under a pseudo-language in which
every message reads ⟦message⟧, a page shows no English left outside the brackets, only data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.catalogues import (
    PSEUDO,
    XRP_ADDRESS,
    pseudo_catalogue,
    seed_xrp_customer,
    untranslated,
)
from kit.site import MERCHANT_SECRET

from checkout import terminal


@pytest.fixture
def pseudo_app(make_app: Callable[..., Flask], tmp_path: Path) -> Flask:
    pseudo_catalogue(tmp_path / "translations")
    return make_app(LANGUAGES=["en", PSEUDO],
                    BABEL_TRANSLATION_DIRECTORIES=str(tmp_path / "translations"))




@pytest.fixture
def pseudo_client(pseudo_app: Flask) -> FlaskClient:
    seed_xrp_customer(pseudo_app)
    return pseudo_app.test_client()


def link(payload: dict[str, Any]) -> dict[str, str]:
    return terminal.encode_link(payload, MERCHANT_SECRET)


def test_the_deposit_page_has_no_unwrapped_text(pseudo_client: FlaskClient) -> None:
    opened = pseudo_client.get("/terminal", query_string=link(
        {"client_id": 11, "currency": "XRP", "foreign_id": "ORDER-77", "amount": "25.5",
         "convert_to": "EUR", "url_back": "https://shop.example/back"}))
    assert opened.status_code == 303
    html = pseudo_client.get(opened.headers["Location"] + f"?lang={PSEUDO}").get_data(
        as_text=True)
    assert f'lang="{PSEUDO}"' in html
    assert "⟦" in html, "the pseudo-language is in use"
    data = ["Shop", XRP_ADDRESS, "100001", "XRP", "EUR", "ORDER-77"]
    assert untranslated(html, data) == []


@pytest.mark.parametrize("path", ["/", "/terminal?data=bm90LWpzb24&signature=00",
                                  "/p/no-such-page"])
def test_landing_and_error_pages_have_no_unwrapped_text(pseudo_client: FlaskClient,
                                                        path: str) -> None:
    joiner = "&" if "?" in path else "?"
    html = pseudo_client.get(f"{path}{joiner}lang={PSEUDO}").get_data(as_text=True)
    assert "⟦" in html
    assert untranslated(html, []) == []


def test_the_check_itself_finds_english(pseudo_client: FlaskClient) -> None:
    assert untranslated("<p>⟦Amount⟧</p><p>Pay now</p>", []) == ["Pay now"]
    assert untranslated('<img alt="QR code">', []) == ["QR code"]
