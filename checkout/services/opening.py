"""Opening a Payment Terminal link, and "make another payment" on a paid page.

A verified link (terminal.TerminalLink) opens its page, reopens it, or opens a fresh one
once the last is final; the outcome is a value the customer route renders. Each change is
written in as few commits as correctness allows, and so the page's stored model (the
snapshot hook writes it at every commit that touches a page) is built once per change:
- a fresh page is inserted in one commit, after its fiat rate is refreshed, not before it,
  with the address this request took and the finished page's link let go: a first click
  on a new link commits twice (the address's claim, then everything else);
- a link let go by its finished page moves by an UPDATE statement, not a changed object:
  the link's digest is no part of the old page's model, so that model is not rewritten.
The address claim's commit of addresses.py stays: many first clicks on one new link ask the
processor once, and no transaction is held across a processor call.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import limits, money, processor, rates, terminal
from ..models import DepositAddress, Page
from ..pagekinds import deposit, present
from . import addresses

log = logging.getLogger(__name__)

PAGE_TOKEN_BYTES = 24
# Seconds opening a link may wait for a fresh rate.
RATE_TIMEOUT = 3.0

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Opened:
    """The link's page (new, reopened, or the paid page of a paid order)."""

    page_id: str


@dataclass(frozen=True)
class Refused:
    """The link asks for less than the network accepts (limits.refuse_link)."""

    below: limits.BelowMinimum


@dataclass(frozen=True)
class NotPayable:
    """The processor refuses this currency for this customer as such: trying again would
    not help."""


@dataclass(frozen=True)
class Retry:
    """The processor failed or is busy: nothing was made, the next click tries again."""


Outcome = Opened | Refused | NotPayable | Retry


def open_link(session: Session, link: terminal.TerminalLink, *, now: Clock,
              rates_max_age: int) -> Outcome:
    """Take (or reuse) the link's address and open (or reopen) its page."""
    page = page_for_link(session, link.merchant.client_id, link.digest)
    retiring: Page | None = None
    if page is not None:
        if not deposit.is_final(page.status, page.reason) or paid_in_full(page):
            # A paid order's link reopens its paid page too: a fresh "waiting" page would
            # invite a second payment. Paying again is a deliberate action there.
            return Opened(page.id)
        retiring = page
    below = limits.refuse_link(session, link)
    if below is not None:
        if retiring is not None:
            retire_link(session, retiring)  # the finished page lets its link go, refused or not
            session.commit()
        return Refused(below)
    if link.amount is not None:
        remember_rate(session, link, now=now, max_age=rates_max_age)
    try:
        address = addresses.for_link(session, link)
    except processor.ValidationError as exc:
        log.warning("addresses/take refused for merchant %s: %s", link.merchant.client_id,
                    sorted(exc.errors) or exc.code)
        return NotPayable()
    except processor.ProcessorError as exc:
        log.warning("addresses/take failed for merchant %s: %s", link.merchant.client_id,
                    type(exc).__name__)
        return Retry()
    return Opened(open_page(session, link, address, now(), retiring=retiring).id)


def page_for_link(session: Session, merchant_id: int, digest: str) -> Page | None:
    return session.scalar(select(Page).where(
        Page.merchant_id == merchant_id, Page.link_digest == digest))


def paid_in_full(page: Page) -> bool:
    """An amount was asked and confirmed in full (or more); an open-amount (top-up) page
    never counts: its link opens a fresh page once the last one is final."""
    return (page.amount is not None and page.status == deposit.CONFIRMED
            and deposit.is_final(page.status, page.reason))


def retire_link(session: Session, page: Page) -> None:
    """A finished page lets its link go: a terminal link is often a standing "top up" link
    (foreign_id = the customer), and the next payment deserves a fresh page on the same
    address. The finished page keeps its id and stays readable. Committed with what follows
    (the fresh page takes the digest in the same transaction)."""
    session.execute(update(Page).where(Page.id == page.id).values(link_digest=None))


