"""The merchant's late-payment policy on invoice pages, through the embedded sandbox over real
HTTP with real signatures: money paid to an invoice's address after its time ran out (the
sandbox clock moved on) is judged when it is confirmed, by what it was worth then (here the
processor's converted amount: the invoice's address converts to EUR).

- worth the price, late payments accepted: the order is paid, the shop hears our signed
  "late_payment" event once, nothing is owed back;
- worth less: the page offers the difference at today's rate (the same address, its QR), or
  the money back (pagekinds/owed.py owes it); paying the difference accepts it;
- the merchant takes no late money: only the money back.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
import requests
import zxingcpp
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
from PIL import Image
from sqlalchemy import select

from checkout import clock, db, money, rates, refund_rules
from checkout.models import Callback, Invoice, Merchant, Page, RateQuote
from checkout.pagekinds import owed

PRICE = Decimal(35)  # TYPE_3: 35 EUR, paid in BTC


@pytest.fixture
def shop(live_server: LiveServer, merchant: Merchant, webhook: Shop) -> TestShop:
    return TestShop(live_server.url)


def told(webhook: Shop) -> list[dict[str, Any]]:
    """Our late_payment events the shop received, each checked with the shop's HMAC first."""
    for item in webhook.received:
        assert shop_verifies(item.body, item.headers.get("X-Processing-Signature"))
    return [e for e in (json.loads(item.body) for item in webhook.received)
            if e.get("type") == "late_payment"]


def page_id_of(app: Flask, invoice_id: int) -> str:
    with app.app_context():
        invoice = db.session().get(Invoice, invoice_id)
        assert invoice is not None
        return invoice.page_id


def model(client: FlaskClient, app: Flask, invoice_id: int) -> dict[str, Any]:
    response = client.get(f"/p/{page_id_of(app, invoice_id)}/status")
    assert response.status_code == 200
    return dict(response.get_json())


def html(client: FlaskClient, app: Flask, invoice_id: int) -> str:
    return client.get(f"/p/{page_id_of(app, invoice_id)}").get_data(as_text=True)


def owed_of(app: Flask, invoice_id: int) -> owed.Owed | None:
    # The page's id first: page_id_of's own context ends by closing this thread's session,
    # and a session taken before it would go on outside the one its context closes.
    page_id = page_id_of(app, invoice_id)
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None
        return owed.owed(db.session(), page)


def no_late_money_accepted(app: Flask) -> None:
    with app.app_context(), db.transaction() as s:
        merchant = s.get(Merchant, 11)
        assert merchant is not None
        merchant.late_accept = False


def expired(shop: TestShop, live: LiveServer, app: Flask) -> dict[str, Any]:
    data: dict[str, Any] = shop.create(TYPE_3).json()["data"]
    advance_sandbox(live.url, 16 * 60)
    settle(app)
    return data


def pay_late(live: LiveServer, app: Flask, address: str, amount: Decimal) -> None:
    """Pay, then let the sandbox confirm it (its clock moves on)."""
    pay(live.url, address, money.text(amount, 8))
    settle(app)
    advance_sandbox(live.url, 120)
    settle(app)


def resend(live: LiveServer, callback: Callback) -> requests.Response:
    """The processor sending the very same signed bytes again."""
    headers = {"Content-Type": "application/json", "X-Processing-Key": "test-key-11",
               "X-Processing-Signature": shop_signature(callback.body)}
    return requests.post(f"{live.url}/callbacks/coinspaid", data=callback.body,
                         headers=headers, timeout=10)


def times(amount: str, factor: str) -> Decimal:
    return (Decimal(amount) * Decimal(factor)).quantize(Decimal("1e-8"), ROUND_DOWN)


