"""Refunds, from the request to the chain: what a page owes, the one withdrawal that pays it,
and the processor's withdrawal callbacks that finish it, all through the embedded sandbox over
real HTTP with real signatures."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.console import add_person
from kit.deposits import LINK, open_link
from kit.invoices import advance_sandbox, settle
from kit.live import LiveServer
from kit.payments import pay
from sqlalchemy import func, select

from checkout import db, refund_rules
from checkout.models import Delivery, Merchant, Page, Refund
from checkout.sandbox import store as sandbox_store
from checkout.services import refunds

PLAIN_LINK = {**LINK, "convert_to": None}
WALLET = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"  # BIP-173's testnet example


def overpaid_page(app: Flask, client: FlaskClient, live_server: LiveServer,
                  link: dict[str, object] = PLAIN_LINK, sent: str = "0.00200000") -> str:
    """A page asking 0.00123 BTC, paid 0.002 and confirmed: 0.00077 owed back."""
    page_id = open_link(client, link).rsplit("/", 1)[1]
    with app.app_context():
        address = db.session().get(Page, page_id).address  # type: ignore[union-attr]
    assert address
    pay(live_server.url, address, sent, "confirmed")
    settle(app)
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None and (page.status, page.reason) == ("confirmed", "overpaid")
    return page_id


def withdrawals(app: Flask, foreign_id: str) -> int:
    with sandbox_store.transaction(app) as s:
        return int(s.scalar(select(func.count()).select_from(sandbox_store.Operation).where(
            sandbox_store.Operation.foreign_id == foreign_id,
            sandbox_store.Operation.scope == "withdrawal")) or 0)


def refund_events(app: Flask) -> list[dict[str, object]]:
    with app.app_context():
        bodies = db.session().scalars(select(Delivery.body).order_by(Delivery.id)).all()
    events = [json.loads(body) for body in bodies]
    return [e for e in events if e.get("type") == "refund"]


def test_an_overpaid_page_owes_the_difference_less_nothing_yet(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id = overpaid_page(app, client, live_server)
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None
        due = refunds.owed(db.session(), page)
    assert due is not None
    assert (due.cause, due.currency, due.balance_currency) == ("overpaid", "BTC", "BTC")
    assert due.total == due.left == Decimal("0.00077")
    # The fee reserve is kept back: the wallet receives exactly the rest.
    assert due.receive == Decimal("0.00077") - refund_rules.FEE_RESERVE["BTC"]


def test_an_approved_refund_is_paid_once_and_its_callback_shows_the_txid(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id = overpaid_page(app, client, live_server)
    with app.app_context():
        session = db.session()
        page = session.get(Page, page_id)
        assert page is not None
        refund = refunds.request(session, page, WALLET, None)
        session.commit()
        assert refund.state == "requested"
        owner = add_person(app, "owner@shop.example", roles={11: "owner"})
        refunds.approve(session, refund.id, user_id=owner.id, actor=owner.email,
                        merchant_ids=[11])
        session.commit()
        assert refunds.send(refund.id) == refunds.SENT
        assert refunds.send(refund.id) == refunds.BUSY  # a second click sends nothing
        refund = session.get(Refund, refund.id, populate_existing=True)
        assert refund is not None and refund.state == "sent" and refund.processor_id
        foreign_id = refund.foreign_id
    advance_sandbox(live_server.url, 3600)
    settle(app)
    with app.app_context():
        done = db.session().scalars(select(Refund).where(Refund.foreign_id == foreign_id)).one()
        assert done.state == "confirmed" and done.txid
        assert done.amount_received == "0.00067"
        page = db.session().get(Page, page_id)
        assert page is not None
        assert refunds.owed(db.session(), page) is not None
        assert refunds.owed(db.session(), page).left == 0  # type: ignore[union-attr]
    assert withdrawals(app, foreign_id) == 1
    statuses = [e["status"] for e in refund_events(app)]
    assert statuses == ["requested", "approved", "sent", "confirmed"]
    last = refund_events(app)[-1]
    assert last["amount"] == "0.00077000" and last["amount_received"] == "0.00067000"
    assert last["foreign_id"] == "user-7" and last["txid"] == done.txid


def test_a_refund_never_exceeds_what_is_owed(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id = overpaid_page(app, client, live_server)
    with app.app_context():
        session = db.session()
        page = session.get(Page, page_id)
        assert page is not None
        with pytest.raises(refunds.Refused) as too_much:
            refunds.request(session, page, WALLET, None, Decimal("0.00078"))
        assert too_much.value.code == refunds.TOO_MUCH
        session.rollback()
        refunds.request(session, page, WALLET, None, Decimal("0.00068"))
        session.commit()
        with pytest.raises(refunds.Refused) as small:
            refunds.request(session, page, WALLET, None)  # 0.00009 left: the fee eats it
        assert small.value.code == refunds.TOO_SMALL
        session.rollback()
        assert session.scalar(select(func.count()).select_from(Refund)) == 1
