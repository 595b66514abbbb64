"""Deposit addresses: one per (merchant, foreign_id, currency, convert_to), taken once, ever.

Many first clicks on a new link arrive together (a shop's "pay" button, a sale). The first
one claims the address (an `AddressClaim` row, committed before the processor is asked: the
one commit correctness needs besides the final one, which stores the address, ends the claim
and opens the page) and calls `addresses/take` once; the others wait for the address it
stores, reading the database, never holding a transaction open, and reach the same page. A
failed call deletes its claim, so the customer's next click tries again; a claim whose
request died is taken over once it expires. The processor is asked exactly once per address
however many clicks arrive.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import ColumnElement, and_, delete, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from .. import clock, processor, terminal
from ..models import AddressClaim, DepositAddress

log = logging.getLogger(__name__)

# Seconds a claim outlives the processor timeout before another request may take it over:
# its request is then dead or stuck (a create is never retried, so one timeout bounds it).
CLAIM_GRACE = 5.0
# Seconds between a waiting request's looks at the database: short at first (the address
# usually comes within tens of milliseconds), then longer, to keep twenty waiters cheap.
FIRST_POLL, LAST_POLL = 0.02, 0.2


class StillTaking(processor.Unavailable):
    """Another request is taking this address and has not finished in time, or failed."""


@dataclass(frozen=True)
class Key:
    merchant_id: int
    foreign_id: str
    currency: str
    convert_to: str  # "" when not converted

    @classmethod
    def of(cls, link: terminal.TerminalLink) -> Key:
        return cls(link.merchant.client_id, link.foreign_id, link.currency,
                   link.convert_to or "")

    def matches(self, model: type[DepositAddress] | type[AddressClaim]) -> ColumnElement[bool]:
        return and_(model.merchant_id == self.merchant_id, model.foreign_id == self.foreign_id,
                    model.currency == self.currency, model.convert_to == self.convert_to)


def find(session: Session, key: Key) -> DepositAddress | None:
    return session.scalar(select(DepositAddress).where(key.matches(DepositAddress)))


def for_link(session: Session, link: terminal.TerminalLink) -> DepositAddress:
    """The link's address: stored, taken now by this request, or by another one meanwhile.

    An address this request takes is left flushed, not committed, with its claim deleted in
    the same transaction: the caller commits it with the page that shows it, so a first click
    commits twice (the claim, then address and page), and the waiters see the address and
    the claim's end in one commit. Nothing else may be pending when this is called: a claim
    lost to another request is rolled back.

    Raises a `processor.ProcessorError` when the processor refused or failed (this request's
    call or the one it waited for); nothing is left claimed then.
    """
    key = Key.of(link)
    row = find(session, key)
    if row is not None:
        return row
    lease = float(current_app.config.get("PROCESSOR_TIMEOUT", 10.0)) + CLAIM_GRACE
    claimed = claim(session, key, lease)
    if claimed is None:
        return wait_for(session, key, lease)
    if isinstance(claimed, DepositAddress):
        return claimed
    try:
        taken = processor.client_for(link.merchant).addresses_take(
            link.currency, link.foreign_id, convert_to=link.convert_to)
    except BaseException:
        release(session, key, claimed)
        raise
    return store(session, key, claimed, taken)


def claim(session: Session, key: Key, lease: float) -> str | DepositAddress | None:
    """A token once this request's claim is committed: it may ask the processor. The address
    itself when one was stored just before the claim; None while another request is asking.

    Both end the lookups' transaction: no processor call and no wait runs inside one.
    """
    token = secrets.token_hex(16)
    now = clock.now()
    until = now + timedelta(seconds=lease)
    session.add(AddressClaim(merchant_id=key.merchant_id, foreign_id=key.foreign_id,
                             currency=key.currency, convert_to=key.convert_to,
                             token=token, until=until))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        if not take_over(session, key, token, now, until):
            session.rollback()
            return None
    # The claim's row is this transaction's now, so the request that stored an address and
    # let its claim go just before ours is seen here: then ours is rolled back, never
    # committed, and the address serves.
    row = find(session, key)
    if row is not None:
        session.rollback()
        return row
    session.commit()
    return token


def take_over(session: Session, key: Key, token: str, now: datetime, until: datetime) -> bool:
    """The claim is held: by a live request, or by one that died holding it (taken over, by
    one request only). Whether this request holds it now (uncommitted)."""
    taken_over = session.execute(
        update(AddressClaim).where(key.matches(AddressClaim), AddressClaim.until < now)
        .values(token=token, until=until))
    if taken_over.rowcount != 1:  # type: ignore[attr-defined]
        return False
    log.warning("address claim of merchant %s expired; taken over", key.merchant_id)
    return True


def wait_for(session: Session, key: Key, lease: float) -> DepositAddress:
    """The address another request is taking, once it is stored (at most `lease` seconds)."""
    deadline = time.monotonic() + lease
    pause = FIRST_POLL
    while True:
        # The claim first, then the address: the holder stores one and deletes the other in
        # one commit, so "no claim" followed by "no address" means its call failed.
        held = session.scalar(select(AddressClaim.token).where(key.matches(AddressClaim)))
        row = find(session, key)
        session.rollback()  # no transaction stays open between looks
        if row is not None:
            return row
        if held is None:
            raise StillTaking("the request taking this address failed")
        if time.monotonic() >= deadline:
            raise StillTaking("the request taking this address has not finished")
        time.sleep(pause)
        pause = min(pause * 1.5, LAST_POLL)


def store(session: Session, key: Key, token: str, taken: processor.Address) -> DepositAddress:
    """Keep the address and let the claim go, flushed in one transaction that the caller
    commits (with the page)."""
    row = DepositAddress(
        merchant_id=key.merchant_id, foreign_id=key.foreign_id, currency=key.currency,
        convert_to=key.convert_to, address=taken.address, tag=taken.tag,
        processor_id=taken.id, created_at=clock.now())
    try:
        session.add(row)
        session.execute(delete(AddressClaim).where(key.matches(AddressClaim),
                                                   AddressClaim.token == token))
        session.flush()
    except IntegrityError:
        # Only when this request outlived its claim and the one that took it over stored
        # an address first: that one is kept.
        session.rollback()
        winner = find(session, key)
        if winner is None:
            raise
        log.warning("address of merchant %s taken twice at the processor (claim expired); "
                    "processor id %s left unused", key.merchant_id, taken.id)
        return winner
    return row


def release(session: Session, key: Key, token: str) -> None:
    """Let the next click try again. If even this fails, the claim expires on its own."""
    try:
        session.rollback()
        session.execute(delete(AddressClaim).where(key.matches(AddressClaim),
                                                   AddressClaim.token == token))
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.warning("address claim of merchant %s not released; it expires on its own",
                    key.merchant_id)
