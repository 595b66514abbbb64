"""simulate/payment -> deposit callbacks through the outbox -> a real receiver; retries;
transactions/info; the clock endpoint; the demo shop receiver."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask

from checkout.sandbox import accounts, outbox
from checkout.wire import jsontext, signing

from .conftest import CLIENT_ID, KEY, SECRET, Api, Receiver, advance, run_task, settle

D = Decimal


def take(api: Api, currency: str = "BTC", **extra: Any) -> dict[str, Any]:
    payload = {"currency": currency, "foreign_id": "user-id:2048", **extra}
    taken: dict[str, Any] = api.data("addresses/take", payload, 201)
    return taken


def test_unconfirmed_deposit_then_confirmed_later(hooked: Api, app: Flask,
                                                  receiver: Receiver) -> None:
    api = hooked
    address = take(api)
    api.simulate(address["address"], "0.01")
    settle(app)
    [first] = receiver.calls
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["X-Processing-Key"] == KEY
    assert signing.verify(first.body, SECRET, first.headers["X-Processing-Signature"])
    assert b" " not in first.body  # compact JSON, the bytes that were signed
    body = first.json
    assert list(body) == ["id", "type", "crypto_address", "currency_sent", "currency_received",
                          "transactions", "fees", "error", "status"]
    assert body["type"] == "deposit" and body["status"] == "not_confirmed"
    assert body["crypto_address"] == {"id": address["id"], "currency": "BTC",
                                      "address": address["address"], "tag": None,
                                      "foreign_id": "user-id:2048"}
    assert body["currency_sent"] == {"currency": "BTC", "amount": "0.01000000"}
    assert body["transactions"][0]["confirmations"] == "0"
    assert len(body["transactions"][0]["txid"]) == 64
    assert body["fees"] == [] and body["error"] == ""
    assert api.balance("BTC") == D(1)  # nothing credited before confirmation

    advance(app, 9)
    settle(app)
    assert len(receiver.calls) == 1
    advance(app, 1)
    settle(app)
    second = receiver.calls[1].json
    assert second["id"] == body["id"] and second["status"] == "confirmed"
    assert second["fees"] == [{"type": "fee_crypto_deposit", "currency": "BTC",
                               "amount": "0.00003000"}]
    assert second["currency_received"] == {"currency": "BTC", "amount": "0.01000000",
                                           "amount_minus_fee": "0.00997000"}
    assert second["transactions"][0]["confirmations"] == "3"
    assert api.balance("BTC") == D("1.00997")
    settle(app)
    assert len(receiver.calls) == 2  # delivered callbacks are not sent again


def test_deposit_with_conversion(hooked: Api, app: Flask, receiver: Receiver) -> None:
    api = hooked
    address = take(api, convert_to="EUR")
    api.simulate(address["address"], "0.01", status="confirmed")
    settle(app)
    [callback] = receiver.bodies()
    assert callback["type"] == "deposit_exchange" and callback["status"] == "confirmed"
    assert callback["crypto_address"]["convert_to"] == "EUR"
    received = D(callback["currency_received"]["amount"])
    assert D(500) < received < D(700)
    chain_leg, exchange_leg = callback["transactions"]
    assert chain_leg["type"] == "deposit" and exchange_leg["type"] == "exchange"
    assert exchange_leg["amount_to"] == callback["currency_received"]["amount"]
    [fee] = callback["fees"]
    assert fee["type"] == "fee_crypto_deposit_to_fiat" and fee["currency"] == "EUR"
    net = D(callback["currency_received"]["amount_minus_fee"])
    assert net == received - D(fee["amount"])
    assert api.balance("EUR") == D(10000) + net
    assert api.balance("BTC") == D(1)


@pytest.mark.parametrize(("currency", "amount"), [("XRP", "25")])
def test_tag_currencies_need_the_tag(hooked: Api, app: Flask, receiver: Receiver,
                                     currency: str, amount: str) -> None:
    api = hooked
    first, second = take(api, currency), take(api, currency)
    api.simulate(first["address"], amount, expect=404)
    api.simulate(first["address"], amount, tag="999", expect=404)
    api.simulate(second["address"], amount, tag=second["tag"], status="confirmed")
    settle(app)
    [callback] = receiver.bodies()
    assert callback["crypto_address"]["id"] == second["id"]
    assert callback["crypto_address"]["tag"] == second["tag"]


def test_cancelled_and_below_minimum_deposits_credit_nothing(hooked: Api, app: Flask,
                                                             receiver: Receiver) -> None:
    api = hooked
    address = take(api)
    api.simulate(address["address"], "0.01", status="cancelled")
    api.simulate(address["address"], "0.00001", status="confirmed")
    advance(app, 60)
    settle(app)
    cancelled, small = receiver.bodies()
    assert (cancelled["status"], cancelled["error"]) == ("cancelled", "")
    assert (small["status"], small["error"]) == (
        "cancelled", "Transaction amount less than minimum deposit")
    assert api.balance("BTC") == D(1)
    assert len(receiver.calls) == 2


@pytest.mark.parametrize(("body", "status", "field"), [
    (b"nope", 400, "body"),
    (b"[]", 400, "body"),
    (json.dumps({"amount": "1"}).encode(), 400, "address"),
    (json.dumps({"address": "tb1qnothing", "amount": "1"}).encode(), 404, "address"),
    (json.dumps({"address": "x", "amount": "1e3"}).encode(), 400, "amount"),
    (json.dumps({"address": "x", "amount": True}).encode(), 400, "amount"),
    (json.dumps({"address": "x", "amount": None}).encode(), 400, "amount"),
    (json.dumps({"address": "x", "amount": "-1"}).encode(), 400, "amount"),
    (json.dumps({"address": "x", "amount": "0.000000001"}).encode(), 400, "amount"),
    (json.dumps({"address": "x", "amount": "1", "status": "paid"}).encode(), 400, "status"),
    (json.dumps({"address": "x", "amount": "1", "tag": [1]}).encode(), 400, "tag"),
])
def test_simulate_payment_refuses_bad_input(api: Api, body: bytes, status: int,
                                            field: str) -> None:
    response = requests.post(api.base + "/sandbox/simulate/payment", data=body,
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == status
    assert field in response.json()["errors"]


def test_retry_schedule_until_the_site_answers_200(hooked: Api, app: Flask,
                                                   receiver: Receiver) -> None:
    api = hooked
    receiver.answers = [500, 503, 404]
    api.simulate(take(api)["address"], "0.01", status="confirmed")
    assert run_task(app, "callbacks") == 1
    [pending] = outbox.pending(app)
    assert (pending["attempts"], pending["last_error"]) == (1, "HTTP 500")
    assert run_task(app, "callbacks") == 0  # not due yet
    advance(app, 60)
    assert run_task(app, "callbacks") == 1  # +1 min
    advance(app, 4 * 60)
    assert run_task(app, "callbacks") == 0
    advance(app, 60)
    assert run_task(app, "callbacks") == 1  # +5 min
    advance(app, 15 * 60)
    assert run_task(app, "callbacks") == 1  # +15 min, answered 200
    assert outbox.pending(app) == []
    assert len(receiver.calls) == 4
    assert len({c.body for c in receiver.calls}) == 1  # the same bytes every time


def test_unreachable_site_is_retried(hooked: Api, app: Flask, receiver: Receiver) -> None:
    accounts.set_callback_url(app, CLIENT_ID, "http://127.0.0.1:9/callbacks/coinspaid")
    hooked.simulate(take(hooked)["address"], "0.01", status="confirmed")
    assert run_task(app, "callbacks") == 1
    [pending] = outbox.pending(app)
    assert pending["attempts"] == 1 and pending["last_error"] == "ConnectionError"


def test_callbacks_give_up_after_the_last_retry(hooked: Api, app: Flask,
                                                receiver: Receiver) -> None:
    receiver.answers = [500] * 20
    hooked.simulate(take(hooked)["address"], "0.01", status="confirmed")
    for _ in range(20):
        run_task(app, "callbacks")
        advance(app, 240 * 60)
    assert len(receiver.calls) == 13  # the first try and 12 retries
    [pending] = outbox.pending(app)
    assert pending["next_attempt_at"] is None


def test_two_workers_never_send_the_same_callback(hooked: Api, app: Flask,
                                                  receiver: Receiver) -> None:
    address = take(hooked)["address"]
    for _ in range(5):
        hooked.simulate(address, "0.01", status="confirmed")
    threads = [threading.Thread(target=run_task, args=(app, "callbacks")) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [b["id"] for b in receiver.bodies()]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 5


@pytest.mark.parametrize("public_url", [True, False])
def test_callbacks_go_to_the_site_when_no_callback_url_is_set(api: Api, app: Flask,
                                                              public_url: bool) -> None:
    """Without a back-office URL: <PUBLIC_URL, else the request's host>/callbacks/coinspaid."""
    if not public_url:
        app.config["PUBLIC_URL"] = None
    api.simulate(take(api)["address"], "0.01")
    [queued] = outbox.pending(app)
    assert queued["url"] == api.base + "/callbacks/coinspaid"
    # Confirmation is queued by the worker, with no request: the captured URL still holds.
    app.config["PUBLIC_URL"] = None
    advance(app, 10)
    run_task(app, "confirmations")
    assert [c["url"] for c in outbox.pending(app)] == [api.base + "/callbacks/coinspaid"] * 2


