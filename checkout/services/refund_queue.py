"""The back office's refunds: the ones waiting for a merchant's decision, and every other, across
the merchants a person may see.

Every function takes the merchant ids the person's access allows (None: every merchant, an
operator) and never reaches outside them: a refund of another merchant is as unknown as one
that does not exist. The decisions themselves are services.refunds' (approve, reject, send).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session

from .. import currencies
from .. import refund_rules as rules
from ..models import Merchant, Refund

PAGE_SIZE = 50
ALL = "all"  # the state filter that shows every refund
STATES = rules.STATES


class NotFound(LookupError):
    """No refund of that id among the merchants the person may see."""


@dataclass(frozen=True)
class Filter:
    state: str = rules.REQUESTED  # one of STATES, or ALL
    merchant_id: int | None = None


@dataclass(frozen=True)
class Row:
    id: int
    page_id: str
    merchant_id: int
    merchant_name: str
    cause: str
    state: str
    currency: str
    amount: str  # what leaves the merchant's balance
    amount_received: str | None  # what the customer's wallet gets
    address: str
    tag: str | None
    reason: str | None
    txid: str | None
    explorer_url: str | None
    requested_at: datetime
    updated_at: datetime

    @property
    def waiting(self) -> bool:
        """Still to be decided by a person."""
        return self.state in rules.WAITING_FOR_DECISION


@dataclass(frozen=True)
class Listing:
    rows: list[Row]
    after: int | None  # the cursor of the next page, None on the last


def _within(merchants: Sequence[int] | None) -> ColumnElement[bool]:
    return true() if merchants is None else Refund.merchant_id.in_(list(merchants))


def _query(merchants: Sequence[int] | None) -> Select[Refund, str]:
    return (select(Refund, Merchant.name)
            .join(Merchant, Merchant.client_id == Refund.merchant_id)
            .where(_within(merchants))
            # Sessions keep objects past a commit: read what is stored now (a decision,
            # a withdrawal's answer may have moved the refund since).
            .execution_options(populate_existing=True))


def _row(refund: Refund, merchant_name: str, testnet: bool) -> Row:
    return Row(id=refund.id, page_id=refund.page_id, merchant_id=refund.merchant_id,
               merchant_name=merchant_name, cause=refund.cause, state=refund.state,
               currency=refund.currency, amount=refund.amount,
               amount_received=refund.amount_received, address=refund.address,
               tag=refund.tag, reason=refund.reason, txid=refund.txid,
               explorer_url=currencies.explorer_url(refund.currency, refund.txid,
                                                    testnet=testnet),
               requested_at=refund.requested_at, updated_at=refund.updated_at)


def listing(session: Session, merchants: Sequence[int] | None, chosen: Filter,
            after: int | None = None, *, testnet: bool = False,
            size: int = PAGE_SIZE) -> Listing:
    """Newest first (ids grow with each request), `size` at a time, in one statement;
    `after` is the last id of the previous page."""
    query = _query(merchants)
    if chosen.state != ALL:
        query = query.where(Refund.state == chosen.state)
    if chosen.merchant_id is not None:
        query = query.where(Refund.merchant_id == chosen.merchant_id)
    if after is not None:
        query = query.where(Refund.id < after)
    found = session.execute(query.order_by(Refund.id.desc()).limit(size + 1)).all()
    rows = [_row(refund, name, testnet) for refund, name in found[:size]]
    return Listing(rows, rows[-1].id if len(found) > size else None)


def one(session: Session, refund_id: int, merchants: Sequence[int] | None, *,
        testnet: bool = False) -> Row:
    found = session.execute(_query(merchants).where(Refund.id == refund_id)).first()
    if found is None:
        raise NotFound(refund_id)
    return _row(found[0], found[1], testnet)


def of_page(session: Session, page_id: str, merchants: Sequence[int] | None, *,
            testnet: bool = False) -> list[Row]:
    """A payment's refunds, oldest first (the order they were asked for)."""
    found = session.execute(_query(merchants).where(Refund.page_id == page_id)
                            .order_by(Refund.id)).all()
    return [_row(refund, name, testnet) for refund, name in found]