def test_late_money_worth_the_price_is_accepted_and_the_shop_told_once(
        app: Flask, client: FlaskClient, shop: TestShop, live_server: LiveServer,
        webhook: Shop) -> None:
    data = expired(shop, live_server, app)
    paid = times(data["sender_amount"], "1.05")  # beyond the rate's swing since the quote
    pay_late(live_server, app, data["address"], paid)

    credited = model(client, app, data["id"])
    late = credited["late"]
    assert (credited["phase"], late["status"], late["decision"]) == ("late", "confirmed",
                                                                     "accepted")
    assert Decimal(late["value"]["amount"]) >= PRICE and late["value"]["currency"] == "EUR"
    assert credited["pay_now"] is False and late["difference"] is None
    assert "Your late payment was accepted: the order is paid." in html(client, app, data["id"])
    assert owed_of(app, data["id"]) is None  # nothing to give back: the order is paid

    [event] = told(webhook)
    assert {k: v for k, v in event.items() if k not in ("value", "created_at")} == {
        "type": "late_payment", "status": "accepted", "invoice_id": data["id"],
        "page_id": page_id_of(app, data["id"]), "foreign_id": "order-7", "currency": "EUR",
        "amount": "35.00000000", "received_currency": "BTC",
        "received_amount": money.text(paid, 8)}
    assert Decimal(event["value"]) >= PRICE and event["value"].count(".") == 1
    assert len(event["value"].split(".")[1]) == 8 and isinstance(event["created_at"], int)

    # The processor's retries are no news: no second word to the shop.
    for callback in callbacks_of(app)[-2:]:
        assert resend(live_server, callback).status_code == 200
    settle(app)
    assert len(told(webhook)) == 1


def test_late_money_worth_less_offers_the_difference_or_the_money_back(
        app: Flask, client: FlaskClient, shop: TestShop, live_server: LiveServer,
        webhook: Shop) -> None:
    data = expired(shop, live_server, app)
    half = times(data["sender_amount"], "0.5")
    pay_late(live_server, app, data["address"], half)

    short = model(client, app, data["id"])
    late = short["late"]
    assert (late["status"], late["decision"]) == ("confirmed", "short")
    value = Decimal(late["value"]["amount"])
    assert value < PRICE
    rest = late["difference"]
    with app.app_context():
        rate = rates.cached(db.session(), "BTC", "EUR")
    assert rate is not None and Decimal(rest["rate"]) == rate
    # The difference in the payer's coin at today's rate, rounded up to the satoshi.
    due = Decimal(rest["amount"])
    missing = PRICE - Decimal(late["value"]["amount"])
    assert due * rate >= missing - Decimal("0.01") and (due - Decimal("1e-8")) * rate < missing
    assert (rest["currency"], rest["fiat_currency"]) == ("BTC", "EUR")
    # The pay screen asks for it, at the same (permanent) address, the QR carrying it.
    assert short["pay_now"] is True and short["amount_due"] == rest["amount"]
    assert short["address"] == data["address"] and short["watch"] is True
    page_id = page_id_of(app, data["id"])
    [barcode] = zxingcpp.read_barcodes(Image.open(io.BytesIO(
        client.get(f"/p/{page_id}/qr.png").data)))
    # (A bech32 address is written in capitals in the QR: its alphanumeric mode is denser.)
    assert barcode.text.lower() == short["payment_uri"].lower()
    assert data["address"].lower() in barcode.text.lower()
    assert f"amount={rest['amount']}" in barcode.text
    page = html(client, app, data["id"])
    assert "Pay the difference below to complete your order" in page
    assert "Or ask for your money back instead." in page

    # Or the money back: all the confirmed late money, in the payer's coin.
    due_back = owed_of(app, data["id"])
    assert due_back is not None
    assert (due_back.cause, due_back.currency, due_back.balance_currency) == (
        refund_rules.LATE, "BTC", "EUR")
    assert due_back.total == half
    assert [e["status"] for e in told(webhook)] == ["not_accepted"]

    # The customer pays the difference (a little more: the rate moves between the screen and
    # the payment): enough late money has arrived, the order is paid.
    pay_late(live_server, app, data["address"], times(rest["amount"], "1.03"))
    done = model(client, app, data["id"])
    assert done["late"]["decision"] == "accepted" and done["pay_now"] is False
    assert Decimal(done["late"]["value"]["amount"]) >= PRICE
    assert owed_of(app, data["id"]) is None
    assert [e["status"] for e in told(webhook)] == ["not_accepted", "accepted"]


