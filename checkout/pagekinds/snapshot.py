"""The page model, written once whenever a page's state changes, read by primary key.

The status poll is the hottest route there is (every open page asks every few seconds), so
it must not rebuild the model from deposits, quotes, limits and rates each time. Instead,
every transaction that changes what a page shows (a callback, reconciliation, expiry, a
currency pick, a fresh rate, opening the page) writes the page's model into its row before
it commits, with a version; the poll reads that one row and adds what only the moment of
reading knows: the seconds left, and whether the fiat value is still fresh.

Which pages a transaction touched is found from what it flushed (Page, Deposit, Invoice and
InvoiceQuote rows), so no writer has to remember to call anything: a missed call cannot
leave a page showing yesterday's state.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import bindparam, event, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .. import clock, db, money, pagekinds, rates
from ..clock import unix
from ..models import Deposit, Invoice, InvoiceQuote, Page, Refund
from . import KINDS, PageModel, outcomes
from .base import DUE, mark

log = logging.getLogger(__name__)
WRITING = "checkout.snapshot.writing"
# Inside one_change(): pages whose changes are committed, their models not written yet.
HELD = "checkout.snapshot.held"
# Statuses of pages still open, of every kind: their models follow the rates.
OPEN_PAGES = tuple(state for kind in KINDS.values() for state in kind.open_states)
# Keys only the reader uses, removed before the model is sent.
DEADLINE = "_deadline"
FIAT_AT = "_fiat_at"


def touched_pages(session: Session, objects: list[Any]) -> set[str]:
    """The pages whose model may change with these new or changed rows."""
    pages: set[str] = set()
    addresses: set[int] = set()
    invoices: set[int] = set()
    for obj in objects:
        if isinstance(obj, Page):
            pages.add(obj.id)
        elif isinstance(obj, Deposit) and obj.address_id is not None:
            addresses.add(obj.address_id)
        elif isinstance(obj, Invoice | Refund):
            pages.add(obj.page_id)
        elif isinstance(obj, InvoiceQuote):
            invoices.add(obj.invoice_id)
    with session.no_autoflush:
        if addresses:
            pages.update(session.scalars(select(Page.id).where(
                Page.address_id.in_(addresses))))
        if invoices:
            pages.update(session.scalars(select(Invoice.page_id).where(
                Invoice.id.in_(invoices))))
    return pages


def mark_open_pages(session: Session) -> None:
    """Pages still open show a fiat value or a currency picker from the rates: after the
    worker's refresh of every rate (rates.refresh_all), their models are written anew with
    its transaction. A flushed RateQuote alone marks nothing: a link's own pair, fetched as
    it opens, must not rewrite every open page on the customer's time."""
    open_ids = session.scalars(select(Page.id).where(
        Page.status.in_(OPEN_PAGES))).all()
    mark(session, list(open_ids))


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(WRITING):
        return
    changed = [o for o in list(session.new) + list(session.dirty)
               if isinstance(o, Page | Deposit | Invoice | InvoiceQuote | Refund)]
    if changed:
        mark(session, touched_pages(session, changed))


def _before_commit(session: Session) -> None:
    if session.info.get(WRITING):
        return
    if session.new or session.dirty or session.deleted:
        session.flush()  # commit flushes after this event: learn what it changes first
    if not session.info.get(DUE):
        return
    if HELD in session.info:
        session.info[HELD].update(session.info.pop(DUE))
        return
    session.info[WRITING] = True
    try:
        session.flush()
        due = sorted(session.info.pop(DUE, set()))
        for page_id in due:
            page = session.get(Page, page_id)
            if page is not None:
                write(session, page)
    finally:
        session.info[WRITING] = False


def _after_rollback(session: Session) -> None:
    session.info.pop(DUE, None)


@contextmanager
def one_change(session: Session) -> Iterator[None]:
    """One change made of several commits (an invoice and its type 3 quote: the row, the
    quote's foreign_id, the processor's answer): the pages they touch get their models
    written once, with the outcome, by a commit at the end, not one build per commit.

    The page is nobody's to read before the change returns (its address is in the answer);
    one read meanwhile would build the model from the tables (`model_of`)."""
    if HELD in session.info:  # already inside one: the outer one writes
        yield
        return
    session.info[HELD] = set()
    try:
        yield
    finally:
        held: set[str] = session.info.pop(HELD)
        if held:
            mark(session, held)
            session.commit()


