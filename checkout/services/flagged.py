"""The back office's flagged callbacks: processor news the site did not simply apply
(contradictions, malformed or absurd fields, unknown addresses, replays), each with what
the site did about it. Bounded by the merchants the person may see, like every list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from ..models import Callback, Delivery, Merchant
from . import periods
from .news_base import DUPLICATE, FLAGGED, NOT_OURS

PAGE_SIZE = 50
# Shown as received up to this many bytes; a longer body is cut (it stays whole in storage).
BODY_SHOWN = 20_000
OUTCOMES = (FLAGGED, DUPLICATE, NOT_OURS)


@dataclass(frozen=True)
class Filter:
    merchant_id: int | None = None
    since: date | None = None
    until: date | None = None  # inclusive


@dataclass(frozen=True)
class Row:
    id: int
    merchant_id: int
    merchant_name: str
    received_at: datetime
    source: str
    type: str | None
    status: str | None
    outcome: str
    flag: str | None
    forwarded: bool  # the shop was sent these bytes
    body: str
    cut: bool  # `body` is the start of a longer one


@dataclass(frozen=True)
class Listing:
    rows: list[Row]
    after: int | None


def _conditions(merchants: Sequence[int] | None, chosen: Filter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        or_(Callback.flag.is_not(None), Callback.outcome.in_(OUTCOMES))]
    if merchants is not None:
        conditions.append(Callback.merchant_id.in_(list(merchants)))
    if chosen.merchant_id is not None:
        conditions.append(Callback.merchant_id == chosen.merchant_id)
    conditions += periods.within_days(Callback.received_at, chosen.since, chosen.until)
    return conditions


def listing(session: Session, merchants: Sequence[int] | None, chosen: Filter,
            after: int | None = None, size: int | None = None) -> Listing:
    """Newest first, `size` (PAGE_SIZE) at a time; `after` is the last id of the previous
    page."""
    size = size or PAGE_SIZE
    conditions = _conditions(merchants, chosen)
    if after is not None:
        conditions.append(Callback.id < after)
    forwarded = exists().where(Delivery.callback_id == Callback.id)
    found = list(session.execute(
        select(Callback, Merchant.name, forwarded)
        .join(Merchant, Merchant.client_id == Callback.merchant_id)
        .where(*conditions).order_by(Callback.id.desc()).limit(size + 1)).all())
    more = len(found) > size
    rows = [Row(id=c.id, merchant_id=c.merchant_id, merchant_name=name,
                received_at=c.received_at, source=c.source, type=c.type, status=c.status,
                outcome=c.outcome, flag=c.flag, forwarded=bool(sent),
                body=c.body[:BODY_SHOWN].decode("utf-8", errors="replace"),
                cut=len(c.body) > BODY_SHOWN)
            for c, name, sent in found[:size]]
    return Listing(rows, rows[-1].id if more and rows else None)


def merchant_choices(session: Session, merchants: Sequence[int] | None) -> list[tuple[int, str]]:
    """(client id, name) of the merchants a filter may name, for the person's choice."""
    query = select(Merchant.client_id, Merchant.name).order_by(Merchant.name, Merchant.client_id)
    if merchants is not None:
        query = query.where(Merchant.client_id.in_(list(merchants)))
    return list(session.execute(query).all())