def open_page(session: Session, link: terminal.TerminalLink, address: DepositAddress,
              moment: datetime, *, retiring: Page | None = None) -> Page:
    """The link's fresh page, in one commit with what opening it changed: the finished page
    it replaces lets the link go, and an address taken by this request is stored (flushed by
    addresses.for_link). That address cannot meet a page already holding this link: such a
    page would show an address stored for the same key, and storing ours would have failed."""
    page = Page(
        id=secrets.token_urlsafe(PAGE_TOKEN_BYTES), kind=deposit.KIND.name,
        merchant_id=link.merchant.client_id, link_digest=link.digest,
        foreign_id=link.foreign_id, currency=link.currency,
        fiat_currency=present.fiat_for(link.convert_to),
        amount=None if link.amount is None else money.text(link.amount),
        amount_paid="0", address_id=address.id, address=address.address, tag=address.tag,
        status=deposit.WAITING, reason=None, is_iframe=link.is_iframe,
        url_back=link.url_back, created_at=moment, updated_at=moment,
    )
    if retiring is not None:
        retire_link(session, retiring)
    session.add(page)
    try:
        session.commit()
    except IntegrityError:
        # The same link opened twice at once: both customers get the first page.
        session.rollback()
        winner = page_for_link(session, link.merchant.client_id, link.digest)
        if winner is None:
            raise
        return winner
    return page


def remember_rate(session: Session, link: terminal.TerminalLink, *, now: Clock,
                  max_age: int) -> Decimal | None:
    """Refresh the fiat rate of the page about to open, if stale (opening a link only:
    never page views or polls). Before the page exists, so that its model is built once,
    with the rate, when the page is inserted; before the address is claimed, so that no
    processor call waits inside the transaction that stores the address."""
    fiat = present.fiat_for(link.convert_to)
    if fiat is None:
        return None
    known = rates.fresh(link.currency, fiat, now(), max_age)
    if known is not None:
        return known  # this process read or fetched it lately: no statement, no call

    def fetch(currency_from: str, currency_to: str) -> Decimal:
        # One quick try: the fiat value is a courtesy, and a customer is waiting for the page.
        quick = processor.client_for(link.merchant, retry_delays=(), max_timeout=RATE_TIMEOUT)
        return quick.currencies_rates(currency_from, currency_to).price

    try:
        # What a fetch stores is committed apart from the address's claim, which a request
        # that loses it rolls back.
        return rates.refresh(session, link.currency, fiat, fetch, now=now(), max_age=max_age)
    except IntegrityError:
        session.rollback()  # another request stored this pair's first quote just now
        return None


# ---------------------------------------------------------------- pay again


def pay_again(session: Session, page: Page, *, now: Clock) -> str:
    """"Make another payment" on a paid page: the same order's link moves to a fresh page
    on the same address. The id of the page to show: the fresh one, or this one when it
    was not paid in full."""
    if not paid_in_full(page):
        return page.id
    # Sent twice (a double click, the back button): the page made the first time serves.
    fresh = (successor(session, page) if page.link_digest is None
             else next_page(session, page, now()))
    return (fresh or page).id


def successor(session: Session, page: Page) -> Page | None:
    """The newest page opened after this one for the same order and address."""
    return session.scalar(select(Page).where(
        Page.merchant_id == page.merchant_id, Page.kind == page.kind,
        Page.foreign_id == page.foreign_id, Page.address_id == page.address_id,
        Page.created_at >= page.created_at, Page.id != page.id,
    ).order_by(Page.created_at.desc(), Page.id.desc()).limit(1))


def next_page(session: Session, page: Page, moment: datetime) -> Page:
    """A fresh page for the same link, address and amount; the link now opens it."""
    digest = page.link_digest
    fresh = Page(
        id=secrets.token_urlsafe(PAGE_TOKEN_BYTES), kind=page.kind, merchant_id=page.merchant_id,
        link_digest=digest, foreign_id=page.foreign_id, currency=page.currency,
        fiat_currency=page.fiat_currency, amount=page.amount,
        amount_paid="0", address_id=page.address_id, address=page.address, tag=page.tag,
        status=deposit.WAITING, reason=None, is_iframe=page.is_iframe, url_back=page.url_back,
        created_at=moment, updated_at=moment)
    retire_link(session, page)
    session.add(fresh)
    try:
        session.commit()
    except IntegrityError:
        # Two clicks at once: the first made the fresh page, the second goes there too.
        session.rollback()
        winner = page_for_link(session, page.merchant_id, digest) if digest else None
        if winner is None:
            raise
        return winner
    return fresh
