"""Reconciliation: ask the processor about a page that waited too long for a callback.

A deposit page that is not final and has had no news for `RECONCILE_AFTER` seconds is
looked up with `transactions/info` (by id for each open transaction we know, else by the
address's foreign_id). What comes back is applied by the news engine (services/news.py), as
a callback is, under the same idempotency key, so a callback arriving later changes nothing
twice. The page's
`checked_at` is claimed with a conditional UPDATE, so several workers ask once per period.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session

from .. import clock, db, money, processor, states
from ..models import Deposit, Invoice, InvoiceQuote, Merchant, Page
from ..pagekinds import deposit
from ..pagekinds import invoice as invoice_kind
from ..wire import phpjson
from . import news
from .news_base import APPLIED, DUPLICATE, Malformed

log = logging.getLogger(__name__)

BATCH = 20
# The pages `deposit.is_final` calls not final, in SQL: waiting, seen (states.OPEN_DEPOSIT),
# and confirmed but still short of the amount asked.
OPEN_DEPOSITS = (deposit.SEEN,)


def due_pages(session: Session, now: datetime, after: timedelta, horizon: timedelta,
              limit: int = BATCH) -> list[str]:
    cutoff = now - after
    return list(session.scalars(
        select(Page.id)
        .where(Page.kind == deposit.KIND.name, Page.address_id.is_not(None),
               or_(Page.status.in_(states.OPEN_DEPOSIT),
                   and_(Page.status == deposit.CONFIRMED, Page.reason == deposit.UNDERPAID)),
               Page.updated_at <= cutoff,
               or_(Page.checked_at.is_(None), Page.checked_at <= cutoff),
               Page.created_at >= now - horizon)
        .order_by(Page.checked_at.is_not(None), Page.checked_at, Page.created_at)
        .limit(limit)).all())


def claim_page(session: Session, page_id: str, now: datetime, after: timedelta) -> bool:
    """Record that we ask now; False when another worker asked within the period."""
    cutoff = now - after
    result = cast(CursorResult[Any], session.execute(
        update(Page)
        .where(Page.id == page_id, or_(Page.checked_at.is_(None), Page.checked_at <= cutoff))
        .values(checked_at=now)))
    session.commit()
    return result.rowcount == 1


def queries_for(session: Session, page: Page) -> list[dict[str, Any]]:
    """By id for each transaction still in flight; by the address's foreign_id otherwise.
    An invoice page (asked from the back office only): each of its processor invoices."""
    if page.kind == invoice_kind.KIND.name:
        return [{"id": processor_id} for processor_id in session.scalars(
            select(InvoiceQuote.processor_id)
            .join(Invoice, Invoice.id == InvoiceQuote.invoice_id)
            .where(InvoiceQuote.processor_id.is_not(None), Invoice.page_id == page.id)
            .order_by(InvoiceQuote.id)).all()]
    address = page.deposit_address
    if address is None:
        return []
    open_ids = session.scalars(
        select(Deposit.processor_id)
        .where(Deposit.address_id == address.id, Deposit.status.in_(OPEN_DEPOSITS))
        .order_by(Deposit.id)).all()
    if open_ids:
        return [{"id": processor_id} for processor_id in open_ids]
    return [{"foreign_id": address.foreign_id}]


def news_body(info: dict[str, Any]) -> bytes:
    """What we store and forward for an answer: PHP json_encode bytes, as a callback's are,
    with the callback's JSON types.

    The shop's PHP plugin re-encodes a callback before checking our signature, so the
    bytes must be what PHP writes. The shop's typed client parses them as the processor's
    callback (coinspaid-api.md §3): a bare number where an amount is (parsed as Decimal or
    int) is written as its 8-place decimal string, as PHP would print a float, which is no way
    to carry money; `confirmations` as a string (the documented deposit example shows `3`,
    which Go's `,string` and Rust's `String` both refuse); a numeric tag as its text. What the
    processor wrote as text stays its text.
    """
    return phpjson.dumps(_processor_types(info))


AMOUNTS = frozenset({"amount", "amount_minus_fee", "remaining_amount", "amount_to"})


def _processor_types(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {name: _processor_types(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_processor_types(item) for item in value]
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return value
    if key in AMOUNTS:
        return _amount_text(Decimal(value))
    if key in ("confirmations", "tag"):
        return str(value)
    return money.text(value) if isinstance(value, Decimal) else value


def _amount_text(amount: Decimal) -> str:
    """8 places, as the processor writes amounts; more only where the number has them."""
    exponent = amount.as_tuple().exponent
    places = max(8, -exponent) if isinstance(exponent, int) else 8
    return money.text(amount, places)


def learn(session: Session, merchant: Merchant, info: dict[str, Any]) -> str:
    """Apply one transactions/info answer like a callback; the outcome, or why it was skipped.

    Nothing is stored when this news was applied before: asking every period must not
    fill the audit log with copies.
    """
    try:
        key = news.key_of(info)
    except Malformed:
        return "unreadable"
    if news.key_applied(session, merchant.client_id, key):
        return DUPLICATE
    try:
        raw = news_body(info)
    except ValueError:  # an integer beyond 64 bits or broken text: not a PHP value
        return "unreadable"
    record = news.absorb(session, merchant, raw, info, source="reconcile")
    return record.outcome


@dataclass(frozen=True)
class Answer:
    """What the processor said about one transaction of a page, and what we did with it."""

    processor_id: int | None
    status: str | None  # the processor's status, as far as it is readable
    outcome: str  # news.absorb's outcome, DUPLICATE (known already) or "unreadable"


def reconcile_page(session: Session, page_id: str) -> int:
    """Ask about one page; how many answers changed our state."""
    return sum(answer.outcome == APPLIED for answer in ask_page(session, page_id))


def ask_page(session: Session, page_id: str) -> list[Answer]:
    """Ask the processor about one page now (the worker, or someone in the back office),
    each answer applied as a callback; raises the processor's errors."""
    page = session.get(Page, page_id)
    if page is None:
        return []
    merchant = page.merchant
    client = processor.client_for(merchant)
    answers = []
    for query in queries_for(session, page):
        info = client.transactions_info(**query)
        with db.transaction() as tx:
            outcome = learn(tx, merchant, info)
        log.info("reconciled page %s (%s): %s", page_id, ", ".join(query), outcome)
        raw_id, status = info.get("id"), info.get("status")
        answers.append(Answer(raw_id if isinstance(raw_id, int) else None,
                              status if isinstance(status, str) else None, outcome))
    return answers


def run_due(limit: int = BATCH) -> int:
    """Worker task: reconcile the pages due; how many pages were looked at."""
    config = current_app.config
    after = timedelta(seconds=int(config["RECONCILE_AFTER"]))
    horizon = timedelta(seconds=int(config["RECONCILE_HORIZON"]))
    session = db.session()
    now = clock.now()
    asked = 0
    for page_id in due_pages(session, now, after, horizon, limit):
        if not claim_page(session, page_id, now, after):
            continue
        asked += 1
        try:
            reconcile_page(session, page_id)
        except processor.ValidationError:
            # The processor knows no transaction for this query yet: nothing was paid.
            session.rollback()
            log.info("reconciling page %s: nothing known at the processor", page_id)
        except processor.ProcessorError as exc:
            # checked_at is set: the page is asked again after one more period.
            session.rollback()
            log.warning("reconciling page %s: processor error (%s)", page_id,
                        type(exc).__name__)
        except Exception:
            session.rollback()
            log.exception("reconciling page %s failed", page_id)
    return asked
