"""invoices/create (three types), payments and timers, cancel rules, invoice callbacks."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
import requests
from flask import Flask

from checkout.wire import decimals, signing

from .conftest import KEY, SECRET, Api, Receiver, advance, settle

D = Decimal
BASE = {"title": "Invoice Title", "currency": "EUR", "amount": 106.75,
        "url_success": "http://success.test", "url_failed": "http://failed.test",
        "email_user": "email@address.com"}


def create(api: Api, foreign_id: str = "196", **fields: Any) -> dict[str, Any]:
    payload = {**BASE, "timer": False, "foreign_id": foreign_id, **fields}
    data: dict[str, Any] = api.data("invoices/create", payload)
    return data


def test_type_1_no_timer_no_currency(api: Api) -> None:
    invoice = create(api)
    assert list(invoice) == ["id", "url", "foreign_id", "address", "tag", "title", "status",
                             "currency", "amount", "sender_currency", "sender_amount",
                             "fixed_at", "release_at", "seconds_left"]
    assert invoice["status"] == "created" and invoice["amount"] == "106.75000000"
    assert invoice["foreign_id"] == "196" and invoice["title"] == "Invoice Title"
    for key in ("address", "tag", "sender_currency", "sender_amount", "fixed_at", "release_at",
                "seconds_left"):
        assert invoice[key] is None
    assert invoice["url"].startswith(api.base + "/sandbox/invoice/")
    page = requests.get(invoice["url"], timeout=30)
    assert page.status_code == 200 and "Invoice Title" in page.text


def test_type_2_timer_without_currency(api: Api) -> None:
    invoice = create(api, timer=True)
    assert invoice["status"] == "pending" and invoice["address"] is None
    assert invoice["release_at"] - invoice["fixed_at"] == 900
    assert invoice["seconds_left"] == 900


def test_type_3_timer_and_sender_currency(api: Api) -> None:
    invoice = create(api, timer=True, sender_currency="BTC", amount=35)
    assert invoice["status"] == "pending"
    assert invoice["address"].startswith("tb1q") and invoice["tag"] is None
    rate = api.data("currencies/rates", {"currency_from": "BTC", "currency_to": "EUR"})
    owed = D(invoice["sender_amount"])
    # Rounded up: the payer never owes less than the invoice is worth.
    assert owed * D(rate[0]["rate_to"]) >= D(35) - D("0.001")
    assert owed * D(rate[0]["rate_to"]) < D(35) + D("0.001")


def test_xrp_invoice_carries_the_tag(api: Api) -> None:
    invoice = create(api, timer=True, sender_currency="XRP")
    assert invoice["address"].startswith("r") and invoice["tag"].isdigit()


@pytest.mark.parametrize(("fields", "errors"), [
    ({"foreign_id": None}, {"foreign_id": "The foreign id field is required."}),
    ({"title": ""}, {"title": "The title field is required."}),
    ({"title": "x" * 51}, {"title": "The title may not be greater than 50 characters."}),
    ({"description": "x" * 1001},
     {"description": "The description may not be greater than 1000 characters."}),
    ({"timer": None}, {"timer": "The timer field is required."}),
    ({"timer": "soon"}, {"timer": "The timer field must be true or false."}),
    ({"currency": "EURO"}, {"currency": "The selected currency is invalid."}),
    ({"amount": "ten"}, {"amount": "The amount must be a number."}),
    ({"amount": 9.99}, {"amount": "The amount is too small. The minimum amount is 10.00 EUR."}),
    ({"currency": "USD", "amount": 10},
     {"amount": "The amount is too small. The minimum amount is 10.00 EUR."}),
    ({"url_success": "javascript:alert(1)"}, {"url_success": "The url success format is invalid."}),
    ({"url_failed": None}, {"url_failed": "The url failed field is required."}),
    ({"url_failed": "//failed.test"}, {"url_failed": "The url failed format is invalid."}),
    ({"email_user": "nobody"}, {"email_user": "The email user must be a valid email address."}),
    ({"sender_currency": "EUR"}, {"sender_currency": "The selected sender currency is invalid."}),
    ({"currency": "BTC", "amount": 1, "sender_currency": "BTC"}, {}),
    ({"type": "forever"}, {"type": "The selected type is invalid."}),
])
def test_create_validation(api: Api, fields: dict[str, Any], errors: dict[str, str]) -> None:
    payload = {**BASE, "timer": True, "foreign_id": "v", **fields}
    payload = {k: v for k, v in payload.items() if v is not None}
    if errors:
        assert api.errors("invoices/create", payload) == errors
    else:
        assert api.data("invoices/create", payload)["status"] == "pending"


def test_foreign_id_is_unique_per_account(api: Api, app: Flask) -> None:
    create(api, "same")
    assert api.errors("invoices/create", {**BASE, "timer": False, "foreign_id": "same"}) == {
        "foreign_id": "The foreign id has already been taken."}
    app.extensions["sandbox.open_account"](12, "k12", "s12")
    assert create(Api(api.base, "k12", "s12"), "same")["status"] == "created"


def test_paid_in_full_goes_processing_then_confirmed(hooked: Api, app: Flask,
                                                     receiver: Receiver) -> None:
    api = hooked
    invoice = create(api, "229-hdsa", timer=True, sender_currency="BTC", amount=26)
    api.simulate(invoice["address"], invoice["sender_amount"])
    settle(app)
    [processing] = receiver.bodies()
    assert processing["id"] == invoice["id"] and processing["type"] == "invoice"
    assert processing["foreign_id"] == "229-hdsa" and processing["status"] == "processing"
    assert processing["crypto_address"] == {"id": processing["crypto_address"]["id"],
                                            "currency": "BTC", "convert_to": "EUR",
                                            "address": invoice["address"], "tag": None}
    assert processing["currency_sent"] == {"currency": "BTC", "amount": invoice["sender_amount"],
                                           "remaining_amount": "0.00000000"}
    assert processing["currency_received"] == {"currency": "EUR", "amount": "26.00000000"}
    assert processing["fixed_at"] == invoice["fixed_at"]
    # The mempool stretches the deadline from 15 minutes to 24 hours.
    assert processing["expires_at"] - processing["fixed_at"] >= 24 * 3600
    advance(app, 20 * 60)  # past the original 15 minutes: still fine
    settle(app)
    confirmed = receiver.bodies()[-1]
    assert confirmed["status"] == "confirmed" and confirmed["error"] == ""
    assert confirmed["fees"][0]["type"] == "fee_crypto_deposit"
    assert D(26) - D(1) < api.balance("EUR") - D(10000) <= D(26)
    settle(app)
    assert len(receiver.calls) == 2


def test_unpaid_invoice_fails_after_15_minutes(hooked: Api, app: Flask,
                                               receiver: Receiver) -> None:
    invoice = create(hooked, timer=True, sender_currency="BTC")
    advance(app, 899)
    settle(app)
    assert receiver.calls == []
    advance(app, 1)
    settle(app)
    [failed] = receiver.bodies()
    assert (failed["status"], failed["error"]) == ("failed", "Timer expired. User not paid.")
    assert failed["transactions"] == []
    assert failed["currency_sent"]["remaining_amount"] == invoice["sender_amount"]


DEPOSIT_KEYS = ["id", "type", "crypto_address", "currency_sent", "currency_received",
                "transactions", "fees", "error", "status"]


@pytest.mark.parametrize(("currency", "amount", "kind"), [
    ("EUR", 26, "deposit_exchange"),  # the address converts to the invoice's currency
    ("BTC", "0.001", "deposit"),  # a BTC invoice paid in BTC: nothing to convert
])
def test_payment_after_expiry_is_a_deposit_on_the_invoice_address(
        hooked: Api, app: Flask, receiver: Receiver, currency: str, amount: Any,
        kind: str) -> None:
    """Money reaching an expired invoice's address sits in the merchant's account, and the
    merchant hears of it: the signed deposit callbacks of that address (the shape is
    UNCONFIRMED; see sandbox/invoices.py takes_payments)."""
    invoice = create(hooked, "late-1", timer=True, currency=currency, amount=amount,
                     sender_currency="BTC")
    advance(app, 900)
    settle(app)
    [failed] = receiver.bodies()
    assert failed["status"] == "failed" and failed["error"] == "Timer expired. User not paid."
    before = hooked.balance(currency)

    hooked.simulate(invoice["address"], invoice["sender_amount"])
    settle(app)
    seen = receiver.calls[1]
    assert seen.headers["X-Processing-Key"] == KEY
    assert signing.verify(seen.body, SECRET, seen.headers["X-Processing-Signature"])
    body = seen.json
    assert list(body) == DEPOSIT_KEYS
    assert body["type"] == kind and body["status"] == "not_confirmed"
    assert body["id"] != invoice["id"]  # a transaction of its own, not the invoice
    expected_address = {"id": body["crypto_address"]["id"], "currency": "BTC",
                        "address": invoice["address"], "tag": None, "foreign_id": "late-1"}
    if kind == "deposit_exchange":
        expected_address["convert_to"] = currency
    assert body["crypto_address"] == expected_address
    assert body["currency_sent"] == {"currency": "BTC", "amount": invoice["sender_amount"]}
    [leg, *exchange] = body["transactions"]
    assert (leg["type"], leg["address"], leg["confirmations"]) == (
        "deposit", invoice["address"], "0")
    assert leg["amount"] == invoice["sender_amount"] and len(leg["txid"]) == 64
    assert len(exchange) == (kind == "deposit_exchange")
    assert body["fees"] == [] and body["error"] == ""
    assert hooked.balance(currency) == before  # nothing credited before confirmation

    advance(app, 10)
    settle(app)
    assert len(receiver.calls) == 3
    confirmed = receiver.calls[2].json
    assert (confirmed["id"], confirmed["type"], confirmed["status"]) == (
        body["id"], kind, "confirmed")
    assert confirmed["transactions"][0]["confirmations"] == "3"
    [fee] = confirmed["fees"]
    assert fee["currency"] == currency and isinstance(fee["amount"], str)
    net = D(confirmed["currency_received"]["amount_minus_fee"])
    assert confirmed["currency_received"]["amount"] == decimals.text(
        D(confirmed["currency_received"]["amount"]), 8)  # 8-decimal text, as every amount
    assert net == D(confirmed["currency_received"]["amount"]) - D(fee["amount"])
    assert hooked.balance(currency) == before + net  # in the merchant's account
    # The invoice itself stays failed: no invoice callback after its final word.
    info = hooked.call("transactions/info", {"foreign_id": "late-1"}, method="GET").json()
    assert (info["type"], info["status"], info["transactions"]) == ("invoice", "failed", [])
    assert [b["type"] for b in receiver.bodies()] == ["invoice", kind, kind]
    settle(app)
    assert len(receiver.calls) == 3


def test_processing_too_long_fails_after_24_hours(hooked: Api, app: Flask,
                                                  receiver: Receiver) -> None:
    app.config["SANDBOX_CONFIRM_SECONDS"] = 3 * 24 * 3600  # a chain that never confirms
    invoice = create(hooked, timer=True, sender_currency="BTC")
    hooked.simulate(invoice["address"], invoice["sender_amount"])
    advance(app, 24 * 3600 - 5)
    settle(app)
    assert [b["status"] for b in receiver.bodies()] == ["processing"]
    advance(app, 10)
    settle(app)
    failed = receiver.bodies()[-1]
    assert failed["status"] == "failed"
    assert failed["error"] == "Timer expired. Transactions were in status processing too long."


def test_fill_or_kill_underpaid_fails(hooked: Api, app: Flask, receiver: Receiver) -> None:
    invoice = create(hooked, timer=True, sender_currency="BTC")
    half = decimals.text(D(invoice["sender_amount"]) / 2, 8)
    hooked.simulate(invoice["address"], half, status="confirmed")
    settle(app)
    [failed] = receiver.bodies()
    assert failed["status"] == "failed"
    assert failed["error"] == "Timer expired. User paid less than requested."
    assert hooked.balance("EUR") == D(10000)


def test_good_until_expired_takes_installments(hooked: Api, app: Flask,
                                               receiver: Receiver) -> None:
    invoice = create(hooked, timer=True, sender_currency="LTC", type="good_until_expired")
    owed = D(invoice["sender_amount"])
    first = decimals.text(owed / 2, 8)
    hooked.simulate(invoice["address"], first, status="confirmed")
    settle(app)
    [pending] = receiver.bodies()
    assert pending["status"] == "pending"
    assert D(pending["currency_sent"]["remaining_amount"]) == owed - D(first)
    hooked.simulate(invoice["address"], decimals.text(owed - D(first)), status="confirmed")
    settle(app)
    confirmed = receiver.bodies()[-1]
    assert confirmed["status"] == "confirmed" and len(confirmed["transactions"]) == 2
    assert confirmed["currency_sent"]["remaining_amount"] == "0.00000000"


def test_good_until_expired_partial_fails_at_expiry(hooked: Api, app: Flask,
                                                    receiver: Receiver) -> None:
    invoice = create(hooked, timer=True, sender_currency="LTC", type="good_until_expired")
    hooked.simulate(invoice["address"], decimals.text(D(invoice["sender_amount"]) / 2, 8),
                    status="confirmed")
    advance(app, 900)
    settle(app)
    assert [(b["status"], b["error"]) for b in receiver.bodies()] == [
        ("pending", ""), ("failed", "Timer expired. User paid less than requested.")]


def test_type_1_payer_picks_a_currency_then_the_timer_runs(hooked: Api, app: Flask,
                                                           receiver: Receiver) -> None:
    invoice = create(hooked)
    advance(app, 3600)
    settle(app)
    assert receiver.calls == []  # no timer before a currency is chosen
    response = requests.post(hooked.base + "/sandbox/simulate/invoice-currency",
                             json={"id": invoice["id"], "currency": "ETH"}, timeout=30)
    assert response.status_code == 200, response.text
    chosen = response.json()["data"]
    assert chosen["status"] == "pending" and chosen["address"].startswith("0x")
    assert chosen["seconds_left"] == 900
    hooked.simulate(chosen["address"], chosen["sender_amount"], status="confirmed")
    settle(app)
    assert receiver.bodies()[-1]["status"] == "confirmed"


@pytest.mark.parametrize("state", ["created", "pending", "processing"])
def test_cancel_open_invoices(hooked: Api, app: Flask, receiver: Receiver, state: str) -> None:
    invoice = create(hooked, "c-1", timer=state != "created", sender_currency="BTC"
                     if state == "processing" else None)
    if state == "processing":
        hooked.simulate(invoice["address"], invoice["sender_amount"])
    response = hooked.call("invoices/c-1/cancel/", {})
    assert (response.status_code, response.text) == (200, "[]")
    settle(app)
    last = receiver.bodies()[-1]
    assert (last["status"], last["error"]) == ("failed", "Invoice was cancelled.")
    again = hooked.call("invoices/c-1/cancel/", {})
    assert again.status_code == 400
    assert again.json() == {"errors": {"error": "Invoice cannot be failed in its current state.",
                                       "code": "invalid_invoice_state"}}


def test_cancel_confirmed_invoice_is_refused(hooked: Api, app: Flask) -> None:
    invoice = create(hooked, "c-2", timer=True, sender_currency="BTC")
    hooked.simulate(invoice["address"], invoice["sender_amount"], status="confirmed")
    response = hooked.call("invoices/c-2/cancel/", [])
    assert response.status_code == 400
    assert response.json()["errors"]["code"] == "invalid_invoice_state"


def test_cancel_unknown_or_someone_elses_invoice(api: Api, app: Flask) -> None:
    create(api, "mine")
    app.extensions["sandbox.open_account"](12, "k12", "s12")
    other = Api(api.base, "k12", "s12")
    response = other.call("invoices/mine/cancel/", {})
    assert response.status_code == 404 and set(response.json()) == {"errors"}
    assert api.call("invoices/mine/cancel/", {}, sign_with="nope").status_code == 403


def test_transactions_info_finds_invoices_by_foreign_id(hooked: Api) -> None:
    invoice = create(hooked, "inv-info", timer=True, sender_currency="BTC")
    response = hooked.call("transactions/info", {"foreign_id": "inv-info"}, method="GET")
    body = response.json()
    assert body["id"] == invoice["id"] and body["type"] == "invoice"
    assert body["status"] == "pending"


def test_hostile_text_is_escaped_on_the_hosted_page(api: Api) -> None:
    invoice = create(api, "<b>", title="<script>alert(1)</script>",
                     description='"><img src=x onerror=alert(1)>')
    assert invoice["title"] == "<script>alert(1)</script>"
    page = requests.get(invoice["url"], timeout=30).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page
    assert requests.get(api.base + "/sandbox/invoice/nope", timeout=30).status_code == 404


@pytest.mark.parametrize("foreign_id", ["order/7", "ä ö", "a%2Fb"])
def test_cancel_odd_foreign_ids(api: Api, foreign_id: str) -> None:
    create(api, foreign_id)
    response = api.call(f"invoices/{quote(foreign_id, safe='/')}/cancel/", {})
    assert (response.status_code, response.text) == (200, "[]")
