"""A page that owes money back, and its refunds, made as a customer and a merchant would:
the payer overpays through the embedded processor, the customer asks, a person approves."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from checkout import db
from checkout.models import Delivery, Page, Refund
from checkout.sandbox import store as sandbox_store
from checkout.services import refunds

from .console import Person, add_person
from .deposits import LINK, open_link
from .invoices import settle
from .live import LiveServer
from .payments import pay

PLAIN_LINK = {**LINK, "convert_to": None}  # 0.00123 BTC asked, kept in BTC
WALLET = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"  # BIP-173's testnet example


def overpaid_page(app: Flask, client: FlaskClient, live_server: LiveServer,
                  link: dict[str, Any] = PLAIN_LINK, sent: str = "0.00200000") -> str:
    """A page asking 0.00123 BTC, paid `sent` and confirmed: the excess is owed back."""
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


def request(app: Flask, page_id: str, amount: Any = None, address: str = WALLET) -> int:
    with app.app_context():
        session = db.session()
        page = session.get(Page, page_id)
        assert page is not None
        refund = refunds.request(session, page, address, None, amount)
        session.commit()
        return refund.id


def approve(app: Flask, refund_id: int, person: Person) -> None:
    with app.app_context():
        session = db.session()
        refunds.approve(session, refund_id, user_id=person.id, actor=person.email,
                        merchant_ids=None)
        session.commit()


def approved_refund(app: Flask, client: FlaskClient, live_server: LiveServer
                    ) -> tuple[str, int]:
    """An overpaid page whose customer asked for everything owed back, approved by the
    shop's owner and not sent yet: (page id, refund id)."""
    page_id = overpaid_page(app, client, live_server)
    refund_id = request(app, page_id)
    approve(app, refund_id, add_person(app, "owner@shop.example", roles={11: "owner"}))
    return page_id, refund_id


def row(app: Flask, refund_id: int) -> Refund:
    with app.app_context():
        refund = db.session().get(Refund, refund_id)
        assert refund is not None
        db.session().expunge(refund)
        return refund


def withdrawals(app: Flask, foreign_id: str) -> int:
    """How many withdrawals the processor holds under this foreign_id."""
    with sandbox_store.transaction(app) as s:
        return int(s.scalar(select(func.count()).select_from(sandbox_store.Operation).where(
            sandbox_store.Operation.foreign_id == foreign_id,
            sandbox_store.Operation.scope == "withdrawal")) or 0)


def refund_events(app: Flask) -> list[dict[str, Any]]:
    """The shop's refund events in the outbox, oldest first."""
    with app.app_context():
        bodies = db.session().scalars(select(Delivery.body).order_by(Delivery.id)).all()
    events = [json.loads(body) for body in bodies]
    return [event for event in events if event.get("type") == "refund"]
