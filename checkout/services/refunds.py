"""Money a page owes back, settled with its customer: what is owed, the customer's request, the
merchant's decision, and the one withdrawal that pays it.

Never twice, never too much:
- what is owed is recomputed from the page's confirmed payments whenever a refund is asked
  for or approved, with the page locked, and the refunds that hold money never add up to
  more (refund_rules.still_owed);
- every move is a conditional UPDATE from the state it leaves (refund_news.move): of two
  approvals, two callbacks or a callback and an answer, one moves and the other finds it
  moved;
- the withdrawal carries our `foreign_id`, fixed when the customer asked, and is called with
  no database transaction open after `send_started_at` is committed: a worker killed in the
  call, or an answer lost on the way, leaves an approved refund that is sent again only
  after a lease, under the same foreign_id, which the processor refuses as a duplicate; we
  then ask it what became of the first call.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from .. import audit, clock, db, money, payout_addresses, policies, processor, rates
from .. import refund_rules as rules
from ..models import Merchant, Page, Refund
from ..pagekinds import present
from ..pagekinds.owed import held as _held
from ..pagekinds.owed import owed
from ..pagekinds.owed import places as _places
from . import reconcile, refund_news
from .refund_news import Change, move

log = logging.getLogger(__name__)

# A withdrawal call begun this long ago without an answer stored is asked again (under the
# same foreign_id): longer than the client's longest call with its retries.
SEND_LEASE = timedelta(minutes=5)
# A refund sent without word from the processor for this long is asked about.
ASK_AFTER = timedelta(minutes=30)
BATCH = 50


class Refused(Exception):
    """A request or decision that cannot be taken; `code` for programs, `message` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


NOTHING_OWED = "nothing_owed"
TOO_SMALL = "too_small"
TOO_MUCH = "too_much"
BAD_AMOUNT = "bad_amount"
BAD_DESTINATION = "bad_destination"
NOT_FOUND = "not_found"
DECIDED = "decided"
CHANGED = "changed"

_MESSAGES = {
    NOTHING_OWED: _l("Nothing is owed back on this payment."),
    TOO_SMALL: _l("This amount is too small to send back: the network fee would take all of "
                  "it, or what is left is below the smallest amount the network accepts."),
    TOO_MUCH: _l("This is more than is owed back on this payment."),
    BAD_AMOUNT: _l("Enter the amount as a number, such as 0.0015."),
    BAD_DESTINATION: _l("This address cannot receive a refund."),
    NOT_FOUND: _l("This refund does not exist."),
    DECIDED: _l("This refund was already decided."),
    CHANGED: _l("The payments on this page changed since the refund was asked for: it "
                "cannot be approved as it stands."),
}


def refused(code: str) -> Refused:
    return Refused(code, str(_MESSAGES[code]))


def _lock_page(session: Session, page: Page) -> None:
    """Take the page's row before reading what it owes: two requests (or a request and an
    approval) for one page then follow one another, on SQLite (the write takes the lock)
    and on PostgreSQL (the row's lock) alike."""
    session.execute(update(Page).where(Page.id == page.id)
                    .values(updated_at=Page.updated_at)
                    .execution_options(synchronize_session=False))


# ---------------------------------------------------------------------------------------------
# The customer's request


def request(session: Session, page: Page, address: str, tag: str | None,
            amount: Decimal | None = None, *, now: datetime | None = None,
            testnet: bool | None = None) -> Refund:
    """The customer asks for money owed back to `address` (+ `tag`), checked for the page's
    network (`testnet` None: the site's own mode). `amount` None asks for everything still
    owed. Approved at once when the merchant's policy lets a refund this small through; the
    caller commits, then sends."""
    now = now or clock.now()
    destination = _destination(page, address, tag, testnet)
    _lock_page(session, page)
    due = owed(session, page)
    if due is None or due.left <= 0:
        raise refused(NOTHING_OWED)
    wanted = due.left if amount is None else amount
    if not wanted.is_finite() or wanted <= 0 or wanted != money.floor(
            wanted, _places(due.currency)):
        raise refused(BAD_AMOUNT)
    if wanted > due.left:
        raise refused(TOO_MUCH)
    receive = rules.to_receive(wanted, due.currency, _places(due.currency))
    if receive is None or (due.minimum is not None and receive < due.minimum):
        raise refused(TOO_SMALL)
    refund = Refund(page_id=page.id, merchant_id=page.merchant_id,
                    foreign_id="rf" + secrets.token_hex(12), cause=due.cause,
                    state=rules.REQUESTED, currency=due.currency,
                    balance_currency=due.balance_currency, amount=money.plain(wanted),
                    amount_received=money.plain(receive), address=destination.address,
                    tag=destination.tag,
                    requested_at=now, updated_at=now)
    session.add(refund)
    session.flush()
    refund_news.tell_shop(session, refund)
    if _approves_itself(session, page, refund):
        move(session, refund, rules.APPROVED, now)
        audit.record(session, "refund.approve", actor="policy", merchant_id=page.merchant_id,
                     target=page.id, detail={"refund": refund.id, "amount": refund.amount,
                                             "currency": refund.currency})
    return refund


