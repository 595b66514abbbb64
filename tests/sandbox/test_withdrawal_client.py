"""The site's processor client for withdrawals, against the embedded sandbox over real HTTP:
what a refund needs to send one and to learn its fate (coinspaid-api.md §2.6, §2.13, §3):
the answer, the refusals told apart, the lookup by our foreign_id in every state."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask
from kit import coinspaid_doc
from kit.live import LiveServer
from kit.site import MERCHANT_KEY, MERCHANT_SECRET

from checkout import demo, merchants, money
from checkout.models import Merchant
from checkout.processor import (
    BadResponse,
    ProcessorClient,
    ProcessorError,
    ValidationError,
    client_for,
    is_foreign_id_taken,
    parse_withdrawal,
)
from checkout.wire import jsontext

from .conftest import advance, settle

D = Decimal
BTC_TO = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
XRP_TO = "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh"


@pytest.fixture
def processor(live_server: LiveServer, merchant: Merchant) -> ProcessorClient:
    """Merchant 11's client, built the way the site builds it."""
    with live_server.app.app_context():
        return client_for(merchant)


class Recording(requests.Session):
    """Keeps each body the client sends (the request itself goes out unchanged)."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[Any] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        assert isinstance(request.body, bytes)
        self.bodies.append(jsontext.loads(request.body))
        return super().send(request, **kwargs)


@pytest.fixture
def recording(processor: ProcessorClient) -> Iterator[tuple[ProcessorClient, Recording]]:
    session = Recording()
    yield ProcessorClient(processor.base_url, MERCHANT_KEY, MERCHANT_SECRET, session=session,
                          retry_delays=()), session
    session.close()


def set_limit(live_server: LiveServer, currency: str, limit: str | None) -> None:
    answer = requests.post(f"{live_server.url}/sandbox/simulate/withdrawal-limit",
                           json={"client_id": 11, "currency": currency, "limit": limit},
                           timeout=30)
    assert answer.status_code == 200, answer.text


def decide(live_server: LiveServer, foreign_id: str, decision: str) -> None:
    answer = requests.post(f"{live_server.url}/sandbox/simulate/withdrawal",
                           json={"client_id": 11, "foreign_id": foreign_id,
                                 "decision": decision}, timeout=30)
    assert answer.status_code == 200, answer.text


def test_a_withdrawal_held_by_limits_is_answered_processing_then_found_pending_then_confirmed(
        processor: ProcessorClient, live_server: LiveServer, app: Flask) -> None:
    set_limit(live_server, "BTC", "0.001")
    sent = processor.withdrawal_crypto(foreign_id="rf-1", currency="BTC", address=BTC_TO,
                                       amount=D("0.002"))
    assert (sent.foreign_id, sent.type, sent.status, sent.amount) == (
        "rf-1", "withdrawal", "processing", D("0.002"))
    held = processor.withdrawal_info("rf-1")
    assert held is not None
    assert (held.id, held.status, held.final, held.txid, held.error) == (
        sent.id, "pending", False, None, None)
    assert (held.currency, held.amount, held.address, held.tag) == ("BTC", D("0.002"), BTC_TO,
                                                                    None)
    assert (held.amount_sent, held.amount_received) == (D("0.002"), D("0.002"))
    decide(live_server, "rf-1", "approve")
    on_its_way = processor.withdrawal_info("rf-1")
    assert on_its_way is not None and on_its_way.status == "not_confirmed"
    advance(app, 10)
    settle(app)
    done = processor.withdrawal_info("rf-1")
    assert done is not None
    assert (done.status, done.final, done.error) == ("confirmed", True, None)
    assert done.txid and done.confirmations >= 1


def test_a_cancelled_withdrawal_is_found_with_its_error_and_no_amounts_sent(
        processor: ProcessorClient, live_server: LiveServer, app: Flask) -> None:
    before = {b.currency: b.balance for b in processor.accounts_list()}["BTC"]
    processor.withdrawal_crypto(foreign_id="rf-bad", currency="BTC", address="not-an-address",
                                amount=D("0.002"))
    advance(app, 10)
    settle(app)
    gone = processor.withdrawal_info("rf-bad")
    assert gone is not None
    assert (gone.status, gone.final, gone.txid) == ("cancelled", True, None)
    assert gone.error == "Invalid params: invalid Bitcoin address."
    assert (gone.currency_sent, gone.amount_sent, gone.amount_received) == (None, None, None)
    assert gone.amount == D("0.002")  # what was to go, from the leg
    assert {b.currency: b.balance for b in processor.accounts_list()}["BTC"] == before


def test_a_conversion_is_read_as_a_withdrawal_exchange(processor: ProcessorClient) -> None:
    sent = processor.withdrawal_crypto(foreign_id="rf-x", currency="EUR", convert_to="BTC",
                                       address=BTC_TO, amount_to=D("0.005"))
    assert (sent.type, sent.status, sent.receiver_currency) == (
        "withdrawal_exchange", "processing", "BTC")
    found = processor.withdrawal_info("rf-x")
    assert found is not None
    assert (found.type, found.currency, found.amount) == ("withdrawal_exchange", "BTC",
                                                          D("0.005"))
    assert (found.currency_sent, found.currency_received) == ("EUR", "BTC")


def test_an_unknown_foreign_id_is_none(processor: ProcessorClient) -> None:
    assert processor.withdrawal_info("rf-never-sent") is None


def test_a_repeated_foreign_id_is_told_apart_from_other_refusals(
        processor: ProcessorClient) -> None:
    processor.withdrawal_crypto(foreign_id="rf-2", currency="BTC", address=BTC_TO,
                                amount=D("0.002"))
    balances = processor.accounts_list()
    with pytest.raises(ValidationError) as taken:
        processor.withdrawal_crypto(foreign_id="rf-2", currency="BTC", address=BTC_TO,
                                    amount=D("0.002"))
    assert is_foreign_id_taken(taken.value)
    assert taken.value.errors == {"foreign_id": "The foreign id has already been taken."}
    assert processor.accounts_list() == balances
    with pytest.raises(ValidationError) as poor:
        processor.withdrawal_crypto(foreign_id="rf-3", currency="BTC", address=BTC_TO,
                                    amount=D("5"))
    assert not is_foreign_id_taken(poor.value)
    assert poor.value.status == 400 and poor.value.errors == {"amount": "Not enough balance."}
    with pytest.raises(ValidationError) as missing:
        processor.withdrawal_crypto(foreign_id="f" * 300, currency="BTC", address=BTC_TO,
                                    amount=D("0.002"))
    assert "foreign_id" in missing.value.errors and not is_foreign_id_taken(missing.value)
    assert not is_foreign_id_taken(ProcessorError("taken"))


@pytest.mark.parametrize(("tag", "sent"), [(None, None), ("", None), ("123456", "123456")])
def test_a_tag_is_sent_only_when_given(recording: tuple[ProcessorClient, Recording],
                                       tag: str | None, sent: str | None) -> None:
    client, session = recording
    client.withdrawal_crypto(foreign_id="rf-t", currency="XRP", address=XRP_TO,
                             amount=D("20"), tag=tag)
    [body] = session.bodies
    assert body.get("tag") == sent and ("tag" in body) == (sent is not None)
    found = client.withdrawal_info("rf-t")
    assert found is not None and found.tag == sent


def test_the_documented_withdrawal_callbacks_parse() -> None:
    confirmed = parse_withdrawal(money.loads(coinspaid_doc.WITHDRAWAL_CALLBACK.encode()))
    assert (confirmed.status, confirmed.final, confirmed.error) == ("confirmed", True, None)
    assert confirmed.txid and confirmed.confirmations == 3
    assert (confirmed.currency_sent, confirmed.amount_sent) == ("BTC", D("0.02"))
    cancelled = parse_withdrawal(money.loads(
        coinspaid_doc.WITHDRAWAL_CANCELLED_CALLBACK.encode()))
    assert (cancelled.status, cancelled.txid, cancelled.currency_sent) == (
        "cancelled", None, None)
    assert cancelled.error == "Invalid params: expected a hex-encoded hash with 0x prefix."
    assert (cancelled.currency, cancelled.amount, cancelled.address) == ("ETH", D(1), "12345")


@pytest.mark.parametrize("body", [
    {"id": 1, "foreign_id": "a", "type": "deposit", "status": "confirmed", "transactions": []},
    {"id": 1, "foreign_id": "a", "type": "withdrawal", "status": "confirmed",
     "transactions": []},
    {"id": 1, "foreign_id": "a", "type": "withdrawal", "status": "confirmed",
     "transactions": [{"type": "withdrawal", "currency": "BTC", "amount": "x",
                       "confirmations": "0"}]},
    [],
], ids=["a deposit", "no leg", "amount not a number", "not an object"])
def test_what_is_no_withdrawal_is_a_bad_response(body: Any) -> None:
    with pytest.raises(BadResponse):
        parse_withdrawal(body)


def test_the_demo_merchant_can_pay_refunds_from_a_fresh_start(
        live_server: LiveServer, app: Flask) -> None:
    """`make run`'s demo merchant holds every coin in its sandbox account from the first run,
    so a refund can be sent before any customer has paid."""
    ran = app.test_cli_runner().invoke(args=["demo", "--base-url", live_server.url])
    assert ran.exit_code == 0, ran.output
    with app.app_context():
        merchant = merchants.by_client_id(demo.DEMO_CLIENT_ID)
        assert merchant is not None
        client = client_for(merchant)
    held = {b.currency: b.balance for b in client.accounts_list() if b.type == "crypto"}
    assert held and all(amount > 0 for amount in held.values()), held
    client.withdrawal_crypto(foreign_id="rf-demo", currency="BTC", address=BTC_TO,
                             amount=D("0.001"))
    advance(app, 10)
    settle(app)
    found = client.withdrawal_info("rf-demo")
    assert found is not None and found.status == "confirmed"
