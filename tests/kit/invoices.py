"""A test shop that talks to our drop-in invoice API as it would talk to CoinsPaid.

Its signing is its own, written from coinspaid-api.md §1 (HMAC-SHA512 of the exact body bytes
under the API secret, lowercase hex) with hmac and hashlib: never the project's signer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from flask import Flask

from checkout import worker
from checkout.models import Merchant
from kit.live import LiveServer
from kit.payments import pay as pay
from kit.site import MERCHANT_KEY, MERCHANT_SECRET

ORDER = {"timer": False, "title": "Order 7", "currency": "EUR", "amount": 35,
         "foreign_id": "order-7", "url_success": "https://shop.example/paid?order=7",
         "url_failed": "https://shop.example/failed?order=7", "email_user": "buyer@example.com"}
TYPE_3 = {**ORDER, "timer": True, "sender_currency": "BTC", "description": "Two books"}
DATA_KEYS = ["id", "url", "foreign_id", "end_user_reference", "address", "title", "status",
             "currency", "amount", "sender_currency", "sender_amount", "fixed_at", "release_at",
             "seconds_left"]


def shop_signature(body: bytes, secret: str = MERCHANT_SECRET) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha512).hexdigest()


def shop_verifies(body: bytes, signature: str | None, secret: str = MERCHANT_SECRET) -> bool:
    return hmac.compare_digest(shop_signature(body, secret), signature or "")


class TestShop:
    """Signs and sends requests like a shop's CoinsPaid client (PHP: json_encode + hash_hmac)."""

    __test__ = False  # not a test class, despite its name

    def __init__(self, base_url: str, key: str = MERCHANT_KEY,
                 secret: str = MERCHANT_SECRET) -> None:
        self.base_url = base_url.rstrip("/") + "/api/v2"
        self.key, self.secret = key, secret

    def send(self, path: str, body: bytes, *, headers: dict[str, str] | None = None,
             sign_with: str | None = None) -> requests.Response:
        sent = {"Content-Type": "application/json", "X-Processing-Key": self.key,
                "X-Processing-Signature": shop_signature(body, sign_with or self.secret)}
        if headers is not None:
            sent = headers
        return requests.post(f"{self.base_url}/{path}", data=body, headers=sent, timeout=30)

    def create(self, payload: dict[str, Any] | None = None, **changes: Any) -> requests.Response:
        values = {**(payload or ORDER), **changes}
        body = json.dumps({k: v for k, v in values.items() if v is not None},
                          separators=(",", ":")).encode()
        return self.send("invoices/create", body)

    def cancel(self, foreign_id: str) -> requests.Response:
        return self.send(f"invoices/{quote(foreign_id, safe='')}/cancel/", b"{}")


def settle(app: Flask, rounds: int = 4) -> None:
    """Let the worker run: the sandbox sends its callbacks, we apply and forward them."""
    for _ in range(rounds):
        if worker.run_once(app) == 0:
            break


def advance_sandbox(base_url: str, seconds: int) -> None:
    requests.post(f"{base_url}/sandbox/clock", json={"advance_seconds": seconds},
                  timeout=30).raise_for_status()


@pytest.fixture
def shop(app: Flask, live_server: LiveServer, merchant: Merchant) -> Iterator[TestShop]:
    """A shop selling through the drop-in API, once the worker has fetched the rates the
    invoice page's currency picker offers (offered to every test by the root conftest)."""
    settle(app)
    yield TestShop(live_server.url)
