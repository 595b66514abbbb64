"""Cached processor rates (`RateQuote`): pages show an approximate fiat value from here.

Rates are fetched when a page is created or rendered, at most once per `RATES_MAX_AGE`
seconds per pair, and never by a status poll: buyers polling must not flood the processor.
A quote older than `SHOWN_MAX_AGE` is not shown at all: while the processor cannot be
asked, yesterday's price would be a wrong "about" figure, not an approximate one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import money
from .models import RateQuote

log = logging.getLogger(__name__)
Fetch = Callable[[str, str], Decimal]
# Seconds a quote may be shown as an approximate value (prices move a few % in an hour).
SHOWN_MAX_AGE = 3600


def _quote(session: Session, currency_from: str, currency_to: str) -> RateQuote | None:
    return session.scalar(select(RateQuote).where(
        RateQuote.currency_from == currency_from, RateQuote.currency_to == currency_to))


def cached(session: Session, currency_from: str, currency_to: str, *,
           fetched_since: datetime | None = None) -> Decimal | None:
    """The last rate fetched for the pair; None if never fetched or fetched before
    `fetched_since` (when given)."""
    quote = _quote(session, currency_from, currency_to)
    if quote is None or (fetched_since is not None and quote.fetched_at < fetched_since):
        return None
    return Decimal(quote.rate)


def is_fresh(quote: RateQuote, now: datetime, max_age: int) -> bool:
    return now - quote.fetched_at < timedelta(seconds=max_age)


def refresh(session: Session, currency_from: str, currency_to: str, fetch: Fetch, *,
            now: datetime, max_age: int) -> Decimal | None:
    """The pair's rate, fetched only when the cached one is older than `max_age` seconds.

    A failed fetch keeps the old quote (a stale approximate value beats none) and is logged.
    The caller commits (see `store` for a concurrent first fetch).
    """
    quote = _quote(session, currency_from, currency_to)
    if quote is not None and (is_fresh(quote, now, max_age)
                              or was_attempted(quote, now, max_age)):
        return Decimal(quote.rate)
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
    return rate


def was_attempted(quote: RateQuote, now: datetime, max_age: int) -> bool:
    return quote.attempted_at is not None and now - quote.attempted_at < timedelta(
        seconds=max_age)


def _failed(session: Session, quote: RateQuote | None, now: datetime) -> Decimal | None:
    """Keep the old quote, and remember the attempt so the next page view does not wait too."""
    if quote is None:
        return None
    quote.attempted_at = now
    session.flush()
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