def _destination(page: Page, address: str, tag: str | None,
                 testnet: bool | None) -> payout_addresses.Destination:
    """The address and tag as the page's network takes them, or the customer is told why
    not: whatever the form checked, no refund is kept for an address its chain refuses."""
    found = payout_addresses.check(page.currency, address, tag,
                                   testnet=present.testnet() if testnet is None else testnet)
    if isinstance(found, payout_addresses.Refusal):
        raise Refused(BAD_DESTINATION, str(found.message))
    return found


def _approves_itself(session: Session, page: Page, refund: Refund) -> bool:
    policy = policies.of(page.merchant)
    rate = rates.cached(session, refund.currency, policy.currency,
                        fetched_since=clock.now() - timedelta(seconds=rates.SHOWN_MAX_AGE))
    return policies.approves_itself(policy, Decimal(refund.amount), rate)


def cancel(session: Session, page: Page, refund_id: int, *, now: datetime | None = None
           ) -> Refund:
    """The customer withdraws a request nobody decided yet."""
    refund = session.scalar(select(Refund).where(Refund.id == refund_id,
                                                 Refund.page_id == page.id))
    if refund is None:
        raise refused(NOT_FOUND)
    if not move(session, refund, rules.CANCELLED, now or clock.now(),
                Change(reason="cancelled by the customer")):
        raise refused(DECIDED)
    return refund


# ---------------------------------------------------------------------------------------------
# The merchant's decision


def find(session: Session, refund_id: int, merchant_ids: list[int] | None) -> Refund:
    """A refund the person may see (`merchant_ids` None: an operator, every merchant)."""
    query = select(Refund).where(Refund.id == refund_id)
    if merchant_ids is not None:
        query = query.where(Refund.merchant_id.in_(merchant_ids))
    refund = session.scalar(query)
    if refund is None:
        raise refused(NOT_FOUND)
    return refund


def approve(session: Session, refund_id: int, *, user_id: int, actor: str,
            merchant_ids: list[int] | None, address: str | None = None,
            now: datetime | None = None) -> Refund:
    """A merchant user approves; the caller commits, then calls `send`. What the page owes
    is checked again: money that changed since the request (a payment cancelled, the rest
    paid after all) must not be paid out."""
    now = now or clock.now()
    refund = find(session, refund_id, merchant_ids)
    page = session.get(Page, refund.page_id)
    assert page is not None
    _lock_page(session, page)
    session.refresh(refund)
    if refund.state != rules.REQUESTED:
        raise refused(DECIDED)
    due = owed(session, page)
    held_by_others = rules.held(_held(session, page.id, but=refund.id))
    if due is None or held_by_others + Decimal(refund.amount) > due.total:
        raise refused(CHANGED)
    if not move(session, refund, rules.APPROVED, now, Change(decided_by=user_id)):
        raise refused(DECIDED)
    audit.record(session, "refund.approve", actor=actor, user_id=user_id,
                 merchant_id=refund.merchant_id, target=refund.page_id, address=address,
                 detail={"refund": refund.id, "amount": refund.amount,
                         "currency": refund.currency})
    return refund


def reject(session: Session, refund_id: int, reason: str, *, user_id: int, actor: str,
           merchant_ids: list[int] | None, address: str | None = None,
           now: datetime | None = None) -> Refund:
    refund = find(session, refund_id, merchant_ids)
    if not move(session, refund, rules.REJECTED, now or clock.now(),
                Change(reason=reason, decided_by=user_id)):
        raise refused(DECIDED)
    audit.record(session, "refund.reject", actor=actor, user_id=user_id,
                 merchant_id=refund.merchant_id, target=refund.page_id, address=address,
                 detail={"refund": refund.id, "reason": reason})
    return refund


# ---------------------------------------------------------------------------------------------
# The withdrawal


SENT, LATER, BUSY = "sent", "later", "busy"


