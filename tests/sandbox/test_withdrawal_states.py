"""Every state a CoinsPaid withdrawal reaches (coinspaid-api.md §2.6, §3, §5), in the sandbox:
held `pending` by the account's withdrawal limits until a person approves (then `confirmed`,
with its txid) or cancels it (`cancelled` with the error, the money back); cancelled with the
chain's error for an address the chain refuses, in every currency; found again by foreign_id.
Real HTTP, real signatures, every callback body checked against the processor's types."""

from __future__ import annotations

import re
import threading
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskCliRunner
from kit.wire_types import problems

from checkout.sandbox import accounts, addresses, currencies
from checkout.wire import jsontext, signing

from .conftest import CLIENT_ID, SECRET, Api, Receiver, advance, settle

D = Decimal
BTC_TO = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
AMOUNT_8 = r"[0-9]+\.[0-9]{8}"


def control(api: Api, path: str, body: dict[str, Any]) -> requests.Response:
    return api.http.post(f"{api.base}/sandbox/simulate/{path}", data=jsontext.dumps(body),
                         headers={"Content-Type": "application/json"}, timeout=30)


def set_limit(api: Api, currency: str, limit: str | None) -> None:
    answer = control(api, "withdrawal-limit", {"client_id": CLIENT_ID, "currency": currency,
                                               "limit": limit})
    assert answer.status_code == 200, answer.text


def decide(api: Api, decision: str, **name: Any) -> Any:
    answer = control(api, "withdrawal", {"decision": decision, **name})
    assert answer.status_code == 200, answer.text
    return answer.json()


def withdraw(api: Api, foreign_id: str, amount: str = "0.5", currency: str = "BTC",
             address: str = BTC_TO, **extra: Any) -> Any:
    return api.data("withdrawal/crypto", {"foreign_id": foreign_id, "currency": currency,
                                          "amount": amount, "address": address, **extra}, 201)


def info(api: Api, foreign_id: str) -> Any:
    response = api.call("transactions/info", {"foreign_id": foreign_id}, method="GET")
    assert response.status_code == 200, response.text
    return jsontext.loads(response.content)


def delivered(receiver: Receiver) -> list[Any]:
    """Every callback received, each checked as the processor's: signed with the account's
    secret over the exact body, and of the processor's JSON types (a withdrawal_exchange has
    no documented example to take them from)."""
    for call in receiver.calls:
        assert signing.verify(call.body, SECRET, call.headers["X-Processing-Signature"])
        if call.json["type"] == "withdrawal":
            assert problems(call.body) == [], call.body
    return receiver.bodies()


def assert_amounts_are_8_decimal_text(body: dict[str, Any]) -> None:
    for side in ("currency_sent", "currency_received"):
        if side in body:
            assert re.fullmatch(AMOUNT_8, body[side]["amount"]), body
    for leg in body["transactions"]:
        assert re.fullmatch(AMOUNT_8, leg["amount"]), leg
        assert isinstance(leg["confirmations"], str) and leg["confirmations"].isdigit()


# --- limits: pending, then approved or cancelled --------------------------------------

