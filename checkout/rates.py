"""Cached processor rates (`RateQuote`): pages show an approximate fiat value from here.

The worker fetches every pair at once (`currencies/pairs`) once per `RATES_MAX_AGE`
seconds; opening a link may fetch its own pair once. A page view or a status poll never
does: buyers polling must not flood the processor.
Each process keeps a copy of the quotes it read or stored: opening a link asks it whether its
pair is fresh (`fresh`), with no SELECT for a rate this process saw less than `RATES_MAX_AGE`
seconds ago. A page's model reads the table (`cached`).
A quote older than `SHOWN_MAX_AGE` is not shown at all: while the processor cannot be
asked, yesterday's price would be a wrong "about" figure, not an approximate one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from . import clock, db, money, processor
from .models import Merchant, RateQuote

log = logging.getLogger(__name__)
Fetch = Callable[[str, str], Decimal]
# Seconds a quote may be shown as an approximate value (prices move a few % in an hour).
SHOWN_MAX_AGE = 3600


# This process's copy of the quotes it read or stored: (from, to) -> (rate, fetched_at).
COPY = "checkout.rates.copy"
Copy = dict[tuple[str, str], tuple[Decimal, datetime]]


def _copy() -> Copy:
    copy: Copy = current_app.extensions.setdefault(COPY, {})
    return copy


def _remember(currency_from: str, currency_to: str, rate: Decimal, fetched_at: datetime) -> None:
    _copy()[(currency_from, currency_to)] = (rate, fetched_at)


def _quote(session: Session, currency_from: str, currency_to: str) -> RateQuote | None:
    quote = session.scalar(select(RateQuote).where(
        RateQuote.currency_from == currency_from, RateQuote.currency_to == currency_to))
    if quote is not None:
        _remember(currency_from, currency_to, Decimal(quote.rate), quote.fetched_at)
    return quote


def fresh(currency_from: str, currency_to: str, now: datetime, max_age: int) -> Decimal | None:
    """The pair's rate from this process's copy while fetched less than `max_age` seconds
    ago; None otherwise (then the database is read, and the rate refreshed as before). The
    worker fetches every pair once per `RATES_MAX_AGE`, so a fresh copy is never staler than
    the table was allowed to be: reading the table for it again would buy nothing."""
    known = _copy().get((currency_from, currency_to))
    if known is None or now - known[1] >= timedelta(seconds=max_age):
        return None
    return known[0]


# A page's model reads its pair's rate at every change of the page (each callback): the two
# columns it needs, by a statement built once, with no ORM object made to read them.
RATE_OF = (select(RateQuote.rate, RateQuote.fetched_at)
           .where(RateQuote.currency_from == bindparam("currency_from"),
                  RateQuote.currency_to == bindparam("currency_to")))


def cached(session: Session, currency_from: str, currency_to: str, *,
           fetched_since: datetime | None = None) -> Decimal | None:
    """The last rate fetched for the pair; None if never fetched or fetched before
    `fetched_since` (when given). Read from the table: a page's model shows what every
    process would show, the worker's newest quote."""
    row = session.execute(RATE_OF, {"currency_from": currency_from,
                                    "currency_to": currency_to}).first()
    if row is None:
        return None
    rate = Decimal(row.rate)
    _remember(currency_from, currency_to, rate, row.fetched_at)
    if fetched_since is not None and row.fetched_at < fetched_since:
        return None
    return rate


def is_fresh(quote: RateQuote, now: datetime, max_age: int) -> bool:
    return now - quote.fetched_at < timedelta(seconds=max_age)


def refresh(session: Session, currency_from: str, currency_to: str, fetch: Fetch, *,
            now: datetime, max_age: int) -> Decimal | None:
    """The pair's rate, fetched only when the cached one is older than `max_age` seconds.

    A failed fetch keeps the old quote (a stale approximate value beats none) and is logged.
    What a fetch stores is committed here, apart from the caller's later work (see `store`
    for a concurrent first fetch); a fresh quote costs no commit.
    """
    quote = _quote(session, currency_from, currency_to)
    if quote is not None and (is_fresh(quote, now, max_age)
                              or was_attempted(quote, now, max_age)):
        return Decimal(quote.rate)
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("rates.refresh needs a session with nothing pending")
    session.commit()  # no processor call waits inside an open transaction
    quote = _quote(session, currency_from, currency_to)
    try:
        rate = fetch(currency_from, currency_to)
    except Exception as exc:  # any processor failure: the page works without a fiat value
        log.warning("rate %s/%s not refreshed: %s", currency_from, currency_to,
                    type(exc).__name__)
        return _failed(session, quote, now)
    if not rate.is_finite() or rate <= 0:
        log.warning("rate %s/%s refused: not a positive number", currency_from, currency_to)
        return _failed(session, quote, now)
    store(session, currency_from, currency_to, rate, now)
    session.commit()
    return rate


