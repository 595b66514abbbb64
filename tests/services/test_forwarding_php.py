"""A shop running CoinsPaid's PHP plugin accepts every callback this site forwards (issue 11).

The plugin checks `hash_hmac('sha512', json_encode(json_decode($raw, true)), $secret)`:
it re-encodes the body first, so only bytes that are PHP json_encode output pass. Driven
end to end: a signed terminal link, a payment at the embedded processor, its callback to
the site (or, when it is lost, reconciliation), and the worker forwarding to the shop.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from kit import php_shop
from kit.callbacks import Clock, Shop, deposits_of, pay, running_shop, use_shop
from kit.live import LiveServer
from kit.site import MERCHANT_SECRET

from checkout import terminal, worker
from checkout.models import Merchant
from checkout.services import deliveries, reconcile
from checkout.wire import signing

HOSTILE_IDS = ["wc/123", "kunde-ü", 'order "7"', "c:\\orders\\7", "Bestellung-Grüße",
               "🎉-42", "日本-1", "a/b\\c\"d'é😀"]


def open_link(base_url: str, foreign_id: str) -> dict[str, Any]:
    """Open a signed terminal link like a customer; the page model of the page it opens."""
    link = terminal.encode_link({"client_id": 11, "currency": "BTC", "foreign_id": foreign_id,
                                 "amount": "0.01"}, MERCHANT_SECRET)
    opened = requests.get(f"{base_url}/terminal", params=link, allow_redirects=False,
                          timeout=30)
    assert opened.status_code == 303, opened.text
    page_path = opened.headers["Location"].split("?")[0]
    status = requests.get(f"{base_url}{page_path}/status", timeout=30)
    assert status.status_code == 200
    model: dict[str, Any] = status.json()
    return model


def accepted(shop: Shop) -> list[bytes]:
    """What the shop received, each checked as the PHP plugin checks it."""
    bodies = [item.body for item in shop.received]
    for item in shop.received:
        assert php_shop.plugin_accepts(item.body, item.headers.get("X-Processing-Signature"),
                                       MERCHANT_SECRET), item.body
        assert signing.verify(item.body, MERCHANT_SECRET,
                              item.headers.get("X-Processing-Signature"))
    return bodies


@pytest.mark.parametrize("foreign_id", HOSTILE_IDS)
def test_forwarded_processor_callbacks_pass_the_php_plugins_check(
        app: Flask, live_server: LiveServer, merchant: Merchant, foreign_id: str) -> None:
    with running_shop() as shop:
        use_shop(app, shop)
        page = open_link(live_server.url, foreign_id)
        pay(live_server.url, page["address"], "confirmed")
        for _ in range(5):
            worker.run_once(app)
            if shop.received:
                break
    [body] = accepted(shop)
    assert php_shop.reencode(body) == body
    # The processor sends confirmations as a string ("3"); the site reads it as a number.
    assert b'"confirmations":"3"' in body
    [deposit] = deposits_of(app)
    assert (deposit.status, deposit.confirmations) == ("confirmed", 3)


@pytest.mark.parametrize("foreign_id", HOSTILE_IDS)
def test_what_reconciliation_forwards_passes_the_php_plugins_check(
        app: Flask, live_server: LiveServer, merchant: Merchant, foreign_id: str) -> None:
    app.config["RECONCILE_AFTER"] = 600
    app.config["CLOCK"] = clock = Clock()
    with running_shop() as shop:
        use_shop(app, shop)
        page = open_link(live_server.url, foreign_id)
        pay(live_server.url, page["address"], "confirmed")  # its callback is lost
        clock.advance(timedelta(seconds=601))
        with app.app_context():
            assert reconcile.run_due() == 1
            assert deliveries.run_due() == 1
    [body] = accepted(shop)
    assert b'"status":"confirmed"' in body


def test_reconciliation_writes_bare_fractions_as_decimal_strings() -> None:
    """PHP would print a float; an amount stays a decimal string, and the bytes stay PHP's."""
    from decimal import Decimal

    body = reconcile.news_body({"id": 7, "amount": Decimal("0.50000000"), "note": "a/ü",
                                "legs": [{"confirmations": "3", "fee": Decimal("1E-8")}]})
    assert body == (b'{"id":7,"amount":"0.50000000","note":"a\\/\\u00fc",'
                    b'"legs":[{"confirmations":"3","fee":"0.00000001"}]}')
    assert php_shop.reencode(body) == body