def test_a_withdrawal_above_the_limit_is_pending_until_approved_then_confirms(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    set_limit(hooked, "BTC", "0.1")
    answer = withdraw(hooked, "big", "0.5")
    assert answer["status"] == "processing"  # the answer is the usual one
    after_debit = hooked.balance("BTC")
    assert after_debit == D(1) - D("0.5") - D("0.00007402")
    settle(app)
    [held] = delivered(receiver)
    assert (held["id"], held["foreign_id"], held["type"], held["status"]) == (
        answer["id"], "big", "withdrawal", "pending")
    assert held["currency_sent"] == {"currency": "BTC", "amount": "0.50000000"}
    assert held["currency_received"] == {"currency": "BTC", "amount": "0.50000000"}
    [leg] = held["transactions"]
    assert (leg["txid"], leg["confirmations"]) == (None, "0")
    assert held["error"] == "" and held["fees"] == []
    assert_amounts_are_8_decimal_text(held)
    assert info(hooked, "big")["status"] == "pending"

    advance(app, 3600)  # no one decided: it waits, however long
    settle(app)
    assert len(receiver.calls) == 1 and info(hooked, "big")["status"] == "pending"

    approved = decide(hooked, "approve", foreign_id="big", client_id=CLIENT_ID)
    assert (approved["id"], approved["status"]) == (answer["id"], "processing")
    assert info(hooked, "big")["status"] == "not_confirmed"  # on its way to the chain
    settle(app)
    assert len(receiver.calls) == 1  # approval itself sends nothing; the chain does
    advance(app, 10)
    settle(app)
    confirmed = delivered(receiver)[1]
    assert (confirmed["id"], confirmed["status"], confirmed["error"]) == (
        answer["id"], "confirmed", "")
    [leg] = confirmed["transactions"]
    assert leg["txid"] and leg["confirmations"] == "3"
    assert {f["type"] for f in confirmed["fees"]} == {"mining", "fee_crypto_withdrawal"}
    assert_amounts_are_8_decimal_text(confirmed)
    assert hooked.balance("BTC") == after_debit  # debited once, when it was asked for
    assert info(hooked, "big")["transactions"][0]["txid"] == leg["txid"]


def test_a_pending_withdrawal_cancelled_carries_the_error_and_returns_the_money(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    set_limit(hooked, "ETH", "0")  # every ETH withdrawal waits
    withdraw(hooked, "no", "1", currency="ETH", address="0x" + "ab" * 20)
    assert hooked.balance("ETH") < D(9)
    settle(app)
    decided = decide(hooked, "cancel", foreign_id="no", error="Address is on a sanctions list.")
    assert decided["status"] == "cancelled"
    settle(app)
    held, cancelled = delivered(receiver)
    assert [held["status"], cancelled["status"]] == ["pending", "cancelled"]
    assert cancelled["error"] == "Address is on a sanctions list."
    assert "currency_sent" not in cancelled and "currency_received" not in cancelled
    assert cancelled["transactions"][0]["txid"] is None and cancelled["fees"] == []
    assert_amounts_are_8_decimal_text(cancelled)
    assert hooked.balance("ETH") == D(10)
    assert info(hooked, "no")["status"] == "cancelled"
    advance(app, 60)
    settle(app)
    assert len(receiver.calls) == 2  # nothing more: it is final


def test_cancelled_without_a_reason_says_it_was_declined(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    set_limit(hooked, "BTC", "0.1")
    answer = withdraw(hooked, "plain-no")
    decide(hooked, "cancel", id=answer["id"])  # by the processor's id, the account implied
    settle(app)
    assert delivered(receiver)[-1]["error"] == "Withdrawal was declined in the back office."


@pytest.mark.parametrize(("limit", "waits"), [("0.5", False), ("0.49999999", True),
                                             (None, False)])
def test_only_what_is_above_the_limit_waits(hooked: Api, app: Flask, receiver: Receiver,
                                            limit: str | None, waits: bool) -> None:
    set_limit(hooked, "BTC", "0.00000001")
    set_limit(hooked, "BTC", limit)  # the last setting counts
    withdraw(hooked, "w", "0.5")
    settle(app)
    assert [b["status"] for b in delivered(receiver)] == (["pending"] if waits else [])
    advance(app, 10)
    settle(app)
    assert [b["status"] for b in delivered(receiver)] == (
        ["pending"] if waits else ["confirmed"])


def test_the_limit_is_in_the_balance_currency_of_a_conversion(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    set_limit(hooked, "EUR", "100")
    hooked.data("withdrawal/crypto", {"foreign_id": "wx", "currency": "EUR",
                                      "convert_to": "BTC", "amount": "381",
                                      "address": BTC_TO}, 201)
    settle(app)
    [held] = delivered(receiver)
    assert (held["type"], held["status"]) == ("withdrawal_exchange", "pending")
    assert held["crypto_address"]["convert_to"] == "BTC"
    decide(hooked, "approve", foreign_id="wx")
    advance(app, 10)
    settle(app)
    assert [b["status"] for b in delivered(receiver)] == ["pending", "confirmed"]


def test_limits_are_per_account(hooked: Api, app: Flask, receiver: Receiver) -> None:
    accounts.open_account(app, 12, "key-12", "secret-12")
    accounts.set_callback_url(app, 12, receiver.url)
    set_limit(hooked, "BTC", "0")
    other = Api(hooked.base, key="key-12", secret="secret-12")
    try:
        other.data("withdrawal/crypto", {"foreign_id": "free", "currency": "BTC",
                                         "amount": "0.5", "address": BTC_TO}, 201)
    finally:
        other.http.close()
    advance(app, 10)
    settle(app)
    assert [b["status"] for b in receiver.bodies()] == ["confirmed"]


def test_a_repeated_foreign_id_of_a_pending_withdrawal_is_refused_and_debits_nothing(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    set_limit(hooked, "BTC", "0.1")
    withdraw(hooked, "again")
    before = hooked.balance("BTC")
    assert hooked.errors("withdrawal/crypto", {"foreign_id": "again", "currency": "BTC",
                                               "amount": "0.5", "address": BTC_TO}) == {
        "foreign_id": "The foreign id has already been taken."}
    assert hooked.balance("BTC") == before
    settle(app)
    assert [b["status"] for b in delivered(receiver)] == ["pending"]


# --- what the chain refuses -----------------------------------------------------------

REFUSED = [
    ("BTC", "tb1q-invalid", "Invalid params: invalid Bitcoin address."),
    ("BTC", "tb1q w508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "Invalid params: invalid Bitcoin "
                                                         "address."),
    ("LTC", "tltc1qinvalid", "Invalid params: invalid Litecoin address."),
    ("BCH", "bchtest:qINVALID", "Invalid params: invalid Bitcoin Cash address."),
    ("DOGE", "nInvalidAddress", "Invalid params: invalid Dogecoin address."),
    ("XRP", "rInvalid", "Invalid params: invalid XRP Ledger address."),
    ("TRX", "T<script>", "Invalid params: invalid TRON address."),
    ("USDTT", "TInvalid", "Invalid params: invalid TRON (TRC-20) address."),
    ("ETH", "12345", "Invalid params: expected a hex-encoded hash with 0x prefix."),
    ("USDTE", "0x" + "ab" * 19, "Invalid params: expected a hex-encoded hash with 0x prefix."),
]


@pytest.mark.parametrize(("currency", "address", "error"), REFUSED,
                         ids=[f"{c}-{a}" for c, a, _ in REFUSED])
def test_an_address_the_chain_refuses_is_cancelled_with_its_error_and_refunded(
        hooked: Api, app: Flask, receiver: Receiver, currency: str, address: str,
        error: str) -> None:
    amount = str(currencies.BY_CODE[currency].seed_balance / 10)
    before = hooked.balance(currency)
    withdraw(hooked, "bad", amount, currency=currency, address=address,
             **({"tag": "12345"} if currency == "XRP" else {}))
    assert hooked.balance(currency) < before
    advance(app, 10)
    settle(app)
    [cancelled] = delivered(receiver)
    assert (cancelled["status"], cancelled["error"]) == ("cancelled", error)
    assert "currency_sent" not in cancelled and "currency_received" not in cancelled
    assert cancelled["crypto_address"]["address"] == address
    assert hooked.balance(currency) == before
    assert info(hooked, "bad")["error"] == error


@pytest.mark.parametrize("currency", ["BTC", "LTC", "BCH", "DOGE", "ETH", "TRX", "XRP"])
def test_the_processors_own_addresses_pass_the_chain_check(currency: str) -> None:
    chain = currencies.BY_CODE[currency]
    for number in (1, 2, 99):
        assert addresses.refusal(chain, addresses.derive(chain, number)[0]) is None


def test_an_approved_withdrawal_to_a_refused_address_is_cancelled_by_the_chain(
        hooked: Api, app: Flask, receiver: Receiver) -> None:
    set_limit(hooked, "BTC", "0")
    withdraw(hooked, "late-bad", address="invalid-address")
    decide(hooked, "approve", foreign_id="late-bad")
    advance(app, 10)
    settle(app)
    assert [(b["status"], b["error"]) for b in delivered(receiver)] == [
        ("pending", ""), ("cancelled", "Invalid params: invalid Bitcoin address.")]
    assert hooked.balance("BTC") == D(1)


# --- the controls' refusals -----------------------------------------------------------

def test_only_a_pending_withdrawal_can_be_decided(hooked: Api, app: Flask) -> None:
    withdraw(hooked, "quick")
    answer = control(hooked, "withdrawal", {"foreign_id": "quick", "decision": "approve"})
    assert (answer.status_code, answer.json()) == (
        409, {"errors": {"decision": "The withdrawal is not pending: it is processing."}})
    set_limit(hooked, "BTC", "0")
    withdraw(hooked, "slow", "0.2")
    decide(hooked, "cancel", foreign_id="slow")
    again = control(hooked, "withdrawal", {"foreign_id": "slow", "decision": "approve"})
    assert again.status_code == 409
    assert hooked.balance("BTC") == D(1) - D("0.5") - D("0.00007402")  # "quick" only


def test_concurrent_decisions_take_effect_once(hooked: Api, app: Flask,
                                              receiver: Receiver) -> None:
    set_limit(hooked, "BTC", "0")
    withdraw(hooked, "race")
    statuses: list[int] = []

    def cancel() -> None:
        with requests.Session() as http:
            statuses.append(http.post(f"{hooked.base}/sandbox/simulate/withdrawal",
                                      json={"foreign_id": "race", "decision": "cancel"},
                                      timeout=30).status_code)

    threads = [threading.Thread(target=cancel) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [409] * 5
    assert hooked.balance("BTC") == D(1)  # given back once
    settle(app)
    assert [b["status"] for b in delivered(receiver)] == ["pending", "cancelled"]


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"foreign_id": "nope", "decision": "approve"}, 404, "foreign_id"),
    ({"id": 987654, "decision": "approve"}, 404, "id"),
    ({"foreign_id": "x", "decision": "maybe"}, 400, "decision"),
    ({"decision": "approve"}, 400, "id"),
    ({"id": 1, "foreign_id": "x", "decision": "approve"}, 400, "id"),
    ({"id": "1", "decision": "approve"}, 400, "id"),
    ({"foreign_id": "x", "decision": "approve", "error": "why"}, 400, "error"),
    ({"foreign_id": "x", "decision": "cancel", "error": 5}, 400, "error"),
    ({"foreign_id": "x", "decision": "cancel", "client_id": 999}, 404, "foreign_id"),
], ids=["unknown foreign id", "unknown id", "decision", "no name", "two names", "id text",
        "approval with an error", "error not text", "other account"])
def test_a_bad_decision_is_refused_and_changes_nothing(
        hooked: Api, app: Flask, receiver: Receiver, body: dict[str, Any], status: int,
        field: str) -> None:
    set_limit(hooked, "BTC", "0")
    withdraw(hooked, "x")
    answer = control(hooked, "withdrawal", body)
    assert answer.status_code == status, answer.text
    assert field in answer.json()["errors"]
    settle(app)
    assert info(hooked, "x")["status"] == "pending"
    assert [b["status"] for b in delivered(receiver)] == ["pending"]


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"client_id": CLIENT_ID, "currency": "NOPE", "limit": "1"}, 400, "currency"),
    ({"client_id": CLIENT_ID, "currency": "BTC"}, 400, "limit"),
    ({"client_id": CLIENT_ID, "currency": "BTC", "limit": "-1"}, 400, "limit"),
    ({"client_id": CLIENT_ID, "currency": "BTC", "limit": "1e3"}, 400, "limit"),
    ({"client_id": CLIENT_ID, "currency": "BTC", "limit": "0.000000001"}, 400, "limit"),
    ({"client_id": 999, "currency": "BTC", "limit": "1"}, 404, "client_id"),
    ({"client_id": True, "currency": "BTC", "limit": "1"}, 400, "client_id"),
])
def test_a_bad_limit_is_refused_and_sets_nothing(hooked: Api, app: Flask, receiver: Receiver,
                                                body: dict[str, Any], status: int,
                                                field: str) -> None:
    answer = control(hooked, "withdrawal-limit", body)
    assert answer.status_code == status, answer.text
    assert field in answer.json()["errors"]
    withdraw(hooked, "after")
    settle(app)
    assert delivered(receiver) == []  # no limit came to hold it


