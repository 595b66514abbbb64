"""exchange/calculate, exchange/fixed and exchange/now: quotes, balances and callbacks."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask import Flask

from checkout.sandbox import payloads
from checkout.wire import jsontext, signing

from .conftest import KEY, SECRET, Api, Receiver, advance, settle

D = Decimal
BTC_EUR = {"sender_currency": "BTC", "receiver_currency": "EUR"}


def test_calculate_shape(api: Api) -> None:
    quote = api.data("exchange/calculate", dict(BTC_EUR, sender_amount=1))
    assert list(quote) == ["sender_amount", "sender_currency", "receiver_amount",
                           "receiver_currency", "fee_amount", "fee_currency", "price",
                           "ts_fixed", "ts_release", "fix_period"]
    assert quote["sender_amount"] == "1.00000000"
    # The price is shown rounded; the amount is the exact product rounded down.
    assert abs(D(quote["receiver_amount"]) - D(quote["price"])) <= D("0.00000001")
    # Charged in the receiver currency (issue 11): 1% of what is bought.
    assert quote["fee_currency"] == "EUR"
    assert D(quote["fee_amount"]) == (D(quote["receiver_amount"]) / 100).quantize(D("1e-8"))
    assert quote["ts_release"] == quote["ts_fixed"] + 60 and quote["fix_period"] == 60


def test_calculate_from_receiver_amount_rounds_the_sender_up(api: Api) -> None:
    quote = api.data("exchange/calculate", dict(BTC_EUR, receiver_amount="100"))
    assert quote["receiver_amount"] == "100.00000000"
    assert D(quote["sender_amount"]) * D(quote["price"]) >= D(100)


@pytest.mark.parametrize(("payload", "errors"), [
    ({}, {"sender_currency": "The sender currency field is required.",
          "receiver_currency": "The receiver currency field is required.",
          "sender_amount": "The sender amount field is required when receiver amount is not "
                           "present."}),
    ({"sender_currency": "EUR", "receiver_currency": "USD", "sender_amount": "5"},
     {"sender_currency": "Exchange is unavailable for given currencies"}),
    (dict(BTC_EUR), {"sender_amount": "The sender amount field is required when receiver "
                                      "amount is not present."}),
    (dict(BTC_EUR, sender_amount="1", receiver_amount="1"),
     {"sender_amount": "The sender amount and receiver amount fields may not both be present."}),
    (dict(BTC_EUR, sender_amount="abc"), {"sender_amount": "The sender amount must be a number."}),
    (dict(BTC_EUR, sender_amount="-1"), {"sender_amount": "The sender amount must be a number."}),
    (dict(BTC_EUR, sender_amount="0"), {"sender_amount": "The sender amount must be at least 0."}),
    (dict(BTC_EUR, sender_amount="1e3"), {"sender_amount": "The sender amount must be a number."}),
    (dict(BTC_EUR, sender_amount=True), {"sender_amount": "The sender amount must be a number."}),
    (dict(BTC_EUR, sender_amount="0.000000001"),
     {"sender_amount": "The sender amount may not have more than 8 decimal places."}),
    (dict(BTC_EUR, sender_amount="1", price_precision="x"),
     {"price_precision": "The price precision must be an integer."}),
])
def test_calculate_validation(api: Api, payload: dict[str, object],
                              errors: dict[str, str]) -> None:
    assert api.errors("exchange/calculate", payload) == errors


def test_fixed_accepts_a_recent_quote_and_moves_balances(api: Api) -> None:
    quote = api.data("exchange/calculate", dict(BTC_EUR, sender_amount="0.01"))
    done = api.data("exchange/fixed", dict(BTC_EUR, sender_amount="0.01", price=quote["price"],
                                           foreign_id="ex-1"), 201)
    assert done == {"id": done["id"], "foreign_id": "ex-1", "type": "exchange",
                    "sender_amount": "0.01000000", "sender_currency": "BTC",
                    "receiver_amount": quote["receiver_amount"], "receiver_currency": "EUR",
                    "fee_amount": quote["fee_amount"], "fee_currency": "EUR",
                    "price": quote["price"], "status": "processing"}
    assert api.balance("BTC") == D("0.99")  # the amount, at once; the fee is kept from EUR


@pytest.mark.parametrize("change", ["price", "amount", "late"])
def test_fixed_refuses_an_unquoted_or_stale_price(api: Api, app: Flask, change: str) -> None:
    quote = api.data("exchange/calculate", dict(BTC_EUR, sender_amount="0.01"))
    payload = dict(BTC_EUR, sender_amount="0.01", price=quote["price"], foreign_id="ex-2")
    if change == "price":
        payload["price"] = str(D(quote["price"]) + 1)
    elif change == "amount":
        payload["sender_amount"] = "0.02"
    else:
        advance(app, 61)
    assert api.errors("exchange/fixed", payload) == {
        "price": "The price is not valid or has expired."}
    assert api.balance("BTC") == D(1)


def test_fixed_needs_a_price(api: Api) -> None:
    errors = api.errors("exchange/fixed", dict(BTC_EUR, sender_amount="0.01", foreign_id="e"))
    assert errors == {"price": "The price field is required."}


def test_now_exchanges_and_confirms_with_a_callback(api: Api, app: Flask,
                                                    hooked: Api, receiver: Receiver) -> None:
    done = api.data("exchange/now", {"sender_currency": "EUR", "receiver_currency": "BTC",
                                     "receiver_amount": "0.003", "foreign_id": "buy-1"}, 201)
    assert done["status"] == "processing" and done["receiver_amount"] == "0.00300000"
    assert done["fee_currency"] == "BTC" and done["fee_amount"] == "0.00003000"
    assert api.balance("EUR") == D(10000) - D(done["sender_amount"])
    assert api.balance("BTC") == D(1)  # credited on confirmation
    settle(app)
    assert receiver.calls == []
    advance(app, 10)
    settle(app)
    assert api.balance("BTC") == D("1.003") - D("0.00003")
    [callback] = receiver.calls
    assert signing.verify(callback.body, SECRET, callback.headers["X-Processing-Signature"])
    assert callback.headers["X-Processing-Key"] == KEY
    assert callback.json == {
        "id": done["id"], "foreign_id": "buy-1", "type": "exchange",
        "currency_sent": {"currency": "EUR", "amount": done["sender_amount"]},
        "currency_received": {"currency": "BTC", "amount": "0.00300000"},
        "transactions": [{"id": payloads.exchange_leg_id(done["id"]), "currency": "EUR",
                          "currency_to": "BTC",
                          "transaction_type": "exchange", "type": "exchange",
                          "amount": done["sender_amount"], "amount_to": "0.00300000"}],
        "fees": [{"type": "exchange", "currency": "BTC", "amount": done["fee_amount"]}],
        "error": "", "status": "confirmed"}


def test_now_minimum_is_about_0_003_btc(api: Api) -> None:
    errors = api.errors("exchange/now", dict(BTC_EUR, sender_amount="0.001", foreign_id="m"))
    assert errors == {"sender_amount": "The amount must be at least 0.00300000 "}


def test_not_enough_balance_changes_nothing(api: Api) -> None:
    errors = api.errors("exchange/now", dict(BTC_EUR, sender_amount="1.00000001",
                                             foreign_id="big"))
    assert errors == {"sender_amount": "Not enough balance."}  # more than the 1 BTC held
    assert api.balance("BTC") == D(1) and api.balance("EUR") == D(10000)


def test_exchange_foreign_id_is_unique(api: Api) -> None:
    payload = dict(BTC_EUR, sender_amount="0.01", foreign_id="same")
    api.data("exchange/now", payload, 201)
    assert api.errors("exchange/now", payload) == {
        "foreign_id": "The foreign id has already been taken."}
    assert api.balance("BTC") == D("0.99")


def test_amounts_as_bare_json_numbers(api: Api) -> None:
    raw = b'{"sender_currency":"BTC","receiver_currency":"EUR","sender_amount":0.5}'
    response = api.call("exchange/calculate", raw=raw)
    assert response.status_code == 200
    assert jsontext.loads(response.content)["data"]["sender_amount"] == "0.50000000"
