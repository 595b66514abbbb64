"""Reading the audit log: filtered, newest first, a page at a time; and its CSV export.

Entries are only ever added (audit.py refuses changes), so their ids grow with time and
"newest first" is "highest id first": the cursor of the next page is the last id shown,
which stays right however many entries arrive meanwhile. Every read is bounded by the
merchants a person may audit; an operator (None) also sees entries of no merchant
(sign-ins, commands).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from .. import audit
from ..models import AuditEntry, Merchant
from .periods import Period

PAGE_SIZE = 100
EXPORT_BATCH = 500
MAX_FILTER = 255  # longer than any stored action or email: such a filter matches nothing
EXPORTED = "audit.export"


@dataclass(frozen=True)
class Filters:
    merchant_id: int | None = None
    action: str = ""
    user: str = ""  # the actor's email as recorded
    period: Period | None = None

    def query(self) -> dict[str, str]:
        """The filters as URL parameters (empty ones left out)."""
        found = {"merchant": "" if self.merchant_id is None else str(self.merchant_id),
                 "action": self.action, "user": self.user,
                 **(self.period.query() if self.period else {})}
        return {name: value for name, value in found.items() if value}


@dataclass(frozen=True)
class Line:
    id: int
    at: datetime
    actor: str
    merchant_id: int | None
    merchant_name: str | None
    action: str
    target: str | None
    address: str | None
    detail: str  # JSON text, as recorded


@dataclass(frozen=True)
class Listing:
    lines: list[Line]
    next_after: int | None  # the cursor of the next (older) page; None: this is the last


def _filtered(filters: Filters, merchant_ids: list[int] | None) -> Select:
    query = select(AuditEntry, Merchant.display_name, Merchant.name).outerjoin(
        Merchant, Merchant.client_id == AuditEntry.merchant_id)
    if merchant_ids is not None:
        query = query.where(AuditEntry.merchant_id.in_(merchant_ids))
    if filters.merchant_id is not None:
        query = query.where(AuditEntry.merchant_id == filters.merchant_id)
    if filters.action:
        query = (query.where(AuditEntry.action == filters.action)
                 if len(filters.action) <= MAX_FILTER else query.where(false()))
    if filters.user:
        query = (query.where(AuditEntry.actor == filters.user.strip().lower())
                 if len(filters.user) <= MAX_FILTER else query.where(false()))
    if filters.period is not None:
        query = query.where(AuditEntry.at >= filters.period.start,
                            AuditEntry.at < filters.period.end)
    return query


def _line(entry: AuditEntry, display: str | None, name: str | None) -> Line:
    return Line(entry.id, entry.at, entry.actor, entry.merchant_id, display or name,
                entry.action, entry.target, entry.address, entry.detail_json or "{}")


def listing(session: Session, filters: Filters, merchant_ids: list[int] | None, *,
            after: int | None = None, size: int = PAGE_SIZE) -> Listing:
    """One page of entries, newest first, older than the entry `after` when given."""
    query = _filtered(filters, merchant_ids)
    if after is not None:
        query = query.where(AuditEntry.id < after)
    rows = session.execute(query.order_by(AuditEntry.id.desc()).limit(size + 1)).all()
    lines = [_line(entry, display, name) for entry, display, name in rows[:size]]
    return Listing(lines, lines[-1].id if len(rows) > size else None)


def actions(session: Session, merchant_ids: list[int] | None) -> list[str]:
    """The actions recorded among the entries one may see, for the filter's choices."""
    query = select(AuditEntry.action).distinct()
    if merchant_ids is not None:
        query = query.where(AuditEntry.merchant_id.in_(merchant_ids))
    return sorted(session.scalars(query))


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


HEADER = ("id", "at_utc", "actor", "merchant_id", "merchant", "action", "target", "address",
          "detail")


def _csv_line(values: tuple[object, ...]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(v) for v in values])
    return out.getvalue()


def export(session: Session, filters: Filters, merchant_ids: list[int] | None, *,
           batch: int = EXPORT_BATCH) -> Iterator[str]:
    """The filtered entries as CSV lines, newest first, read `batch` at a time as they
    stream (a log of any length never sits whole in memory)."""
    yield _csv_line(HEADER)
    after: int | None = None
    while True:
        page = listing(session, filters, merchant_ids, after=after, size=batch)
        for line in page.lines:
            yield _csv_line((line.id, line.at.replace(microsecond=0).isoformat(), line.actor,
                             line.merchant_id, line.merchant_name, line.action, line.target,
                             line.address, line.detail))
        if page.next_after is None:
            return
        after = page.next_after


def record_export(session: Session, filters: Filters, merchant_ids: list[int] | None, *,
                  actor: str, user_id: int, address: str) -> None:
    """The export is itself an entry, in the log of each merchant whose entries it read
    (one of no merchant for an operator's export of everything)."""
    if filters.merchant_id is not None:
        # A merchant outside one's own read nothing: only an operator's log hears of it.
        allowed = merchant_ids is None or filters.merchant_id in merchant_ids
        targets: list[int | None] = [filters.merchant_id if allowed else None]
    elif merchant_ids is None:
        targets = [None]
    else:
        targets = list(merchant_ids)
    for merchant_id in targets:
        audit.record(session, EXPORTED, actor=actor, user_id=user_id, merchant_id=merchant_id,
                     detail={"filters": filters.query()}, address=address)
