"""withdrawal/crypto: plain and with conversion, balances, validation, callbacks later."""

from __future__ import annotations

import threading
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

import pytest
from flask import Flask

from .conftest import Api, Receiver, advance, settle

D = Decimal
ETH_TO = "0x" + "ab" * 20


def test_plain_withdrawal_debits_amount_and_fees_then_confirms(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    api = hooked
    done = api.data("withdrawal/crypto", {"foreign_id": "w-1", "currency": "ETH",
                                          "amount": "0.5", "address": ETH_TO}, 201)
    assert done == {"id": done["id"], "foreign_id": "w-1", "type": "withdrawal",
                    "status": "processing", "amount": "0.50000000",
                    "sender_amount": "0.50000000", "sender_currency": "ETH",
                    "receiver_amount": "0.50000000", "receiver_currency": "ETH"}
    assert api.balance("ETH") == D(10) - D("0.5") - D("0.0005")  # mining fee on top
    settle(app)
    assert receiver.calls == []  # nothing before the chain confirms
    advance(app, 10)
    settle(app)
    [callback] = receiver.bodies()
    assert callback["id"] == done["id"] and callback["foreign_id"] == "w-1"
    assert callback["type"] == "withdrawal" and callback["status"] == "confirmed"
    assert callback["crypto_address"] == {"id": done["id"], "currency": "ETH",
                                          "address": ETH_TO, "tag": None}
    assert callback["currency_sent"] == {"currency": "ETH", "amount": "0.50000000"}
    assert callback["currency_received"] == {"currency": "ETH", "amount": "0.50000000"}
    [leg] = callback["transactions"]
    assert leg["type"] == "withdrawal" and leg["transaction_type"] == "blockchain"
    assert leg["txid"].startswith("0x") and leg["confirmations"] == "3"
    assert {f["type"] for f in callback["fees"]} == {"mining", "fee_crypto_withdrawal"}
    assert callback["error"] == ""


def test_withdrawal_to_a_bad_eth_address_is_cancelled_and_refunded(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    api = hooked
    api.data("withdrawal/crypto", {"foreign_id": "123", "currency": "ETH", "amount": "1",
                                   "address": "12345"}, 201)
    assert api.balance("ETH") < D(9)
    advance(app, 10)
    settle(app)
    [callback] = receiver.bodies()
    assert callback["status"] == "cancelled"
    assert callback["error"] == "Invalid params: expected a hex-encoded hash with 0x prefix."
    assert "currency_sent" not in callback and "currency_received" not in callback
    assert callback["transactions"][0]["txid"] is None
    assert callback["fees"] == []
    assert api.balance("ETH") == D(10)


@pytest.mark.parametrize("given", ["amount", "amount_to"])
def test_withdrawal_with_conversion(hooked: Api, app: Flask, receiver: Receiver,
                                    given: str) -> None:
    api = hooked
    payload = {"foreign_id": "wx", "currency": "EUR", "convert_to": "BTC",
               "address": "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"}
    payload[given] = "381" if given == "amount" else "0.005"
    done = api.data("withdrawal/crypto", payload, 201)
    assert done["type"] == "withdrawal_exchange"
    assert done["sender_currency"] == "EUR" and done["receiver_currency"] == "BTC"
    if given == "amount_to":
        assert done["receiver_amount"] == "0.00500000"
    else:
        assert done["sender_amount"] == "381.00000000" == done["amount"]
    sent = D(done["sender_amount"])
    spent = sent + (sent / 100).quantize(D("0.00000001"), ROUND_HALF_UP)  # 1% fee on top
    # ... and the chain's mining fee (0.00007402 BTC), paid in EUR at the withdrawal's rate.
    spent += (D("0.00007402") * sent / D(done["receiver_amount"])).quantize(
        D("0.00000001"), ROUND_CEILING)
    assert api.balance("EUR") == D(10000) - spent
    assert api.balance("BTC") == D(1)
    advance(app, 10)
    settle(app)
    [callback] = receiver.bodies()
    assert callback["type"] == "withdrawal_exchange"
    assert callback["crypto_address"]["currency"] == "EUR"
    assert callback["crypto_address"]["convert_to"] == "BTC"
    exchange_leg, chain_leg = callback["transactions"]
    assert exchange_leg["transaction_type"] == "exchange"
    assert exchange_leg["currency_to"] == "BTC"
    assert chain_leg["transaction_type"] == "blockchain" and chain_leg["currency"] == "BTC"
    assert callback["status"] == "confirmed"


@pytest.mark.parametrize(("payload", "errors"), [
    ({}, {"foreign_id": "The foreign id field is required.",
          "currency": "The currency field is required.",
          "address": "The address field is required.",
          "amount": "The amount field is required when amount to is not present."}),
    ({"foreign_id": "a", "currency": "BTC", "address": "x", "amount": "0.00001"},
     {"amount": "The amount must be at least 0.0001."}),
    ({"foreign_id": "a", "currency": "BTC", "address": "x", "amount": "1", "amount_to": "1"},
     {"amount": "The amount and amount to fields may not both be present."}),
    ({"foreign_id": "a", "currency": "EUR", "address": "x", "amount": "10"},
     {"convert_to": "The convert to field is required when currency is EUR."}),
    ({"foreign_id": "a", "currency": "EUR", "convert_to": "USD", "address": "x", "amount": "10"},
     {"convert_to": "The selected convert to is invalid."}),
    ({"foreign_id": "a", "currency": "BTC", "convert_to": "BTC", "address": "x", "amount": "1"},
     {"convert_to": "Exchange is unavailable for given currencies"}),
    ({"foreign_id": "a", "currency": "BTC", "address": "x", "amount": "NaN"},
     {"amount": "The amount must be a number."}),
    ({"foreign_id": "a", "currency": "BTC", "address": ["x"], "amount": "1"},
     {"address": "The address must be a string."}),
    ({"foreign_id": "a", "currency": "BTC", "address": "x", "amount": "1.5"},
     {"amount": "Not enough balance."}),
])
def test_withdrawal_validation(api: Api, payload: dict[str, object],
                               errors: dict[str, str]) -> None:
    assert api.errors("withdrawal/crypto", payload) == errors
    assert api.balance("BTC") == D(1) and api.balance("EUR") == D(10000)


def test_withdrawal_foreign_id_is_unique(api: Api) -> None:
    payload = {"foreign_id": "dup", "currency": "BTC", "address": "tb1qxyz", "amount": "0.1"}
    api.data("withdrawal/crypto", payload, 201)
    assert api.errors("withdrawal/crypto", payload) == {
        "foreign_id": "The foreign id has already been taken."}
    assert api.balance("BTC") == D("0.9") - D("0.00007402")


def test_xrp_withdrawal_keeps_the_tag(hooked: Api, app: Flask, receiver: Receiver) -> None:
    hooked.data("withdrawal/crypto", {"foreign_id": "x", "currency": "XRP", "amount": "20",
                                      "address": "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh",
                                      "tag": 123456}, 201)
    advance(app, 10)
    settle(app)
    assert receiver.bodies()[0]["crypto_address"]["tag"] == "123456"


def test_concurrent_duplicates_create_one_withdrawal(api: Api) -> None:
    """A client retrying at once (same foreign_id) never pays out twice."""
    payload = {"foreign_id": "race", "currency": "BTC", "address": "tb1qrace", "amount": "0.1"}
    results: list[int] = []

    def send() -> None:
        results.append(Api(api.base).call("withdrawal/crypto", payload).status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201] + [400] * 5
    assert api.balance("BTC") == D("0.9") - D("0.00007402")