def was_attempted(quote: RateQuote, now: datetime, max_age: int) -> bool:
    return quote.attempted_at is not None and now - quote.attempted_at < timedelta(
        seconds=max_age)


def _failed(session: Session, quote: RateQuote | None, now: datetime) -> Decimal | None:
    """Keep the old quote, and remember the attempt so the next page view does not wait too."""
    if quote is None:
        return None
    quote.attempted_at = now
    session.commit()
    return Decimal(quote.rate)


def store(session: Session, currency_from: str, currency_to: str, rate: Decimal,
          now: datetime) -> None:
    """Upsert the pair's quote and flush. Another instance inserting the same pair at the same
    moment makes the flush raise IntegrityError: roll back, its quote is as good as ours."""
    quote = _quote(session, currency_from, currency_to)
    if quote is None:
        session.add(RateQuote(currency_from=currency_from, currency_to=currency_to,
                              rate=money.text(rate), fetched_at=now, attempted_at=now))
    else:
        quote.rate = money.text(rate)
        quote.fetched_at = quote.attempted_at = now
    session.flush()
    _remember(currency_from, currency_to, rate, now)


# ---------------------------------------------------------------- the worker's refresh

# More pairs than any processor lists: a bound on what one answer may make us store.
MAX_PAIRS = 5000
ATTEMPT = "checkout.rates.attempted"
MarkPages = Callable[[Session], None]
_CODE = re.compile(r"\A[A-Z0-9][A-Z0-9_-]{0,15}\Z")


def refresh_all(mark_pages: MarkPages) -> int:
    """Worker task: every pair's rate from one `currencies/pairs` call, once per
    `RATES_MAX_AGE`; pages and polls only read what this stores. Returns pairs stored.
    `mark_pages` is called in the transaction that stores them (snapshot.mark_open_pages:
    the models of the pages that show these rates are written with it).

    One call for every pair, not one per pair: `exchange/calculate` and friends are rate
    limited per IP, and a sale with many currencies must not spend them.
    """
    session = db.session()
    max_age = timedelta(seconds=int(current_app.config["RATES_MAX_AGE"]))
    newest = session.scalar(select(func.max(RateQuote.fetched_at)))
    merchant = session.scalar(select(Merchant).order_by(Merchant.client_id).limit(1))
    session.commit()  # ends the read transaction: no processor call waits inside one
    now = clock.now()
    attempted: datetime | None = current_app.extensions.get(ATTEMPT)
    if merchant is None or (newest is not None and now - newest < max_age) or (
            attempted is not None and now - attempted < max_age):
        return 0
    current_app.extensions[ATTEMPT] = now
    try:
        pairs = processor.client_for(merchant).currencies_pairs()
    except processor.ProcessorError as exc:
        log.warning("rates not refreshed: %s", type(exc).__name__)
        return 0
    return store_pairs(pairs, now, mark_pages)


def store_pairs(pairs: list[processor.Pair], now: datetime, mark_pages: MarkPages) -> int:
    """Upsert each usable pair's price (units of `to` for one `from`); others are skipped."""
    usable: dict[tuple[str, str], Decimal] = {}
    for pair in pairs[:MAX_PAIRS]:
        source, target = pair.currency_from.upper(), pair.currency_to.upper()
        if not (_CODE.fullmatch(source) and _CODE.fullmatch(target)) or source == target:
            continue
        if not (pair.rate_from.is_finite() and pair.rate_to.is_finite()) or \
                pair.rate_from <= 0 or pair.rate_to <= 0:
            continue
        price = pair.price
        if not (_MIN_RATE < price < _MAX_RATE):
            continue
        usable[(source, target)] = price
    with db.transaction() as session:
        for (source, target), price in usable.items():
            store(session, source, target, price, now)
        mark_pages(session)
    return len(usable)


# A price outside these is no price: storing it could only put a wrong figure on a page.
_MIN_RATE = Decimal("1e-12")
_MAX_RATE = Decimal("1e12")
