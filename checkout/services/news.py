"""The news engine: a processor callback (or what reconciliation learned) is kept as received,
queued for the shop, and applied at most once per (id, type, status), forward only.

`absorb` is the one way in: the callback endpoint (checkout/web/callbacks.py) and reconciliation
(services/reconcile.py) both call it. Deposits are applied by deposit_news.py, invoices by
invoice_news.py; money that came after an invoice closed by late_news.py; our refunds'
withdrawals by refund_news.py.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from .. import clock, db, money
from ..models import AppliedCallback, Callback, Merchant
from . import deliveries, invoices, payment_news
from .deposit_news import apply_deposit
from .invoice_news import apply_invoice
from .news_base import (
    APPLIED,
    DUPLICATE,
    FLAGGED,
    IGNORED,
    NOT_OURS,
    Key,
    Malformed,
    Result,
    insert_ignoring_conflict,
    remaining_of,
    short_text,
    valid_id,
)
from .refund_news import WITHDRAWAL_TYPES, apply_withdrawal

log = logging.getLogger(__name__)

TYPES = frozenset(
    {"deposit", "deposit_exchange", "withdrawal", "withdrawal_exchange", "exchange", "invoice"})
DEPOSIT_TYPES = frozenset({"deposit", "deposit_exchange"})


# The callback's row, written by statements built once and run on the session's connection:
# the ORM's units of work for it (its INSERT, then its outcome) cost a callback more than
# any of its statements (measured).
_CALLBACKS = db.table_of(Callback)
_KEPT = ("merchant_id", "source", "body", "processor_id", "type", "status", "outcome", "flag",
         "received_at")
KEEP = insert(_CALLBACKS).values({name: bindparam(name) for name in _KEPT}).returning(
    _CALLBACKS.c.id)
DECIDE = (update(_CALLBACKS).where(_CALLBACKS.c.id == bindparam("callback"))
          .values(outcome=bindparam("decided"), flag=bindparam("why")))


def absorb(session: Session, merchant: Merchant, raw: bytes, payload: dict[str, Any], *,
           source: str) -> Callback:
    """Keep a callback as received, queue it for the merchant, apply it at most once. The
    row returned is the one stored, outside the session (its changes are written here).

    The `Callback` insert comes first: on SQLite it takes the write lock before anything
    is read, so a concurrent duplicate waits for our commit instead of failing.
    """
    callback = Callback(merchant_id=merchant.client_id, source=source, body=raw,
                        outcome=IGNORED, flag=None, received_at=clock.now())
    record_search_fields(callback, payload)
    connection = session.connection()
    callback.id = connection.execute(
        KEEP, {name: getattr(callback, name) for name in _KEPT}).scalar_one()
    result = apply(session, merchant.client_id, callback.id, payload)
    callback.outcome, callback.flag = result.outcome, result.flag
    if (result.outcome, result.flag) != (IGNORED, None):  # else as it was stored
        connection.execute(DECIDE, {"callback": callback.id, "decided": result.outcome,
                                    "why": result.flag})
    if forwards_raw(callback, result, source):
        deliveries.enqueue(session, merchant, callback)
    # Our word that a short payment counts as paid follows the processor's news of it.
    payment_news.tell_shop(session, merchant, result.accepted_short)
    if result.flag:
        log.warning("callback %s for merchant %s flagged: %s", callback.id,
                    merchant.client_id, result.flag)
    session.flush()
    return callback


def forwards_raw(callback: Callback, result: Result, source: str) -> bool:
    """Whether the shop receives these bytes as they came.

    A replay of news already applied is not news: kept and counted, not forwarded again.
    Invoice callbacks about our quotes never go out as received (they carry the processor's
    ids and our quote's foreign_id): `apply_invoice` queues the shop's own event instead;
    an invoice the merchant made at the processor directly is its own, and goes out as is.
    """
    if result.outcome == DUPLICATE or result.private:
        return False
    if callback.type == "invoice" and result.outcome != NOT_OURS:
        return False
    if source == "reconcile":
        # News we had to ask for: the processor's own callback was lost, and may never
        # reach us, so the shop hears it from us now (in the same callback shape, signed).
        return result.outcome == APPLIED
    return True


def record_search_fields(callback: Callback, payload: dict[str, Any]) -> None:
    """Copy the searchable fields, as far as they are well-formed."""
    raw_id = payload.get("id")
    callback.processor_id = raw_id if valid_id(raw_id) else None
    callback.type = short_text(payload.get("type"))
    callback.status = short_text(payload.get("status"))


def key_of(payload: dict[str, Any]) -> Key:
    raw_id, type_, status = payload.get("id"), payload.get("type"), payload.get("status")
    if not valid_id(raw_id):
        raise Malformed("id is not a positive integer")
    if short_text(type_) is None or short_text(status) is None:
        raise Malformed("type or status is missing")
    return Key(cast(int, raw_id), cast(str, type_), cast(str, status))


def apply(session: Session, merchant_id: int, callback_id: int,
          payload: dict[str, Any]) -> Result:
    """Apply one callback's news to our state, once per (id, type, status), forward only."""
    try:
        key = key_of(payload)
    except Malformed as exc:
        return Result(FLAGGED, f"malformed: {exc}")
    if key.type not in TYPES:
        return Result(IGNORED)
    try:
        if not claim_key(session, merchant_id, key, callback_id,
                         news_of(key, payload)):
            return Result(DUPLICATE)
        if key.type in DEPOSIT_TYPES:
            return apply_deposit(session, merchant_id, key, payload, callback_id)
        if key.type == "invoice":
            return apply_invoice(session, merchant_id, key, payload, callback_id)
        if key.type in WITHDRAWAL_TYPES:
            # Our refunds' withdrawals move them on; the merchant's own are forwarded.
            return apply_withdrawal(session, merchant_id, key, payload)
    except Malformed as exc:
        return Result(FLAGGED, f"malformed: {exc}")
    # Exchanges are the merchant's own business: forwarded, nothing to show.
    return Result(IGNORED)


def news_of(key: Key, payload: dict[str, Any]) -> str:
    """The status part of the idempotency key: the status, and for an open invoice what is
    still missing too, so that each instalment (`pending` with a smaller remaining amount)
    is news of its own."""
    if key.type != "invoice" or key.status in invoices.FINAL:
        return key.status
    remaining = remaining_of(payload)
    if remaining is None:
        return key.status
    news = f"{key.status}:{money.plain(remaining)}"
    if len(news) > 32:
        raise Malformed("remaining_amount is out of bounds")
    return news


def claim_key(session: Session, merchant_id: int, key: Key, callback_id: int,
              status: str | None = None) -> bool:
    return insert_ignoring_conflict(
        session, AppliedCallback,
        {"merchant_id": merchant_id, "processor_id": key.processor_id, "type": key.type,
         "status": status or key.status, "callback_id": callback_id},
        ["merchant_id", "processor_id", "type", "status"])


def key_applied(session: Session, merchant_id: int, key: Key) -> bool:
    return session.scalar(select(AppliedCallback.id).where(
        AppliedCallback.merchant_id == merchant_id,
        AppliedCallback.processor_id == key.processor_id,
        AppliedCallback.type == key.type,
        AppliedCallback.status == key.status)) is not None