def test_transactions_info_lookups(hooked: Api, app: Flask, receiver: Receiver) -> None:
    api = hooked
    address = take(api, foreign_id="cust-7")
    deposit = api.simulate(address["address"], "0.01")
    withdrawal = api.data("withdrawal/crypto", {"foreign_id": "w-9", "currency": "BTC",
                                                "amount": "0.001", "address": "tb1qz"}, 201)

    def info(payload: dict[str, Any]) -> Any:
        response = api.call("transactions/info", payload, method="GET")
        assert response.status_code == 200, response.text
        body = jsontext.loads(response.content)
        assert "data" not in body
        return body

    assert info({"id": deposit["id"]}) == deposit
    assert info({"txid": deposit["transactions"][0]["txid"]})["id"] == deposit["id"]
    assert info({"foreign_id": "cust-7"})["id"] == deposit["id"]
    by_foreign = info({"foreign_id": "w-9"})
    assert by_foreign["id"] == withdrawal["id"]
    assert by_foreign["status"] == "not_confirmed"  # processing is shown as not_confirmed
    advance(app, 10)
    settle(app)
    assert info({"id": deposit["id"]})["status"] == "confirmed"
    assert info({"txid": info({"id": withdrawal["id"]})["transactions"][0]["txid"]})["id"] == \
        withdrawal["id"]


