"""Refunds in tests, reached the real way: a deposit page overpaid through the embedded
sandbox (real HTTP, signed callbacks), then the customer's request through services.refunds."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from checkout import db
from checkout.models import Page, Refund
from checkout.services import refunds
from kit.deposits import LINK, open_link
from kit.invoices import settle
from kit.live import LiveServer
from kit.payments import pay

PLAIN_LINK = {**LINK, "convert_to": None}  # paid and refunded in BTC, no conversion
WALLET = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"  # BIP-173's testnet example


def overpaid_page(app: Flask, client: FlaskClient, live_server: LiveServer,
                  link: dict[str, object] = PLAIN_LINK, sent: str = "0.00200000") -> str:
    """A page asking 0.00123 BTC, paid `sent` and confirmed; its id (0.00077 owed back)."""
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


def requested_refund(app: Flask, page_id: str, address: str = WALLET,
                     tag: str | None = None) -> int:
    """The customer of `page_id` asks for everything owed back to `address`; the refund's
    id (state requested unless the merchant's policy approved it at once)."""
    with app.app_context(), db.transaction() as session:
        page = session.get(Page, page_id)
        assert page is not None
        refund = refunds.request(session, page, address, tag)
        session.flush()
        return refund.id


def state_of(app: Flask, refund_id: int) -> Refund:
    """The refund as stored now (detached: read its columns)."""
    with app.app_context():
        refund = db.session().get(Refund, refund_id)
        assert refund is not None
        db.session().expunge(refund)
        return refund
