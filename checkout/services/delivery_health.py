"""The back office's deliveries: the outbox across the merchants a person may see, each
merchant's webhook health, and the acts on it (retry one, replay many, pause and resume).

Every function takes the merchant ids the person's access allows (None: every merchant,
an operator) and never reaches outside them: an id of another merchant is as unknown as
one that does not exist. Every act is audited in the transaction that does it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, case, func, or_, select, true, update
from sqlalchemy.orm import Session

from .. import audit, clock
from ..models import Callback, Deposit, Invoice, InvoiceQuote, Merchant, Page
from ..models import Delivery as DeliveryRow
from . import deliveries, periods

FAILING = "failing"  # pending, tried at least once, and the last try failed
GIVEN_UP = "given_up"  # failed: every retry was spent
WAITING = "waiting"  # pending, nothing went wrong yet (or waiting while paused)
DELIVERED = "delivered"
STATES = (FAILING, GIVEN_UP, WAITING, DELIVERED)

PAGE_SIZE = 50
# Health looks at the deliveries created in this window.
HEALTH_WINDOW = timedelta(hours=24)
# The most deliveries one replay re-opens: a bigger one is split by date range.
REPLAY_BOUND = 1000


class TooMany(ValueError):
    """More deliveries match a replay than one action may re-open."""


class CountChanged(ValueError):
    """More deliveries match a replay than the person confirmed."""


class Busy(RuntimeError):
    """A worker is sending this delivery right now."""


@dataclass(frozen=True)
class Actor:
    """Who acts, for the audit log."""

    user_id: int
    email: str
    address: str | None


@dataclass(frozen=True)
class Filter:
    state: str | None = None
    merchant_id: int | None = None
    since: date | None = None
    until: date | None = None  # inclusive


@dataclass(frozen=True)
class Row:
    id: int
    merchant_id: int
    merchant_name: str
    state: str  # one of STATES
    page_id: str | None
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None  # only while it is still to be sent
    created_at: datetime


@dataclass(frozen=True)
class Listing:
    rows: list[Row]
    after: int | None  # the cursor of the next page, None on the last


@dataclass(frozen=True)
class Health:
    merchant_id: int
    name: str
    paused_at: datetime | None
    attempted: int  # deliveries created within HEALTH_WINDOW and tried at least once
    delivered: int  # of those, delivered
    last_error: str | None
    oldest_waiting: timedelta | None

    @property
    def success_percent(self) -> int | None:
        if not self.attempted:
            return None
        share = Decimal(self.delivered) * 100 / Decimal(self.attempted)
        return int(share.to_integral_value(rounding=ROUND_DOWN))


def state_of(row: DeliveryRow) -> str:
    if row.state == deliveries.DELIVERED:
        return DELIVERED
    if row.state == deliveries.FAILED:
        return GIVEN_UP
    return FAILING if row.attempts > 0 and row.last_error else WAITING


def _state_is(state: str) -> ColumnElement[bool]:
    failing = and_(DeliveryRow.state == deliveries.PENDING, DeliveryRow.attempts > 0,
                   DeliveryRow.last_error.is_not(None))
    if state == FAILING:
        return failing
    if state == GIVEN_UP:
        return DeliveryRow.state == deliveries.FAILED
    if state == DELIVERED:
        return DeliveryRow.state == deliveries.DELIVERED
    return and_(DeliveryRow.state == deliveries.PENDING, ~failing)


def _within(merchants: Sequence[int] | None) -> ColumnElement[bool]:
    return true() if merchants is None else DeliveryRow.merchant_id.in_(list(merchants))


def _matching(merchants: Sequence[int] | None, chosen: Filter) -> list[ColumnElement[bool]]:
    conditions = [_within(merchants)]
    if chosen.state in STATES:
        conditions.append(_state_is(chosen.state))
    if chosen.merchant_id is not None:
        conditions.append(DeliveryRow.merchant_id == chosen.merchant_id)
    conditions += periods.within_days(DeliveryRow.created_at, chosen.since, chosen.until)
    return conditions


def listing(session: Session, merchants: Sequence[int] | None, chosen: Filter,
            after: int | None = None, size: int | None = None) -> Listing:
    """Newest first, `size` (PAGE_SIZE) at a time; `after` is the last id of the previous
    page: the id index finds the next page at once however far the reader went."""
    size = size or PAGE_SIZE
    conditions = _matching(merchants, chosen)
    if after is not None:
        conditions.append(DeliveryRow.id < after)
    found = list(session.execute(
        select(DeliveryRow, Merchant.name)
        .join(Merchant, Merchant.client_id == DeliveryRow.merchant_id)
        .where(*conditions).order_by(DeliveryRow.id.desc()).limit(size + 1)).all())
    more = len(found) > size
    found = found[:size]
    pages = pages_of(session, [d.callback_id for d, _ in found if d.callback_id is not None])
    rows = [Row(id=d.id, merchant_id=d.merchant_id, merchant_name=name, state=state_of(d),
                page_id=pages.get(d.callback_id) if d.callback_id is not None else None,
                attempts=d.attempts, last_status=d.last_status, last_error=d.last_error,
                next_attempt_at=d.next_attempt_at if d.state == deliveries.PENDING else None,
                created_at=d.created_at) for d, name in found]
    return Listing(rows, rows[-1].id if more and rows else None)


def pages_of(session: Session, callback_ids: Iterable[int]) -> dict[int, str]:
    """The payment page each callback is about, where one is known.

    A deposit callback names the processor's transaction: its Deposit row holds our
    address, and the address's newest page is the payment. An invoice callback names the
    processor's invoice: one of our quotes, whose invoice has the page.
    """
    ids = sorted(set(callback_ids))
    if not ids:
        return {}
    found: dict[int, str] = {}
    for callback_id, page_id in session.execute(
            select(Callback.id, Page.id)
            .join(Deposit, and_(Deposit.merchant_id == Callback.merchant_id,
                                Deposit.processor_id == Callback.processor_id))
            .join(Page, Page.address_id == Deposit.address_id)
            .where(Callback.id.in_(ids), Callback.type.in_(("deposit", "deposit_exchange")))
            .order_by(Page.created_at)):
        found[callback_id] = page_id  # the newest page wins
    for callback_id, page_id in session.execute(
            select(Callback.id, Invoice.page_id)
            .join(InvoiceQuote, and_(InvoiceQuote.merchant_id == Callback.merchant_id,
                                     InvoiceQuote.processor_id == Callback.processor_id))
            .join(Invoice, Invoice.id == InvoiceQuote.invoice_id)
            .where(Callback.id.in_(ids), Callback.type == "invoice")):
        found[callback_id] = page_id
    return found


def health(session: Session, merchants: Sequence[int] | None, now: datetime,
           merchant_id: int | None = None) -> list[Health]:
    """Each merchant's webhook, as its deliveries of the last HEALTH_WINDOW show it."""
    chosen = select(Merchant.client_id, Merchant.name, Merchant.deliveries_paused_at)
    if merchants is not None:
        chosen = chosen.where(Merchant.client_id.in_(list(merchants)))
    if merchant_id is not None:
        chosen = chosen.where(Merchant.client_id == merchant_id)
    people = list(session.execute(chosen.order_by(Merchant.client_id)).all())
    ids = [row[0] for row in people]
    if not ids:
        return []
    tried = or_(DeliveryRow.attempts > 0, DeliveryRow.state == deliveries.DELIVERED)
    window: dict[int, tuple[int, int]] = {
        m: (int(n), int(ok or 0)) for m, n, ok in session.execute(
            select(DeliveryRow.merchant_id, func.count(),
                   func.sum(case((DeliveryRow.state == deliveries.DELIVERED, 1), else_=0)))
            .where(DeliveryRow.merchant_id.in_(ids), tried,
                   DeliveryRow.created_at >= now - HEALTH_WINDOW)
            .group_by(DeliveryRow.merchant_id))}
    oldest: dict[int, datetime] = dict(session.execute(
        select(DeliveryRow.merchant_id, func.min(DeliveryRow.created_at))
        .where(DeliveryRow.merchant_id.in_(ids), DeliveryRow.state == deliveries.PENDING)
        .group_by(DeliveryRow.merchant_id)).all())
    latest_error_ids = select(func.max(DeliveryRow.id)).where(
        DeliveryRow.merchant_id.in_(ids), DeliveryRow.last_error.is_not(None),
        DeliveryRow.state != deliveries.DELIVERED).group_by(DeliveryRow.merchant_id)
    errors: dict[int, str] = {m: e for m, e in session.execute(
        select(DeliveryRow.merchant_id, DeliveryRow.last_error)
        .where(DeliveryRow.id.in_(latest_error_ids))) if e is not None}
    return [Health(merchant_id=m, name=name, paused_at=paused,
                   attempted=window.get(m, (0, 0))[0], delivered=window.get(m, (0, 0))[1],
                   last_error=errors.get(m),
                   oldest_waiting=max(now - oldest[m], timedelta()) if m in oldest else None)
            for m, name, paused in people]