@pytest.mark.parametrize(("payload", "status"), [
    ({}, 400), ({"id": 1, "txid": "a"}, 400), ({"id": "x"}, 400), ({"id": True}, 400),
    ({"id": 999999}, 404), ({"foreign_id": "missing"}, 404), ({"txid": "00"}, 404),
])
def test_transactions_info_errors(api: Api, payload: dict[str, Any], status: int) -> None:
    response = api.call("transactions/info", payload, method="GET")
    assert response.status_code == status
    assert set(response.json()) == {"errors"}


def test_one_account_never_sees_another_accounts_transactions(api: Api, app: Flask) -> None:
    deposit = api.simulate(take(api)["address"], "0.01")
    app.extensions["sandbox.open_account"](12, "other-key", "other-secret")
    other = Api(api.base, "other-key", "other-secret")
    assert other.call("transactions/info", {"id": deposit["id"]}, method="GET").status_code == 404


@pytest.mark.parametrize(("body", "status"), [
    ({"advance_seconds": 30}, 200), ({"advance_seconds": -1}, 400),
    ({"advance_seconds": "30"}, 400), ({"advance_seconds": 1.5}, 400), ({}, 400),
])
def test_clock_endpoint(api: Api, body: dict[str, Any], status: int) -> None:
    before = requests.get(api.base + "/sandbox/clock", timeout=30).json()["now"]
    response = requests.post(api.base + "/sandbox/clock", data=json.dumps(body),
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == status
    if status == 200:
        assert response.json()["now"] - before in (30, 31)


def test_demo_shop_verifies_and_lists_callbacks(api: Api) -> None:
    body = b'{"id":5,"type":"deposit","status":"confirmed"}'
    url = api.base + "/sandbox/shop/callback"
    good = {"X-Processing-Key": KEY, "X-Processing-Signature": signing.sign(body, SECRET),
            "Content-Type": "application/json"}
    assert requests.post(url, data=body, headers=good, timeout=30).status_code == 200
    for bad in ({**good, "X-Processing-Signature": "0" * 128},
                {**good, "X-Processing-Key": "nobody"},
                {"Content-Type": "application/json"}):
        assert requests.post(url, data=body, headers=bad, timeout=30).status_code == 403
    assert requests.post(url, data=body + b" ", headers=good, timeout=30).status_code == 403
    page = requests.get(api.base + "/sandbox/shop", timeout=30)
    assert page.status_code == 200
    # One callback listed (the links to try above it are list items of their own).
    callbacks = page.text.split("<h2>Callbacks</h2>")[1]
    assert callbacks.count("<li>") == 1 and "deposit" in callbacks and "confirmed" in callbacks
    assert "<script" not in page.text and "style=" not in page.text
    assert SECRET not in page.text
