"""A payment after an invoice expired: the processor's word is kept, applied once, shown on the
customer page and told to the shop once, in the shop's ids and the processor's types.

What the processor sends then is UNCONFIRMED (coinspaid-api.md says nothing of late money),
so both readings are proved: a deposit callback on the invoice's address (what the embedded
sandbox sends, over real HTTP, signed) and an invoice callback with money after `failed`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import Shop, callbacks_of
from kit.invoices import (
    TYPE_3,
    TestShop,
    advance_sandbox,
    pay,
    settle,
    shop_signature,
    shop_verifies,
)
from kit.live import LiveServer
from sqlalchemy import select

from checkout import db
from checkout.models import Callback, Invoice, InvoiceQuote, Merchant

NOT_PAID = "Timer expired. User not paid."


@pytest.fixture
def shop(live_server: LiveServer, merchant: Merchant, webhook: Shop) -> TestShop:
    return TestShop(live_server.url)


def events(webhook: Shop) -> list[dict[str, Any]]:
    """The processor's news the shop received, each body checked with the shop's own HMAC
    code first; our own late_payment events (the merchant's policy, test_late_policy.py)
    are left out."""
    for item in webhook.received:
        assert shop_verifies(item.body, item.headers.get("X-Processing-Signature"))
    told = [json.loads(item.body) for item in webhook.received]
    return [event for event in told if event.get("type") != "late_payment"]


def quote_of(app: Flask, invoice_id: int) -> InvoiceQuote:
    with app.app_context():
        [quote] = db.session().scalars(select(InvoiceQuote).where(
            InvoiceQuote.invoice_id == invoice_id)).all()
        return quote


def invoice_status(app: Flask, invoice_id: int) -> tuple[str, str | None]:
    with app.app_context():
        invoice = db.session().get(Invoice, invoice_id)
        assert invoice is not None
        return invoice.status, invoice.reason


def model(client: FlaskClient, app: Flask, invoice_id: int) -> dict[str, Any]:
    with app.app_context():
        invoice = db.session().get(Invoice, invoice_id)
        assert invoice is not None
        page_id = invoice.page_id
    response = client.get(f"/p/{page_id}/status")
    assert response.status_code == 200
    return dict(response.get_json())


def refreshes_without_javascript(client: FlaskClient, app: Flask, invoice_id: int) -> bool:
    with app.app_context():
        invoice = db.session().get(Invoice, invoice_id)
        assert invoice is not None
        page_id = invoice.page_id
    html = client.get(f"/p/{page_id}").get_data(as_text=True)
    return 'http-equiv="refresh"' in html


def resend(live: LiveServer, callback: Callback) -> requests.Response:
    """The processor sending the very same signed bytes again."""
    headers = {"Content-Type": "application/json", "X-Processing-Key": "test-key-11",
               "X-Processing-Signature": shop_signature(callback.body)}
    return requests.post(f"{live.url}/callbacks/coinspaid", data=callback.body,
                         headers=headers, timeout=10)


def expired_invoice(shop: TestShop, live: LiveServer, app: Flask,
                    webhook: Shop) -> dict[str, Any]:
    data: dict[str, Any] = shop.create(TYPE_3).json()["data"]
    advance_sandbox(live.url, 16 * 60)
    settle(app)
    assert [(e["status"], e["error"]) for e in events(webhook)] == [("failed", NOT_PAID)]
    return data


# ---------------------------------------------------------------------------------------------
# The deposit reading: the sandbox's own signed callbacks over HTTP


def test_a_deposit_after_expiry_is_shown_and_told_to_the_shop_once(
        app: Flask, client: FlaskClient, shop: TestShop, live_server: LiveServer,
        webhook: Shop) -> None:
    data = expired_invoice(shop, live_server, app, webhook)
    expired = model(client, app, data["id"])
    assert (expired["status"], expired["reason"], expired["final"]) == ("failed", "expired", True)
    assert expired["late"] is None and expired["watch"] is True  # money may still come

    pay(live_server.url, data["address"], data["sender_amount"])
    settle(app)
    seen = model(client, app, data["id"])
    assert (seen["status"], seen["reason"], seen["phase"]) == ("failed", "expired", "late")
    late = seen["late"]
    assert late["amount"] == str(Decimal(data["sender_amount"]).normalize())
    assert late["currency"] == "BTC" and late["status"] == "not_confirmed"
    [tx] = late["transactions"]
    assert tx["status"] == "not_confirmed" and len(tx["txid"]) == 64
    assert tx in seen["transactions"] and seen["amount_paid"] == late["amount"]
    assert seen["watch"] is True and seen["pay_now"] is False and seen["return_url"]
    assert refreshes_without_javascript(client, app, data["id"])  # while it confirms

    [_, told] = events(webhook)
    assert told["type"] == "deposit_exchange" and told["status"] == "not_confirmed"
    # The shop's ids, never our quote's foreign_id; the processor's types as it sent them.
    assert told["crypto_address"]["foreign_id"] == "order-7"
    assert told["crypto_address"]["id"] == data["id"]
    assert told["crypto_address"]["address"] == data["address"]
    assert told["currency_sent"] == {"currency": "BTC", "amount": data["sender_amount"]}
    assert told["transactions"][0]["confirmations"] == "0"
    assert told["transactions"][0]["txid"] == tx["txid"]
    quote = quote_of(app, data["id"])
    assert all(quote.foreign_id.encode() not in item.body for item in webhook.received)

    advance_sandbox(live_server.url, 120)
    settle(app)
    credited = model(client, app, data["id"])
    assert credited["phase"] == "late" and credited["late"]["status"] == "confirmed"
    # Confirmed: the page stops asking, unless it offers the difference to pay (the
    # merchant's late-payment policy: test_late_policy.py).
    offered = credited["late"]["difference"] is not None
    assert credited["watch"] is offered
    assert refreshes_without_javascript(client, app, data["id"]) is offered
    fiat = credited["late"]["fiat"]
    assert fiat["currency"] == "EUR" and Decimal(fiat["amount"]) > 0
    [_, _, confirmed] = events(webhook)
    assert (confirmed["id"], confirmed["type"], confirmed["status"]) == (
        told["id"], "deposit_exchange", "confirmed")
    assert confirmed["transactions"][0]["confirmations"] == "3"
    assert confirmed["currency_received"]["currency"] == "EUR"
    # What the processor converted it to, in the fiat's own places.
    assert abs(Decimal(confirmed["currency_received"]["amount"]) - Decimal(fiat["amount"])) \
        < Decimal("0.01")
    assert confirmed["fees"][0]["amount"].count(".") == 1  # 8-decimal text, not a number
    assert invoice_status(app, data["id"]) == ("failed", "expired")  # first final word kept

    # The processor's retry of either callback is no news: kept, not applied, not forwarded.
    for callback in callbacks_of(app)[-2:]:
        assert resend(live_server, callback).status_code == 200
    settle(app)
    assert [c.outcome for c in callbacks_of(app)][-2:] == ["duplicate", "duplicate"]
    assert len(events(webhook)) == 3
    assert model(client, app, data["id"])["late"] == credited["late"]


def test_a_deposit_naming_our_quote_at_another_address_is_flagged_and_not_forwarded(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    data = expired_invoice(shop, live_server, app, webhook)
    quote = quote_of(app, data["id"])
    body = json.dumps({
        "id": 990001, "type": "deposit",
        "crypto_address": {"id": 1, "currency": "BTC", "address": "tb1qsomeoneelse",
                           "tag": None, "foreign_id": quote.foreign_id},
        "currency_sent": {"currency": "BTC", "amount": "0.01000000"},
        "currency_received": {"currency": "BTC", "amount": "0.01000000"},
        "transactions": [], "fees": [], "error": "", "status": "confirmed"},
        separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "X-Processing-Key": "test-key-11",
               "X-Processing-Signature": shop_signature(body)}
    assert requests.post(f"{live_server.url}/callbacks/coinspaid", data=body, headers=headers,
                         timeout=10).status_code == 200
    settle(app)
    last = callbacks_of(app)[-1]
    assert (last.outcome, last.flag) == ("flagged", "address differs from the address of our "
                                                    "invoice")
    assert len(webhook.received) == 1  # neither the raw bytes nor an event of ours


# ---------------------------------------------------------------------------------------------
# The invoice reading: the processor reports money on the invoice after `failed`


def late_invoice_body(failed: Callback, status: str, confirmations: str) -> bytes:
    """The processor's own failed callback for our quote, now carrying a payment."""
    payload = json.loads(failed.body)
    address = payload["crypto_address"]["address"]
    payload["currency_sent"]["remaining_amount"] = "0.00000000"
    payload["transactions"] = [{
        "id": 77001, "currency": "BTC", "transaction_type": "blockchain", "type": "deposit",
        "address": address, "tag": None, "amount": payload["currency_sent"]["amount"],
        "txid": "cd" * 32, "confirmations": confirmations}]
    payload["fees"] = ([{"type": "fee_crypto_deposit", "currency": "BTC",
                         "amount": "0.00001000"}] if status == "confirmed" else [])
    payload["error"], payload["status"] = "", status
    return json.dumps(payload, separators=(",", ":")).encode()


def post_signed(live: LiveServer, body: bytes) -> None:
    headers = {"Content-Type": "application/json", "X-Processing-Key": "test-key-11",
               "X-Processing-Signature": shop_signature(body)}
    assert requests.post(f"{live.url}/callbacks/coinspaid", data=body, headers=headers,
                         timeout=10).status_code == 200


def test_an_invoice_callback_with_money_after_failed_is_shown_and_told_once(
        app: Flask, client: FlaskClient, shop: TestShop, live_server: LiveServer,
        webhook: Shop) -> None:
    data = expired_invoice(shop, live_server, app, webhook)
    [failed] = callbacks_of(app)
    processing = late_invoice_body(failed, "processing", "0")
    for _ in range(3):  # the processor's retries of one callback
        post_signed(live_server, processing)
    settle(app)
    assert [c.outcome for c in callbacks_of(app)][1:] == ["applied", "duplicate", "duplicate"]
    seen = model(client, app, data["id"])
    assert seen["phase"] == "late" and seen["late"]["status"] == "not_confirmed"
    assert seen["late"]["amount"] == str(Decimal(data["sender_amount"]).normalize())
    assert seen["late"]["transactions"][0]["txid"] == "cd" * 32

    post_signed(live_server, late_invoice_body(failed, "confirmed", "3"))
    post_signed(live_server, late_invoice_body(failed, "confirmed", "3"))
    settle(app)
    said = events(webhook)
    assert [(e["id"], e["foreign_id"], e["status"]) for e in said] == [
        (data["id"], "order-7", "failed"), (data["id"], "order-7", "processing"),
        (data["id"], "order-7", "confirmed")]
    # The processor's own legs and types: string confirmations, 8-decimal amount text.
    assert said[1]["transactions"][0]["confirmations"] == "0"
    assert said[2]["transactions"][0]["confirmations"] == "3"
    assert said[2]["transactions"][0]["amount"] == data["sender_amount"]
    assert said[2]["currency_sent"]["remaining_amount"] == "0.00000000"
    assert said[2]["fees"] == [{"type": "fee_crypto_deposit", "currency": "BTC",
                                "amount": "0.00001000"}]
    quote = quote_of(app, data["id"])
    assert all(quote.foreign_id.encode() not in item.body for item in webhook.received)
    credited = model(client, app, data["id"])
    assert credited["phase"] == "late" and credited["late"]["status"] == "confirmed"
    assert credited["late"]["fiat"] is None  # the processor named no converted amount
    assert invoice_status(app, data["id"]) == ("failed", "expired")
