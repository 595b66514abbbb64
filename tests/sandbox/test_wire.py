"""What real CoinsPaid clients rely on in the processor's bytes (issue 11).

PHP plugins re-encode a callback before checking its signature; Go and Rust clients parse
`confirmations` as a string and send `null` for calls without parameters; fees carry the
processor's own names and are charged where the processor charges them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from kit import php_shop
from kit.live import LiveServer

from checkout.sandbox import accounts
from checkout.wire import phpjson

from .conftest import KEY, SECRET, Api, Receiver, advance, settle

D = Decimal
HOSTILE_IDS = ["wc/123", "kunde-ü", 'say "hi"', "back\\slash", "party 🎉", "</script>",
               "a/b/../c", "\u2028line"]
BTC_TO = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"


def accepted_by_the_php_plugin(receiver: Receiver) -> list[dict[str, Any]]:
    """Every callback received, checked as the WooCommerce plugin checks it."""
    for call in receiver.calls:
        assert php_shop.reencode(call.body) == call.body, call.body
        assert php_shop.plugin_accepts(call.body, call.headers["X-Processing-Signature"],
                                       SECRET)
    return receiver.bodies()


def deposit_seen_then_confirmed(api: Api, app: Flask, foreign_id: str, **extra: str) -> None:
    """A payment to a fresh address, reported in the mempool and then confirmed."""
    address = api.data("addresses/take", {"currency": "BTC", "foreign_id": foreign_id,
                                          **extra}, 201)
    api.simulate(address["address"], "0.01")
    settle(app)
    advance(app, 10)
    settle(app)


@pytest.mark.parametrize("foreign_id", HOSTILE_IDS)
def test_deposit_callbacks_are_php_json_encode_output(
        hooked: Api, app: Flask, receiver: Receiver, foreign_id: str) -> None:
    deposit_seen_then_confirmed(hooked, app, foreign_id)
    bodies = accepted_by_the_php_plugin(receiver)
    assert [b["status"] for b in bodies] == ["not_confirmed", "confirmed"]
    assert {b["crypto_address"]["foreign_id"] for b in bodies} == {foreign_id}


def test_withdrawal_exchange_and_invoice_callbacks_are_php_json_encode_output(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    hooked.data("withdrawal/crypto", {"foreign_id": "w/ü", "currency": "BTC",
                                      "amount": "0.02", "address": BTC_TO}, 201)
    hooked.data("exchange/now", {"sender_currency": "BTC", "receiver_currency": "EUR",
                                 "sender_amount": "0.01", "foreign_id": "x/\"1\""}, 201)
    invoice = hooked.data("invoices/create", {
        "timer": True, "title": "Bestellung Nr. 5 – Grüße", "currency": "EUR", "amount": "50",
        "foreign_id": "inv/🎉", "url_success": "https://shop.example/ok",
        "url_failed": "https://shop.example/failed", "sender_currency": "BTC"})
    hooked.simulate(invoice["address"], invoice["sender_amount"], "confirmed")
    advance(app, 10)
    settle(app)
    bodies = accepted_by_the_php_plugin(receiver)
    assert {b["type"] for b in bodies} == {"withdrawal", "exchange", "invoice"}
    assert {b["foreign_id"] for b in bodies} == {"w/ü", 'x/"1"', "inv/🎉"}


def test_api_answers_are_php_json_encode_output(hooked: Api) -> None:
    response = hooked.call("addresses/take", {"currency": "BTC", "foreign_id": "wc/9"})
    assert response.status_code == 201
    assert response.content == phpjson.dumps(response.json())
    assert b'"wc\\/9"' in response.content
    info = hooked.call("transactions/info", {"foreign_id": "nope/ü"}, method="GET")
    assert info.status_code == 404 and info.content == phpjson.dumps(info.json())


@pytest.mark.parametrize("raw", [b"null", b" null\n", b"[]"])
def test_null_or_an_empty_php_array_means_no_parameters(api: Api, raw: bytes) -> None:
    """A Go client's json.Marshal(nil) is `null`; PHP's json_encode([]) is `[]`."""
    response = api.call("accounts/list", raw=raw)
    assert response.status_code == 200, response.text
    assert {row["currency"] for row in response.json()["data"]} >= {"BTC", "EUR"}
    # A call that needs parameters says which, instead of "bad content format".
    response = api.call("addresses/take", raw=raw)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"foreign_id", "currency"}


@pytest.mark.parametrize("raw", [b"true", b"0", b'"null"', b"nul", b""])
def test_other_scalars_are_still_bad_content(api: Api, raw: bytes) -> None:
    response = api.call("accounts/list", raw=raw)
    assert response.status_code == 400
    assert response.json() == {"error": "Bad content format", "code": "bad_content_format"}


def test_confirmations_are_strings_in_callbacks_and_transactions_info(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    deposit_seen_then_confirmed(hooked, app, "conf")
    hooked.data("withdrawal/crypto", {"foreign_id": "wc", "currency": "BTC", "amount": "0.02",
                                      "address": BTC_TO}, 201)
    advance(app, 10)
    settle(app)
    legs = [leg for body in receiver.bodies() for leg in body["transactions"]]
    assert [leg["confirmations"] for leg in legs] == ["0", "3", "3"]
    info = hooked.call("transactions/info", {"foreign_id": "conf"}, method="GET").json()
    assert info["transactions"][0]["confirmations"] == "3"


def test_deposit_fees_are_named_as_the_processor_names_them_and_come_with_confirmation(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    deposit_seen_then_confirmed(hooked, app, "f")
    seen, confirmed = receiver.bodies()
    assert seen["fees"] == []
    assert seen["currency_received"] == {"currency": "BTC", "amount": "0.01000000",
                                         "amount_minus_fee": "0.01000000"}
    assert confirmed["fees"] == [{"type": "fee_crypto_deposit", "currency": "BTC",
                                  "amount": "0.00003000"}]
    assert confirmed["currency_received"]["amount_minus_fee"] == "0.00997000"


def test_a_converted_deposit_pays_fee_crypto_deposit_to_fiat_in_the_fiat(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    deposit_seen_then_confirmed(hooked, app, "f", convert_to="EUR")
    seen, confirmed = receiver.bodies()
    assert seen["fees"] == []
    assert (seen["currency_received"]["amount_minus_fee"]
            == seen["currency_received"]["amount"])
    [fee] = confirmed["fees"]
    assert (fee["type"], fee["currency"]) == ("fee_crypto_deposit_to_fiat", "EUR")


@pytest.mark.parametrize("convert_to", [None, "BTC"])
def test_withdrawal_fees_are_fee_crypto_withdrawal_and_mining(
        hooked: Api, app: Flask, receiver: Receiver, convert_to: str | None) -> None:
    request: dict[str, Any] = {"foreign_id": "w", "currency": "BTC", "amount": "0.02",
                               "address": BTC_TO}
    if convert_to:
        request.update(currency="EUR", convert_to=convert_to, amount="381")
    hooked.data("withdrawal/crypto", request, 201)
    advance(app, 10)
    settle(app)
    [body] = receiver.bodies()
    assert {f["type"] for f in body["fees"]} == {"fee_crypto_withdrawal", "mining"}


def test_an_exchange_fee_is_charged_in_the_receiver_currency(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    pair = {"sender_currency": "BTC", "receiver_currency": "USD"}
    quote = hooked.data("exchange/calculate", {**pair, "sender_amount": "0.01"})
    assert quote["fee_currency"] == "USD"
    assert D(quote["fee_amount"]) == (D(quote["receiver_amount"]) / 100).quantize(D("1e-8"))
    before = hooked.balance("USD")
    done = hooked.data("exchange/fixed", {**pair, "sender_amount": "0.01", "foreign_id": "e1",
                                          "price": quote["price"]}, 201)
    assert (done["fee_currency"], done["fee_amount"]) == ("USD", quote["fee_amount"])
    assert hooked.balance("BTC") == D("0.99")  # exactly what was sold
    advance(app, 10)
    settle(app)
    [body] = receiver.bodies()
    assert body["fees"] == [{"type": "exchange", "currency": "USD", "amount": done["fee_amount"]}]
    assert hooked.balance("USD") == before + D(done["receiver_amount"]) - D(done["fee_amount"])


def test_a_withdrawal_to_another_processor_address_is_internal_on_both_sides(
        hooked: Api, app: Flask, receiver: Receiver, live_server: LiveServer) -> None:
    """Between the processor's own addresses nothing goes on chain: transaction_type
    `internal`, no mining fee, fee_crypto_withdrawal_internal and fee_crypto_deposit_internal."""
    accounts.open_account(app, 12, "key-12", "secret-12")
    accounts.set_callback_url(app, 12, receiver.url)
    other = Api(live_server.url, key="key-12", secret="secret-12")
    address = other.data("addresses/take", {"currency": "BTC", "foreign_id": "in/1"}, 201)
    hooked.data("withdrawal/crypto", {"foreign_id": "to-12", "currency": "BTC",
                                      "amount": "0.02", "address": address["address"]}, 201)
    advance(app, 10)
    settle(app)
    by_key = {call.headers["X-Processing-Key"]: call for call in receiver.calls}
    assert len(by_key) == len(receiver.calls) == 2
    sent, got = by_key[KEY], by_key["key-12"]
    for call, secret in ((sent, SECRET), (got, "secret-12")):
        assert php_shop.plugin_accepts(call.body, call.headers["X-Processing-Signature"],
                                       secret)
    withdrawal, deposit = sent.json, got.json
    assert (withdrawal["type"], withdrawal["status"]) == ("withdrawal", "confirmed")
    assert [leg["transaction_type"] for leg in withdrawal["transactions"]] == ["internal"]
    assert [f["type"] for f in withdrawal["fees"]] == ["fee_crypto_withdrawal_internal"]
    assert (deposit["type"], deposit["status"]) == ("deposit", "confirmed")
    assert deposit["crypto_address"]["foreign_id"] == "in/1"
    [leg] = deposit["transactions"]
    assert leg["transaction_type"] == "internal" and "riskscore" not in leg
    [fee] = deposit["fees"]
    assert fee["type"] == "fee_crypto_deposit_internal"
    assert other.balance("BTC") == D(1) + D("0.02") - D(fee["amount"])
    other.http.close()


def test_a_withdrawal_to_an_outside_address_stays_on_chain(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    hooked.data("withdrawal/crypto", {"foreign_id": "out", "currency": "BTC", "amount": "0.02",
                                      "address": BTC_TO}, 201)
    advance(app, 10)
    settle(app)
    [body] = receiver.bodies()
    assert [leg["transaction_type"] for leg in body["transactions"]] == ["blockchain"]
