"""Refunds in tests, reached the real way: a deposit page overpaid through the embedded
sandbox (real HTTP, signed callbacks), then the customer's request through services.refunds
(kit/refund_flow.py has the rest of a refund's way)."""

from __future__ import annotations

from flask import Flask

from checkout import db
from checkout.models import Page
from checkout.services import refunds
from kit.refund_flow import PLAIN_LINK, WALLET, overpaid_page
from kit.refund_flow import row as state_of

__all__ = ["PLAIN_LINK", "WALLET", "overpaid_page", "requested_refund", "state_of"]


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
