"""Signed callbacks whose amounts no currency can hold: kept and flagged, quickly, never
applied, and never able to make a customer's page unreadable.

The processor signs them, so they pass the signature check: the bound must hold after it.
"""

from __future__ import annotations

import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import (
    OUR_ADDRESS,
    callbacks_of,
    deposits_of,
    issue_address,
    page_state,
    post,
)

from checkout.models import Merchant

HUGE = [
    '"1e999999999"', "1e999999999", '"1E+30"', "1E+30", '"' + "9" * 60 + '"', "9" * 60,
    '"1e-999999999"', "1e-999999999", '"0.000000001"', '"-0.5"', '"12345678901234567890123"',
]


def body_with_amount(amount_json: str, processor_id: int = 4242) -> bytes:
    """A deposit callback for our address with `amount_json` spliced in as it was sent."""
    template = (
        '{"id":ID,"type":"deposit","crypto_address":{"id":1,"currency":"BTC","address":"ADDR",'
        '"tag":null,"foreign_id":"user-id:2048"},"currency_sent":{"currency":"BTC",'
        '"amount":AMOUNT},"currency_received":{"currency":"BTC","amount":AMOUNT},"transactions":'
        '[{"id":ID,"currency":"BTC","transaction_type":"blockchain","type":"deposit",'
        '"address":"ADDR","tag":null,"amount":AMOUNT,"txid":"TXID","confirmations":"1"}],'
        '"fees":[],"error":"","status":"confirmed"}')
    return (template.replace("TXID", "ab" * 32).replace("ID", str(processor_id))
            .replace("ADDR", OUR_ADDRESS).replace("AMOUNT", amount_json)).encode()


@pytest.mark.parametrize("amount", HUGE)
def test_an_absurd_amount_is_kept_flagged_quickly_and_never_applied(
        app: Flask, client: FlaskClient, merchant: Merchant, amount: str) -> None:
    _, page = issue_address(app)
    started = time.monotonic()
    response = post(client, body_with_amount(amount))
    took = time.monotonic() - started
    assert response.status_code == 200  # stored: the processor must not retry it forever
    # A safety bound, not a speed test: an amount that is expanded digit by digit takes
    # minutes (or the memory); a loaded machine takes well under this for one callback.
    assert took < 30, f"{took:.1f} s for one callback"
    [stored] = callbacks_of(app)
    assert stored.outcome == "flagged" and stored.flag and "amount" in stored.flag
    assert deposits_of(app) == []
    assert page_state(app, page) == ("waiting", None)
    # The customer's page and its status still answer.
    assert client.get(f"/p/{page}").status_code == 200
    assert client.get(f"/p/{page}/status").status_code == 200


def test_an_amount_with_trailing_zeros_past_eight_places_is_still_an_amount(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    _, page = issue_address(app)
    assert post(client, body_with_amount('"0.010000000000"')).status_code == 200
    assert page_state(app, page) == ("confirmed", None)