# ---------------------------------------------------------------------------------------------
# Acts


def merchant_of(session: Session, merchants: Sequence[int] | None, delivery_id: int) -> int:
    """The merchant of a delivery the person may see; LookupError for any other."""
    found = session.scalar(select(DeliveryRow.merchant_id).where(
        DeliveryRow.id == delivery_id, _within(merchants)))
    if found is None:
        raise LookupError(f"no delivery {delivery_id}")
    return found


def retry(session: Session, merchants: Sequence[int] | None, delivery_id: int,
          who: Actor) -> deliveries.Attempt:
    """Send one delivery now (re-opened if it was given up or delivered), audited.

    The re-opening, its lease and the audit entry are one transaction; the POST to the
    shop happens after it, with no transaction open.
    """
    merchant_id = merchant_of(session, merchants, delivery_id)
    config = deliveries.settings()
    owner = deliveries.reopen_and_claim(session, delivery_id, clock.now(), config.lease)
    if owner is None:
        session.rollback()
        raise Busy(f"delivery {delivery_id} is being sent right now")
    audit.record(session, "delivery.retry", actor=who.email, user_id=who.user_id,
                 merchant_id=merchant_id, target=f"delivery {delivery_id}",
                 address=who.address)
    session.commit()
    return deliveries.send_claimed(session, delivery_id, owner, config)