def test_the_account_may_be_left_out_only_when_there_is_one(hooked: Api, app: Flask) -> None:
    alone = control(hooked, "withdrawal-limit", {"currency": "BTC", "limit": "0.25"})
    assert alone.json() == {"client_id": CLIENT_ID, "currency": "BTC", "limit": "0.25000000"}
    accounts.open_account(app, 12, "key-12", "secret-12")
    several = control(hooked, "withdrawal-limit", {"currency": "BTC", "limit": None})
    assert several.status_code == 400 and "client_id" in several.json()["errors"]
    off = control(hooked, "withdrawal-limit", {"client_id": CLIENT_ID, "currency": "BTC",
                                               "limit": None})
    assert off.json() == {"client_id": CLIENT_ID, "currency": "BTC", "limit": None}


# --- the operator's commands ----------------------------------------------------------

def test_the_commands_set_the_limit_list_and_decide(
        hooked: Api, app: Flask, receiver: Receiver, runner: FlaskCliRunner) -> None:
    done = runner.invoke(args=["sandbox", "withdrawal", "limit", "btc", "0.1"])
    assert done.exit_code == 0, done.output
    assert f"Account {CLIENT_ID}" in done.output and "0.10000000" in done.output
    withdraw(hooked, "cli-yes")
    withdraw(hooked, "cli-no", "0.2")
    listed = runner.invoke(args=["sandbox", "withdrawal", "pending"])
    assert "'cli-yes'" in listed.output and "'cli-no'" in listed.output
    yes = runner.invoke(args=["sandbox", "withdrawal", "approve", "cli-yes"])
    assert yes.exit_code == 0 and "processing" in yes.output
    no = runner.invoke(args=["sandbox", "withdrawal", "cancel", "cli-no", "--client-id",
                             str(CLIENT_ID), "--error", "Too much today."])
    assert no.exit_code == 0 and "cancelled (Too much today.)" in no.output
    twice = runner.invoke(args=["sandbox", "withdrawal", "cancel", "cli-no"])
    assert twice.exit_code != 0 and "not pending: it is cancelled" in twice.output
    unknown = runner.invoke(args=["sandbox", "withdrawal", "approve", "nope"])
    assert unknown.exit_code != 0 and "No withdrawal" in unknown.output
    off = runner.invoke(args=["sandbox", "withdrawal", "limit", "BTC", "off"])
    assert off.exit_code == 0 and "off" in off.output
    bad = runner.invoke(args=["sandbox", "withdrawal", "limit", "BTC", "lots"])
    assert bad.exit_code != 0
    advance(app, 10)
    settle(app)
    assert sorted((b["foreign_id"], b["status"]) for b in delivered(receiver)) == [
        ("cli-no", "cancelled"), ("cli-no", "pending"), ("cli-yes", "confirmed"),
        ("cli-yes", "pending")]
    assert "No withdrawal is waiting" in runner.invoke(
        args=["sandbox", "withdrawal", "pending"]).output