def test_a_merchant_taking_no_late_money_offers_only_the_money_back(
        app: Flask, client: FlaskClient, shop: TestShop, live_server: LiveServer,
        webhook: Shop) -> None:
    no_late_money_accepted(app)
    data = expired(shop, live_server, app)
    paid = times(data["sender_amount"], "1.05")
    pay_late(live_server, app, data["address"], paid)

    refused = model(client, app, data["id"])
    assert refused["late"]["decision"] == "refused" and refused["late"]["difference"] is None
    assert refused["pay_now"] is False and refused["watch"] is False
    assert "You can ask for your money back." in html(client, app, data["id"])
    due_back = owed_of(app, data["id"])
    assert due_back is not None and due_back.cause == refund_rules.LATE
    assert due_back.total == paid
    [event] = told(webhook)
    assert event["status"] == "not_accepted" and event["received_amount"] == money.text(paid, 8)


# ---------------------------------------------------------------------------------------------
# The processor's invoice callback after `failed` names no converted amount: the cached rate
# when the money is confirmed values it.


def late_invoice_body(failed: Callback, status: str) -> bytes:
    """The processor's own failed callback for our quote, now carrying a payment."""
    payload = json.loads(failed.body)
    payload["transactions"] = [{
        "id": 77001, "currency": "BTC", "transaction_type": "blockchain", "type": "deposit",
        "address": payload["crypto_address"]["address"], "tag": None,
        "amount": payload["currency_sent"]["amount"], "txid": "cd" * 32,
        "confirmations": "3" if status == "confirmed" else "0"}]
    payload["error"], payload["status"] = "", status
    return json.dumps(payload, separators=(",", ":")).encode()


def post_signed(live: LiveServer, body: bytes) -> None:
    headers = {"Content-Type": "application/json", "X-Processing-Key": "test-key-11",
               "X-Processing-Signature": shop_signature(body)}
    assert requests.post(f"{live.url}/callbacks/coinspaid", data=body, headers=headers,
                         timeout=10).status_code == 200


def rate_now(app: Flask, rate: str | None) -> None:
    """The cached BTC/EUR rate, fetched just now; None: only an hour-old one."""
    with app.app_context(), db.transaction() as s:
        quote = s.scalars(select(RateQuote).where(RateQuote.currency_from == "BTC",
                                                  RateQuote.currency_to == "EUR")).one()
        quote.fetched_at = quote.attempted_at = clock.now()
        if rate is None:
            quote.fetched_at -= timedelta(seconds=rates.SHOWN_MAX_AGE + 60)
        else:
            quote.rate = rate


@pytest.mark.parametrize(("rate", "decision"), [("1000000", "accepted"), ("1000", "short"),
                                                (None, "refused")])
def test_without_a_converted_amount_the_cached_rate_values_late_money(
        app: Flask, client: FlaskClient, shop: TestShop, live_server: LiveServer,
        webhook: Shop, rate: str | None, decision: str) -> None:
    data = expired(shop, live_server, app)
    [failed] = callbacks_of(app)
    rate_now(app, rate)
    post_signed(live_server, late_invoice_body(failed, "processing"))
    settle(app)
    assert model(client, app, data["id"])["late"]["decision"] is None  # not confirmed yet
    post_signed(live_server, late_invoice_body(failed, "confirmed"))
    settle(app)
    late = model(client, app, data["id"])["late"]
    assert late["decision"] == decision
    amount = Decimal(data["sender_amount"])
    if rate is None:  # no value known: never accepted, and no difference can be said
        assert late["value"] is None and late["difference"] is None
    else:
        assert Decimal(late["value"]["amount"]) == (amount * Decimal(rate)).quantize(
            Decimal("0.01"), ROUND_DOWN)
    if decision == "short":
        assert Decimal(late["difference"]["amount"]) == money.ceil(
            (PRICE - amount * Decimal(rate)) / Decimal(rate), 8)
    assert (owed_of(app, data["id"]) is None) is (decision == "accepted")
    [event] = told(webhook)
    assert event["status"] == ("accepted" if decision == "accepted" else "not_accepted")
