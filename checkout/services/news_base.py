"""What every kind of processor news shares: its idempotency key, the outcome of applying it,
and the bounded readings of a callback's fields (a hostile or broken value is refused or
left out, never stored as it came).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from .. import db, money

MAX_PROCESSOR_ID = 2**63 - 1

# Callback.outcome values.
APPLIED = "applied"  # moved our state forward
STALE = "stale"  # about our payment, but older news than what we hold
DUPLICATE = "duplicate"  # this (id, type, status) was applied before
NOT_OURS = "not_ours"  # an address or invoice this site never issued: forwarded only
IGNORED = "ignored"  # nothing of ours to change (withdrawals, exchanges, other statuses)
FLAGGED = "flagged"  # contradicts what we issued, or is malformed: kept for audit


@dataclass(frozen=True)
class Key:
    """What makes a callback the same news: the processor's id, type and status."""

    processor_id: int
    type: str
    status: str


@dataclass(frozen=True)
class Result:
    outcome: str
    flag: str | None = None
    # About one of our invoice quotes (a late payment): its bytes name our quote, never the
    # shop's invoice, so the shop hears it from us (late_news.py) or not at all.
    private: bool = False
    # Pages the callback made paid by the merchant's tolerance: the shop's event of ours
    # about each goes out after the processor's own bytes (payment_news.py).
    accepted_short: tuple[str, ...] = ()


class Malformed(ValueError):
    """A signed callback whose fields cannot be read; kept and flagged, never applied."""


def valid_id(value: Any) -> bool:
    return type(value) is int and 0 < value <= MAX_PROCESSOR_ID


def storable(value: str) -> bool:
    """PostgreSQL text cannot hold NUL: such a value would fail the whole transaction (a 500,
    the callback lost) instead of being kept and flagged."""
    return "\x00" not in value


def short_text(value: Any) -> str | None:
    ok = isinstance(value, str) and 0 < len(value) <= 32 and storable(value)
    return value if ok else None


def text_or_none(value: Any) -> str | None:
    """Tags come as strings or numbers (XRP); compare them as text."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Malformed("tag is not text")
    return str(value)


def confirmations_of(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return 0


def remaining_of(payload: dict[str, Any]) -> Decimal | None:
    sent = payload.get("currency_sent")
    if not isinstance(sent, dict) or sent.get("remaining_amount") is None:
        return None
    return bounded_amount(sent.get("remaining_amount"), "remaining_amount")


def bounded_amount(value: Any, name: str) -> Decimal:
    try:
        amount = money.from_processor(value)
    except money.AmountError as exc:
        raise Malformed(f"{name} is not a number") from exc
    if amount < 0 or amount.adjusted() >= 20 or len(money.text(amount)) > 40:
        raise Malformed(f"{name} is out of bounds")
    return amount


def insert_ignoring_conflict(session: Session, model: type[Any], values: dict[str, Any],
                             unique: list[str]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: True when this call inserted the row.

    The database's unique constraint decides between concurrent writers; the loser
    waits for the winner's commit (PostgreSQL) or for the write lock (SQLite). Whether
    a row was inserted is read from RETURNING: drivers disagree on rowcount here.
    """
    table = model.__table__
    key = (session.get_bind().dialect.name, table.name, tuple(unique))
    stmt = _INSERTS.get(key)
    if stmt is None:
        stmt = _INSERTS[key] = (db.conflict_insert(key[0], table).on_conflict_do_nothing(
            index_elements=unique).returning(table.c.id))
    return session.execute(stmt, values).first() is not None


# Each statement built once: the values go in as parameters, not into the statement
# (`.values(**values)` coerced each one into an SQL expression on every call: about a
# millisecond per callback, with the write lock held).
_INSERTS: dict[tuple[str, str, tuple[str, ...]], Any] = {}


def not_forward(current: str, new: str, rank: dict[str, int],
                final: frozenset[str]) -> Result | None:
    """None when `new` moves `current` forward; otherwise why the news is not applied.

    A final state keeps the first final word; another final status after it (money credited
    to a payment we showed as cancelled or failed, or the reverse) is flagged, so that an
    operator can find it.
    """
    if current in final:
        if new in final and new != current:
            return Result(FLAGGED, f"{new} after final {current}")
        return Result(STALE)
    if rank[new] <= rank.get(current, -1):
        return Result(STALE)
    return None
