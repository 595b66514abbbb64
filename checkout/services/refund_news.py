"""A refund's moves, and the processor's withdrawal news that drive them: each move is written
with a conditional UPDATE (only from the state it leaves), rewrites the page's model, and
queues the shop's signed refund event in the same transaction.

The shop's event is ours (CoinsPaid has none for refunds; README "Refund events"), written as
PHP's json_encode writes it, with amounts as 8-place strings like the processor's, and sent
through the same outbox as every callback. A withdrawal callback about one of our refunds
(found by our foreign_id) is private: the shop hears our event, never the processor's bytes
naming a foreign_id it does not know.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import clock, money, refund_rules
from ..clock import unix
from ..models import Merchant, Page, Refund
from ..pagekinds import snapshot
from . import deliveries
from .news_base import APPLIED, DUPLICATE, IGNORED, Key, Malformed, Result, storable

log = logging.getLogger(__name__)

WITHDRAWAL_TYPES = frozenset({"withdrawal", "withdrawal_exchange"})
# The processor's withdrawal statuses and the refund state each stands for.
STATE_OF_STATUS = {"processing": refund_rules.SENT, "pending": refund_rules.PENDING,
                   "confirmed": refund_rules.CONFIRMED, "cancelled": refund_rules.FAILED}
EVENT_TYPE = "refund"


@dataclass(frozen=True)
class Change:
    """What a move sets besides the state."""

    reason: str | None = None
    processor_id: int | None = None
    txid: str | None = None
    amount_received: str | None = None
    fee: str | None = None
    decided_by: int | None = None


def move(session: Session, refund: Refund, new: str, now: datetime,
         change: Change = Change()) -> bool:
    """Move `refund` to `new` if it is still where it was read and may go there; True when it
    moved (then the shop's event is queued and the page rewritten with the transaction)."""
    old = refund.state
    if not refund_rules.may_move(old, new):
        return False
    values: dict[str, Any] = {"state": new, "updated_at": now}
    for name in ("reason", "processor_id", "txid", "amount_received", "fee", "decided_by"):
        value = getattr(change, name)
        if value is not None:
            values[name] = value
    if new in (refund_rules.APPROVED, refund_rules.REJECTED):
        values["decided_at"] = now
    if new in (refund_rules.SENT, refund_rules.PENDING) and refund.sent_at is None:
        values["sent_at"] = now
    if new in refund_rules.FINAL:
        values["finished_at"] = now
    moved = session.execute(update(Refund).where(Refund.id == refund.id, Refund.state == old)
                            .values(**values).execution_options(synchronize_session=False))
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        return False  # someone else moved it first: their move stands
    session.refresh(refund)
    tell_shop(session, refund)
    snapshot.mark(session, [refund.page_id])
    return True


# ---------------------------------------------------------------------------------------------
# The shop's refund events


def event(refund: Refund, page: Page) -> dict[str, Any]:
    """The shop's refund event (README "Refund events"): the shop's own order reference, our
    page and refund ids, amounts as the processor writes them."""
    return {
        "type": EVENT_TYPE,
        "id": refund.id,
        "page_id": page.id,
        "foreign_id": page.foreign_id,
        "status": refund.state,
        "cause": refund.cause,
        "currency": refund.currency,
        "amount": _amount(refund.amount),
        "amount_received": None if refund.amount_received is None
        else _amount(refund.amount_received),
        "address": refund.address,
        "tag": refund.tag,
        "txid": refund.txid,
        "reason": refund.reason,
        "created_at": unix(refund.requested_at),
        "updated_at": unix(refund.updated_at),
    }


def _amount(text: str) -> str:
    return money.text(Decimal(text), money.PROCESSOR_PLACES)


def tell_shop(session: Session, refund: Refund) -> None:
    page = session.get(Page, refund.page_id)
    merchant = session.get(Merchant, refund.merchant_id)
    assert page is not None and merchant is not None
    deliveries.enqueue_body(session, merchant, deliveries.encode(event(refund, page)),
                            page_id=page.id)


# ---------------------------------------------------------------------------------------------
# The processor's withdrawal news


def refund_by_foreign_id(session: Session, merchant_id: int, foreign_id: Any,
                         lock: bool = False) -> Refund | None:
    if not isinstance(foreign_id, str) or not foreign_id or len(foreign_id) > 64:
        return None
    query = select(Refund).where(Refund.merchant_id == merchant_id,
                                 Refund.foreign_id == foreign_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalar(query)


def apply_withdrawal(session: Session, merchant_id: int, key: Key,
                     payload: dict[str, Any]) -> Result:
    """A withdrawal callback: one of our refunds' (by our foreign_id) moves on; any other
    withdrawal is the merchant's own business, forwarded as it came."""
    refund = refund_by_foreign_id(session, merchant_id, payload.get("foreign_id"), lock=True)
    if refund is None:
        return Result(IGNORED)
    new = STATE_OF_STATUS.get(key.status)
    if new is None:
        return Result(IGNORED, private=True)
    change = _change_of(key, payload, refund)
    if refund.state == new or not move(session, refund, new, clock.now(), change):
        if refund.processor_id is None and change.processor_id is not None:
            refund.processor_id = change.processor_id  # learned late, after another move
        return Result(DUPLICATE if refund.state == new else IGNORED, private=True)
    return Result(APPLIED, private=True)


def _change_of(key: Key, payload: dict[str, Any], refund: Refund) -> Change:
    if key.status == "cancelled":
        error = _text(payload.get("error"), 500) or "cancelled by the payment processor"
        return Change(reason=error, processor_id=key.processor_id)
    if key.status != "confirmed":
        return Change(processor_id=key.processor_id)
    received = _received(payload, refund.currency)
    return Change(processor_id=key.processor_id, txid=_txid(payload),
                  amount_received=None if received is None else money.plain(received),
                  fee=_fees(payload, refund.balance_currency))


def _text(value: Any, limit: int) -> str | None:
    ok = isinstance(value, str) and 0 < len(value) <= limit and storable(value)
    return value if ok else None


def _received(payload: dict[str, Any], currency: str) -> Decimal | None:
    received = payload.get("currency_received")
    if not isinstance(received, dict) or received.get("currency") != currency:
        return None
    try:
        value = money.from_processor(received.get("amount"))
    except money.AmountError as exc:
        raise Malformed("currency_received.amount is not an amount") from exc
    return value


def _txid(payload: dict[str, Any]) -> str | None:
    legs = payload.get("transactions")
    if not isinstance(legs, list):
        return None
    for leg in legs:
        if isinstance(leg, dict) and leg.get("transaction_type", "blockchain") == "blockchain":
            txid = _text(leg.get("txid"), 255)
            if txid:
                return txid
    return None


def _fees(payload: dict[str, Any], currency: str) -> str | None:
    fees = payload.get("fees")
    if not isinstance(fees, list):
        return None
    total = Decimal(0)
    for item in fees:
        if isinstance(item, dict) and item.get("currency") == currency:
            try:
                total += money.from_processor(item.get("amount"))
            except money.AmountError:
                continue
    return money.plain(total) if total else None
