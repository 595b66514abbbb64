"""Refunds, from the request to the chain: what a page owes, the one withdrawal that pays it,
and the processor's withdrawal callbacks that finish it, all through the embedded sandbox over
real HTTP with real signatures."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from kit import refund_flow as flow
from kit.callbacks import running_shop, use_shop
from kit.console import add_person
from kit.invoices import advance_sandbox, settle
from kit.live import LiveServer
from sqlalchemy import func, select

from checkout import db, refund_rules
from checkout.models import AuditEntry, Merchant, Page, Refund
from checkout.pagekinds import owed
from checkout.services import refunds


def owed_now(app: Flask, page_id: str) -> owed.Owed | None:
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None
        return owed.owed(db.session(), page)


def test_an_overpaid_page_owes_the_excess_and_promises_it_less_the_fee_reserve(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id = flow.overpaid_page(app, client, live_server)
    due = owed_now(app, page_id)
    assert due is not None
    assert (due.cause, due.currency, due.balance_currency) == ("overpaid", "BTC", "BTC")
    assert due.total == due.left == Decimal("0.00077")
    assert due.receive == Decimal("0.00077") - refund_rules.FEE_RESERVE["BTC"]


def test_an_approved_refund_is_paid_once_and_its_callback_brings_the_txid(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id = flow.overpaid_page(app, client, live_server)
    refund_id = flow.request(app, page_id)
    assert flow.row(app, refund_id).state == "requested"
    owner = add_person(app, "owner@shop.example", roles={11: "owner"})
    flow.approve(app, refund_id, owner)
    with app.app_context():
        assert refunds.send(refund_id) == refunds.SENT
        assert refunds.send(refund_id) == refunds.BUSY  # a second click sends nothing
    sent = flow.row(app, refund_id)
    assert sent.state == "sent" and sent.processor_id and sent.sent_at
    advance_sandbox(live_server.url, 3600)
    settle(app)
    done = flow.row(app, refund_id)
    assert done.state == "confirmed" and done.txid and done.finished_at
    assert done.amount_received == "0.00067"
    assert owed_now(app, page_id).left == 0  # type: ignore[union-attr]
    assert flow.withdrawals(app, done.foreign_id) == 1
    events = flow.refund_events(app)
    assert [e["status"] for e in events] == ["requested", "approved", "sent", "confirmed"]
    assert events[-1]["amount"] == "0.00077000"
    assert events[-1]["amount_received"] == "0.00067000"
    assert events[-1]["foreign_id"] == "user-7" and events[-1]["txid"] == done.txid
    with app.app_context():
        approvals = db.session().scalars(select(AuditEntry).where(
            AuditEntry.action == "refund.approve")).all()
    assert [(a.actor, a.target) for a in approvals] == [(owner.email, page_id)]


def test_a_refund_of_a_converted_payment_names_the_balance_and_the_coin_to_arrive(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id = flow.overpaid_page(app, client, live_server, link=flow.LINK)  # kept in EUR
    due = owed_now(app, page_id)
    assert due is not None and (due.currency, due.balance_currency) == ("BTC", "EUR")
    refund_id = flow.request(app, page_id)
    flow.approve(app, refund_id, add_person(app, "owner@shop.example", roles={11: "owner"}))
    with app.app_context():
        assert refunds.send(refund_id) == refunds.SENT
    advance_sandbox(live_server.url, 3600)
    settle(app)
    done = flow.row(app, refund_id)
    assert done.state == "confirmed" and done.amount_received == "0.00067"


def test_a_refund_is_refused_beyond_what_is_owed_or_below_what_the_network_carries(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id = flow.overpaid_page(app, client, live_server)
    for amount, code in ((Decimal("0.00078"), refunds.TOO_MUCH),
                         (Decimal("-1"), refunds.BAD_AMOUNT),
                         (Decimal("NaN"), refunds.BAD_AMOUNT),
                         (Decimal("0.000000001"), refunds.BAD_AMOUNT),
                         (Decimal("0.0001"), refunds.TOO_SMALL)):
        with pytest.raises(refunds.Refused) as refused:
            flow.request(app, page_id, amount)
        assert refused.value.code == code, amount
    flow.request(app, page_id, Decimal("0.00068"))
    with pytest.raises(refunds.Refused) as small:
        flow.request(app, page_id)  # 0.00009 left: the fee reserve takes all of it
    assert small.value.code == refunds.TOO_SMALL
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Refund)) == 1


@pytest.mark.parametrize("address", ["", " tb1q", "tb1q\x00x", "x" * 300, "tb1q\u202ex"])
def test_an_address_no_network_takes_is_refused_and_nothing_is_kept(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant,
        address: str) -> None:
    page_id = flow.overpaid_page(app, client, live_server)
    with pytest.raises(refunds.Refused) as refused:
        flow.request(app, page_id, address=address)
    assert refused.value.code == refunds.BAD_DESTINATION
    assert flow.refund_events(app) == []


def test_a_failed_withdrawal_gives_the_money_back_to_ask_for_again(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    """The processor cancels a withdrawal (held by its limits, then refused with an error):
    the refund fails with the processor's error, and what it held is owed again."""
    hold_every_withdrawal(live_server)
    page_id, refund_id = flow.approved_refund(app, client, live_server)
    with app.app_context():
        refunds.send(refund_id)
    settle(app)
    decide(live_server, flow.row(app, refund_id).foreign_id, "cancel",
           error="Invalid params: address is not valid.")
    settle(app)
    failed = flow.row(app, refund_id)
    assert (failed.state, failed.reason) == ("failed", "Invalid params: address is not valid.")
    assert owed_now(app, page_id).left == Decimal("0.00077")  # type: ignore[union-attr]
    assert [e["status"] for e in flow.refund_events(app)][-1] == "failed"
    assert flow.refund_events(app)[-1]["reason"] == "Invalid params: address is not valid."