# Built once, run on the session's connection: the ORM's UPDATE would coerce the values into
# a new statement on every write and run it through its bulk-update steps (about a third of
# a model's write, measured), for a row it is told not to synchronise anyway.
_PAGES = db.table_of(Page)
WRITE_MODEL = (update(_PAGES).where(_PAGES.c.id == bindparam("page"))
               .values(model_json=bindparam("model"), model_version=_PAGES.c.model_version + 1,
                       outcome=bindparam("ended"))
               .returning(_PAGES.c.model_version))


def write(session: Session, page: Page, now: datetime | None = None) -> None:
    """Store the page's model (without the moment-of-reading fields) and bump its version,
    and beside it how the page ended (`outcome_of`), from the same row in the same statement:
    whatever changes a page writes both, so the back office never counts a stale outcome."""
    now = now or clock.now()
    model = pagekinds.page_model(session, page, now)
    stored: dict[str, Any] = {**model, DEADLINE: unix(deadline_of(model, now)),
                              FIAT_AT: unix(now) if model.get("fiat") else None}
    text = money.dumps(stored)
    outcome = outcome_of(page)
    version = session.connection().execute(WRITE_MODEL, {
        "page": page.id, "model": text, "ended": outcome}).scalar_one_or_none()
    if version is None:
        return  # deleted meanwhile (a discarded invoice page): nothing left to show
    # The loaded row is the one a page rendered later in this request reads: keep it true.
    set_committed_value(page, "model_json", text)
    set_committed_value(page, "model_version", version)
    set_committed_value(page, "outcome", outcome)


def outcome_of(page: Page) -> str | None:
    """How the page ended, from its own columns (as flushed: the writer runs after)."""
    return outcomes.outcome_of(page.kind, page.status, page.reason, page.amount,
                               page.amount_paid)


def deadline_of(model: PageModel, now: datetime) -> datetime | None:
    """When the page's clock reaches zero, recovered from the seconds left at writing."""
    left = model.get("seconds_left")
    return None if left is None else now + timedelta(seconds=int(left))


def read(session: Session, page_id: str, now: datetime | None = None
         ) -> tuple[bytes, str] | None:
    """The stored model as sent and its ETag (`answer`), in one SELECT by primary key; None
    if there is none yet."""
    stored = session.execute(select(Page.model_json).where(Page.id == page_id)).scalar()
    if stored is None:
        return None
    return answer(stored, now or clock.now())


def model_of(session: Session, page: Page, now: datetime | None = None) -> PageModel:
    """The page's model as the poll sends it: the stored one (already in the loaded row),
    built from the tables only for a page that has none yet."""
    if page.model_json is None:
        return pagekinds.page_model(session, page, now)
    return cast(PageModel, complete(json.loads(page.model_json), now or clock.now()))


def fiat_at(page: Page) -> int | None:
    """When the fiat value in the page's stored model was fetched (unix seconds)."""
    if page.model_json is None:
        return None
    stamp = json.loads(page.model_json).get(FIAT_AT)
    return None if stamp is None else int(stamp)


def answer(stored: str, now: datetime) -> tuple[bytes, str]:
    """The poll's body from the stored model, and its ETag. The tag is the stored model's
    (and whether its fiat value is still shown), not the body's: the seconds left change
    every second while nothing else does, and the page ticks its countdown by itself from
    the last full answer. So a poll that brings nothing new is a bodiless 304 all the way
    through a countdown, not a full model every few seconds."""
    model = complete(json.loads(stored), now)
    body = json.dumps(model, separators=(",", ":"), ensure_ascii=False).encode()
    shown = b"" if model.get("fiat") is not None else b"\x00no fiat"
    return body, etag(stored.encode() + shown)


def complete(model: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Add what only the moment of reading knows: the seconds left, and drop a fiat value
    that has grown too old to call approximate."""
    deadline = model.pop(DEADLINE, None)
    fiat_at = model.pop(FIAT_AT, None)
    stamp = unix(now)
    if deadline is not None and not model.get("final"):
        model["seconds_left"] = max(0, deadline - stamp)
    if fiat_at is not None and stamp - fiat_at > rates.SHOWN_MAX_AGE:
        model["fiat"] = None
    return model


def etag(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=12).hexdigest()


def install(session_factory: Any) -> None:
    """Hook the writer into every session the factory makes."""
    event.listen(session_factory, "before_flush", _before_flush)
    event.listen(session_factory, "before_commit", _before_commit)
    event.listen(session_factory, "after_rollback", _after_rollback)
