"""What an invoice is, read only: its states, its quotes, whether money was seen, where its
final screen sends the customer. The workflow that moves an invoice (creating, quoting,
cancelling, expiring) is services/invoices.py; what a page shows of one reads here.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import returns
from .models import Invoice, InvoiceQuote, Merchant
from .states import CONFIRMED, CREATED, FAILED, PENDING, PROCESSING

__all__ = ["CONFIRMED", "CREATED", "FAILED", "FINAL", "OPEN", "PENDING", "PROCESSING", "RANK",
           "current_quote", "may_change_currency", "paid_anything", "payment_seen", "quotes_of",
           "return_url"]

OPEN = frozenset({CREATED, PENDING, PROCESSING})
FINAL = frozenset({CONFIRMED, FAILED})
RANK = {CREATED: 0, PENDING: 1, PROCESSING: 2, CONFIRMED: 3, FAILED: 3}


def current_quote(session: Session, invoice_id: int) -> InvoiceQuote | None:
    return session.scalar(select(InvoiceQuote).where(
        InvoiceQuote.invoice_id == invoice_id, InvoiceQuote.current.is_(True))
        .execution_options(populate_existing=True))


def quotes_of(session: Session, invoice_id: int) -> list[InvoiceQuote]:
    return list(session.scalars(select(InvoiceQuote).where(
        InvoiceQuote.invoice_id == invoice_id).order_by(InvoiceQuote.id)
        .execution_options(populate_existing=True)))


def paid_anything(quotes: list[InvoiceQuote]) -> bool:
    return any(Decimal(q.amount_paid or "0") > 0 or q.status in (PROCESSING, CONFIRMED)
               for q in quotes)


def payment_seen(quotes: list[InvoiceQuote]) -> bool:
    """Money reached, or is on its way to, one of these quotes: any transaction at all."""
    return paid_anything(quotes) or any(q.transactions for q in quotes)


def may_change_currency(session: Session, invoice: Invoice) -> bool:
    """A customer may pick (again) while the invoice is open and no quote saw a payment."""
    return invoice.status in (CREATED, PENDING) and not paid_anything(
        quotes_of(session, invoice.id))


def return_url(invoice: Invoice, merchant: Merchant) -> str | None:
    """Where the final screen sends the customer, outcome appended and signed; None while open."""
    if invoice.status == CONFIRMED:
        url = invoice.url_success
    elif invoice.status == FAILED:
        url = invoice.url_failed
    else:
        return None
    return returns.signed_outcome(url, status=invoice.status, foreign_id=invoice.foreign_id,
                                  secret=merchant.api_secret)
