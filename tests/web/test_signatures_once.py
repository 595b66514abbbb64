"""Every signed request is verified with one HMAC-SHA512 over its bytes: a terminal link (its
first click, which opens the page, and every click after), and an invoice created through the
API, whatever its type. The limiter's exemptions and the views share the one answer."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from kit.invoices import ORDER, TYPE_3, TestShop
from kit.live import LiveServer
from kit.site import MERCHANT_SECRET

from checkout import terminal
from checkout.models import Merchant
from checkout.wire import signing

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "once-7", "amount": "0.00123"}


@pytest.fixture
def signed_bodies(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every body an HMAC is computed over, in this process (the live server's threads too)."""
    computed: list[bytes] = []
    real_sign = signing.sign

    def counted(body: bytes, secret: str) -> str:
        computed.append(body)
        return real_sign(body, secret)

    monkeypatch.setattr(signing, "sign", counted)
    yield computed


def test_a_terminal_link_is_verified_once_per_click(
        app: Flask, merchant: Merchant, signed_bodies: list[bytes]) -> None:
    query: dict[str, Any] = terminal.encode_link(LINK, MERCHANT_SECRET)
    text = base64.b64decode(query["data"] + "=" * (-len(query["data"]) % 4))
    client = app.test_client()
    for click in ("first", "again"):
        signed_bodies.clear()
        response = client.get("/terminal", query_string=query)
        assert response.status_code == 303, (click, response.get_data(as_text=True)[:300])
        assert signed_bodies.count(text) == 1, click


@pytest.mark.parametrize("order", [ORDER, TYPE_3], ids=["type 1", "type 3"])
def test_an_invoice_create_is_verified_once(
        live_server: LiveServer, merchant: Merchant, signed_bodies: list[bytes],
        order: dict[str, Any]) -> None:
    body = json.dumps(order, separators=(",", ":")).encode()
    signed_bodies.clear()
    answer = TestShop(live_server.url).send("invoices/create", body)
    assert answer.status_code == 200, answer.text
    assert signed_bodies.count(body) == 1