def send(refund_id: int) -> str:
    """Pay an approved refund with one `withdrawal/crypto` call, outside any transaction.

    SENT: the processor has it (answered now, or refused our foreign_id as already used, so
    an earlier call reached it); LATER: no answer (the lease runs out, then it is asked
    again); BUSY: not approved, or another worker holds it. A refusal fails the refund with
    the processor's reason: the money stays owed, and the customer may ask again.
    """
    session = db.session()
    now = clock.now()
    claimed = session.execute(
        update(Refund).where(Refund.id == refund_id, Refund.state == rules.APPROVED,
                             or_(Refund.send_started_at.is_(None),
                                 Refund.send_started_at < now - SEND_LEASE))
        .values(send_started_at=now).execution_options(synchronize_session=False))
    session.commit()
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return BUSY
    refund = session.get(Refund, refund_id, populate_existing=True)
    assert refund is not None
    merchant = session.get(Merchant, refund.merchant_id)
    assert merchant is not None
    client = processor.client_for(merchant)
    try:
        answer = _withdraw(client, refund)
    except processor.ValidationError as exc:
        session.rollback()
        if processor.is_foreign_id_taken(exc):
            _learn_fate(session, client, merchant, refund)
            session.commit()
            return SENT
        _refused_by_processor(session, refund, exc)
        session.commit()
        return LATER
    except processor.ProcessorError as exc:
        session.rollback()
        log.warning("refund %s: no answer from the processor (%s); asked again later",
                    refund_id, type(exc).__name__)
        return LATER
    _record_answer(session, refund, answer)
    session.commit()
    return SENT


def _withdraw(client: processor.ProcessorClient, refund: Refund) -> processor.Withdrawal:
    receive = Decimal(refund.amount_received or "0")
    if refund.balance_currency != refund.currency:
        return client.withdrawal_crypto(
            foreign_id=refund.foreign_id, currency=refund.balance_currency,
            convert_to=refund.currency, amount_to=receive, address=refund.address,
            tag=refund.tag)
    return client.withdrawal_crypto(foreign_id=refund.foreign_id, currency=refund.currency,
                                    amount=receive, address=refund.address, tag=refund.tag)


def _record_answer(session: Session, refund: Refund, answer: processor.Withdrawal) -> None:
    refund = _locked(session, refund.id)
    new = refund_news.STATE_OF_STATUS.get(answer.status, rules.SENT)
    if refund.state == rules.APPROVED:
        move(session, refund, new, clock.now(), Change(processor_id=answer.id))
    elif refund.processor_id is None:  # its callback came first
        refund.processor_id = answer.id


def _refused_by_processor(session: Session, refund: Refund,
                          exc: processor.ValidationError) -> None:
    refund = _locked(session, refund.id)
    reason = "; ".join(f"{k}: {v}" for k, v in sorted(exc.errors.items())) or exc.message
    move(session, refund, rules.FAILED, clock.now(), Change(reason=reason[:500]))


def _learn_fate(session: Session, client: processor.ProcessorClient, merchant: Merchant,
                refund: Refund) -> None:
    """The processor already has a withdrawal under our foreign_id (an earlier call's answer
    was lost): it is sent; what became of it is asked now, and else told by its callback."""
    refund = _locked(session, refund.id)
    if refund.state == rules.APPROVED:
        move(session, refund, rules.SENT, clock.now())
    try:
        info = client.transactions_info(foreign_id=refund.foreign_id)
    except processor.ProcessorError:
        return
    reconcile.learn(session, merchant, info)


def _locked(session: Session, refund_id: int) -> Refund:
    refund = session.scalars(select(Refund).where(Refund.id == refund_id).with_for_update()
                             .execution_options(populate_existing=True)).one()
    return refund


def send_due(limit: int = BATCH) -> int:
    """Worker task: send approved refunds not sent yet (or whose call's lease ran out), and
    ask about sent ones the processor has said nothing of for a while."""
    session = db.session()
    now = clock.now()
    waiting = session.scalars(
        select(Refund.id).where(Refund.state == rules.APPROVED,
                                or_(Refund.send_started_at.is_(None),
                                    Refund.send_started_at < now - SEND_LEASE))
        .order_by(Refund.id).limit(limit)).all()
    quiet = session.scalars(
        select(Refund.id).where(Refund.state.in_((rules.SENT, rules.PENDING)),
                                Refund.updated_at < now - ASK_AFTER)
        .order_by(Refund.updated_at).limit(limit)).all()
    session.rollback()
    done = sum(1 for refund_id in waiting if send(refund_id) == SENT)
    for refund_id in quiet:
        done += ask(refund_id)
    return done


def ask(refund_id: int) -> int:
    """Ask the processor about one sent refund; 1 when its answer moved the refund."""
    session = db.session()
    refund = session.get(Refund, refund_id)
    if refund is None:
        return 0
    merchant = session.get(Merchant, refund.merchant_id)
    assert merchant is not None
    before = refund.state
    # Asked or not, it waits ASK_AFTER again before the next question.
    session.execute(update(Refund).where(Refund.id == refund_id)
                    .values(updated_at=clock.now()).execution_options(
                        synchronize_session=False))
    session.commit()
    try:
        info = processor.client_for(merchant).transactions_info(foreign_id=refund.foreign_id)
    except processor.ProcessorError:
        return 0
    reconcile.learn(session, merchant, info)
    session.commit()
    session.refresh(refund)
    return int(refund.state != before)
