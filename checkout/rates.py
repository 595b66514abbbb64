"""Cached processor rates (`RateQuote`): pages show an approximate fiat value from here.

Rates are fetched when a page is created or rendered, at most once per `RATES_MAX_AGE`
seconds per pair, and never by a status poll: buyers polling must not flood the processor.
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


def _quote(session: Session, currency_from: str, currency_to: str) -> RateQuote | None:
    return session.scalar(select(RateQuote).where(
        RateQuote.currency_from == currency_from, RateQuote.currency_to == currency_to))


def cached(session: Session, currency_from: str, currency_to: str) -> Decimal | None:
    """The last rate fetched for the pair, however old; None if never fetched."""
    quote = _quote(session, currency_from, currency_to)
    return None if quote is None else Decimal(quote.rate)


def is_fresh(quote: RateQuote, now: datetime, max_age: int) -> bool:
    return now - quote.fetched_at < timedelta(seconds=max_age)


def refresh(session: Session, currency_from: str, currency_to: str, fetch: Fetch, *,
            now: datetime, max_age: int) -> Decimal | None:
    """The pair's rate, fetched only when the cached one is older than `max_age` seconds.

    A failed fetch keeps the old quote (a stale approximate value beats none) and is logged.
    The caller commits (see `store` for a concurrent first fetch).
    """
    quote = _quote(session, currency_from, currency_to)
    if quote is not None and is_fresh(quote, now, max_age):
        return Decimal(quote.rate)
    try:
        rate = fetch(currency_from, currency_to)
    except Exception as exc:  # any processor failure: the page works without a fiat value
        log.warning("rate %s/%s not refreshed: %s", currency_from, currency_to,
                    type(exc).__name__)
        return None if quote is None else Decimal(quote.rate)
    if not rate.is_finite() or rate <= 0:
        log.warning("rate %s/%s refused: not a positive number", currency_from, currency_to)
        return None if quote is None else Decimal(quote.rate)
    store(session, currency_from, currency_to, rate, now)
    return rate


def store(session: Session, currency_from: str, currency_to: str, rate: Decimal,
          now: datetime) -> None:
    """Upsert the pair's quote and flush. Another instance inserting the same pair at the same
    moment makes the flush raise IntegrityError: roll back, its quote is as good as ours."""
    quote = _quote(session, currency_from, currency_to)
    if quote is None:
        session.add(RateQuote(currency_from=currency_from, currency_to=currency_to,
                              rate=money.text(rate), fetched_at=now))
    else:
        quote.rate = money.text(rate)
        quote.fetched_at = now
    session.flush()