def _replay_ids(session: Session, merchants: Sequence[int] | None, chosen: Filter,
                now: datetime) -> list[int]:
    """What a replay would re-open: matching, and not held by a worker (those are being
    sent anyway); at most REPLAY_BOUND + 1, so that too many is seen without counting all."""
    return list(session.scalars(
        select(DeliveryRow.id).where(*_matching(merchants, chosen),
                                     or_(DeliveryRow.lease_until.is_(None),
                                         DeliveryRow.lease_until < now))
        .order_by(DeliveryRow.id).limit(REPLAY_BOUND + 1)).all())


def replay_count(session: Session, merchants: Sequence[int] | None, chosen: Filter) -> int:
    """How many deliveries a replay would re-open now (REPLAY_BOUND + 1 means too many)."""
    return len(_replay_ids(session, merchants, chosen, clock.now()))


def replay(session: Session, merchants: Sequence[int] | None, chosen: Filter,
           confirmed: int, who: Actor) -> int:
    """Re-open every delivery matching `chosen` for sending at once; how many, audited.

    Refused when more match than the person confirmed (more arrived since the preview) or
    than one action may re-open. Fewer is fine: the ones sent since need nothing.
    """
    if chosen.merchant_id is None or chosen.state not in STATES:
        raise ValueError("a replay names one merchant and one state")
    now = clock.now()
    ids = _replay_ids(session, merchants, chosen, now)
    if len(ids) > REPLAY_BOUND:
        raise TooMany(f"{len(ids)} deliveries match")
    if len(ids) > confirmed:
        raise CountChanged(f"{len(ids)} match, {confirmed} confirmed")
    reopened = 0
    if ids:
        result = cast(CursorResult[Any], session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id.in_(ids), or_(DeliveryRow.lease_until.is_(None),
                                                DeliveryRow.lease_until < now))
            .values(state=deliveries.PENDING, next_attempt_at=now,
                    attempts=case((DeliveryRow.state == deliveries.FAILED, 0),
                                  else_=DeliveryRow.attempts))
            .execution_options(synchronize_session=False)))
        reopened = result.rowcount
    audit.record(session, "delivery.replay", actor=who.email, user_id=who.user_id,
                 merchant_id=chosen.merchant_id, target=f"{reopened} deliveries",
                 detail={"state": chosen.state, "from": chosen.since, "to": chosen.until,
                         "count": reopened, "confirmed": confirmed},
                 address=who.address)
    session.commit()
    return reopened


def set_paused(session: Session, merchants: Sequence[int] | None, merchant_id: int,
               paused: bool, who: Actor) -> bool:
    """Pause or resume a merchant's deliveries, audited; whether anything changed."""
    if merchants is not None and merchant_id not in merchants:
        raise LookupError(f"no merchant {merchant_id}")
    merchant = session.get(Merchant, merchant_id, with_for_update=True)
    if merchant is None:
        raise LookupError(f"no merchant {merchant_id}")
    if (merchant.deliveries_paused_at is not None) == paused:
        session.rollback()
        return False  # a second click of the same button: nothing to do, nothing to audit
    merchant.deliveries_paused_at = clock.now() if paused else None
    audit.record(session, "deliveries.pause" if paused else "deliveries.resume",
                 actor=who.email, user_id=who.user_id, merchant_id=merchant_id,
                 target=f"merchant {merchant_id}", address=who.address)
    session.commit()
    return True