def hold_every_withdrawal(live_server: LiveServer) -> None:
    """The processor's withdrawal limits, at zero: every withdrawal waits for its decision."""
    requests.post(f"{live_server.url}/sandbox/simulate/withdrawal-limit",
                  json={"client_id": 11, "currency": "BTC", "limit": "0"},
                  timeout=30).raise_for_status()


def decide(live_server: LiveServer, foreign_id: str, decision: str, **more: str) -> None:
    requests.post(f"{live_server.url}/sandbox/simulate/withdrawal",
                  json={"client_id": 11, "foreign_id": foreign_id, "decision": decision,
                        **more}, timeout=30).raise_for_status()


def test_a_withdrawal_held_by_the_processors_limits_is_pending_until_it_decides(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    hold_every_withdrawal(live_server)
    page_id, refund_id = flow.approved_refund(app, client, live_server)
    with app.app_context():
        refunds.send(refund_id)
    settle(app)
    held = flow.row(app, refund_id)
    assert held.state == "pending"
    decide(live_server, held.foreign_id, "approve")
    advance_sandbox(live_server.url, 3600)
    settle(app)
    assert flow.row(app, refund_id).state == "confirmed"
    statuses = [e["status"] for e in flow.refund_events(app)]
    assert statuses == ["requested", "approved", "sent", "pending", "confirmed"]


def test_the_shop_receives_each_refund_event_signed_with_its_secret(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    with running_shop() as shop:
        use_shop(app, shop)
        page_id, refund_id = flow.approved_refund(app, client, live_server)
        with app.app_context():
            refunds.send(refund_id)
        advance_sandbox(live_server.url, 3600)
        settle(app)
        settle(app)  # the last move's event is sent on the next round
    events = [item for item in shop.received if b'"type":"refund"' in item.body]
    assert all(shop.verifies(item) for item in events)
    bodies = [json.loads(item.body) for item in events]
    assert [b["status"] for b in bodies] == ["requested", "approved", "sent", "confirmed"]
    # The processor's types: ids and moments numbers, amounts 8-place strings, text or null.
    for body in bodies:
        assert isinstance(body["id"], int) and isinstance(body["created_at"], int)
        assert all(isinstance(body[k], str) and len(body[k].split(".")[1]) == 8
                   for k in ("amount", "amount_received"))
        assert body["tag"] is None and isinstance(body["address"], str)
    # The processor's withdrawal callbacks about our refund stay ours.
    assert not [item for item in shop.received if b'"type":"withdrawal"' in item.body]
