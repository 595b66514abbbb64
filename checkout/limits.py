"""The processor's minimum deposits, cached in `currency_limits` from `currencies/list`.

The processor cancels a deposit below its currency's minimum ("Transaction amount less
than minimum deposit"), so a page asking for less could never be paid. Readers use
`minimum()`, which reads the cache only (each process a copy of it, while fresh); the
worker refreshes the cache once it is older than `LIMITS_MAX_AGE` seconds. A link opened
before the first refresh may fetch the list once, quickly, and opens unchecked when the
processor does not answer.

The list is the same for every merchant of one processor, but the API wants a merchant's
key: the merchant with the lowest client id asks for all.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import click
from flask import Flask, current_app
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import clock, db, money, processor, terminal
from .models import CurrencyLimit, Merchant

log = logging.getLogger(__name__)

# Bounds on what the processor may make us store. CoinsPaid lists a few dozen currencies;
# a list this long is no list of currencies, and is refused as a whole.
MAX_ENTRIES = 1000
# A code has a letter: a bare number is an id, not a currency.
CODE = re.compile(r"\A(?=[A-Z0-9_-]*[A-Z])[A-Z0-9][A-Z0-9_-]{0,15}\Z")
# No currency asks a trillion units for one deposit; such a minimum would only refuse links.
MAX_MINIMUM = Decimal(10) ** 12
MAX_PRECISION = money.MAX_PLACES
# After a failed refresh, the next try waits this long (seconds): a processor that is down
# is not asked by every worker loop, nor by every link while the cache is empty.
RETRY_AFTER = 60
# Seconds a link waits for the list when the cache is empty: a customer is waiting.
LINK_TIMEOUT = 2.0
ATTEMPT = "checkout.limits.attempted_at"


@dataclass(frozen=True)
class Limit:
    currency: str
    minimum: Decimal
    precision: int | None


# ---------------------------------------------------------------- reading


# This process's copy of the table, read whole in one SELECT (a few dozen rows).
COPY = "checkout.limits.copy"


@dataclass(frozen=True)
class Copy:
    minimums: dict[str, Decimal]
    fetched_at: datetime | None  # the table's newest refresh; None while it is empty


def copy(session: Session) -> Copy:
    """The table as this process last read it, read again once it is no longer fresh: when
    its newest refresh is `LIMITS_MAX_AGE` old (the worker refreshes it then), or while it
    is empty. A refresh in this process drops it (`refresh`)."""
    known: Copy | None = current_app.extensions.get(COPY)
    max_age = timedelta(seconds=int(current_app.config["LIMITS_MAX_AGE"]))
    if known is not None and known.fetched_at is not None and \
            clock.now() - known.fetched_at < max_age:
        return known
    rows = session.execute(select(CurrencyLimit.currency, CurrencyLimit.minimum_amount,
                                  CurrencyLimit.fetched_at)).all()
    fresh = Copy({r.currency: Decimal(r.minimum_amount) for r in rows},
                 max((r.fetched_at for r in rows), default=None))
    current_app.extensions[COPY] = fresh
    return fresh


def forget_copy() -> None:
    current_app.extensions.pop(COPY, None)


def minimum(session: Session, currency: str) -> Decimal | None:
    """The cached minimum deposit of `currency`; None when unknown. Never asks the network;
    reads this process's copy of the cache while it is fresh (`copy`)."""
    return copy(session).minimums.get(currency.upper())


def minimum_payment(session: Session, currency: str) -> Decimal | None:
    """The smallest payment the processor accepts in `currency`, from the cache; None when
    unknown or when there is none (a listed minimum of 0).

    A page asks for no less than this; a crypto invoice cannot ask for less than one deposit
    may carry. A fiat invoice's minimum is the merchant's, set in the processor's back office
    and listed nowhere: the processor refuses a too-small one when the quote is made (a 400
    of the API for type 3, `QuoteRefused` for the page).
    """
    floor = minimum(session, currency)
    return floor if floor else None


def minimum_withdrawal(session: Session, currency: str) -> Decimal | None:
    """The smallest withdrawal the processor sends in `currency`: CoinsPaid lists one
    minimum per currency, the same for deposits and withdrawals (coinspaid-api.md §7)."""
    return minimum_payment(session, currency)


def fetched_at(session: Session) -> datetime | None:
    """When the cache was last refreshed; None while it is empty."""
    return session.scalar(select(func.max(CurrencyLimit.fetched_at)))


def table(session: Session) -> list[Limit]:
    return [Limit(r.currency, Decimal(r.minimum_amount), r.precision) for r in
            session.scalars(select(CurrencyLimit).order_by(CurrencyLimit.currency))]


# ---------------------------------------------------------------- refreshing


def usable(listed: list[processor.Currency]) -> dict[str, Limit]:
    """What of the processor's list may be stored: bounded codes, sane amounts.

    A code listed twice keeps its higher minimum: below it the processor may cancel.
    """
    if len(listed) > MAX_ENTRIES:
        raise processor.BadResponse(
            f"currencies/list: {len(listed)} entries, more than {MAX_ENTRIES}")
    limits: dict[str, Limit] = {}
    skipped = 0
    for item in listed:
        code = item.currency.strip().upper() if len(item.currency) <= 16 else ""
        try:
            amount = money.parse_amount(item.minimum_amount, allow_zero=True)
        except money.AmountError:
            amount = None
        if not CODE.match(code) or amount is None or amount >= MAX_MINIMUM:
            skipped += 1
            continue
        precision = item.precision if 0 <= item.precision <= MAX_PRECISION else None
        known = limits.get(code)
        if known is None or amount > known.minimum:
            limits[code] = Limit(code, amount, precision)
    if skipped:
        log.warning("currencies/list: %d entries with an unusable code or minimum skipped",
                    skipped)
    if not limits:
        raise processor.BadResponse("currencies/list: no usable entry")
    return limits


def refresh(session: Session, client: processor.ProcessorClient) -> int:
    """Fetch `currencies/list` once and replace the cache with it; how many rows are stored.

    The processor is asked before any transaction opens, and must be: an HTTP call never
    waits inside one. An answer with nothing usable raises and keeps the last table.
    """
    if session.in_transaction():
        raise RuntimeError("limits.refresh must not run inside an open transaction")
    remember_attempt()
    limits = usable(client.currencies_list(skip_unreadable=True))
    now = clock.now()
    try:
        with session.begin():
            rows = {r.currency: r for r in session.scalars(select(CurrencyLimit))}
            session.execute(delete(CurrencyLimit).where(CurrencyLimit.currency.not_in(limits)))
            for code, limit in limits.items():
                row = rows.get(code)
                if row is None:
                    row = CurrencyLimit(currency=code)
                    session.add(row)
                row.minimum_amount = money.plain(limit.minimum)
                row.precision = limit.precision
                row.fetched_at = now
    except IntegrityError:
        # Another refresh (the worker, another link) stored the same list just now.
        log.info("minimum deposits were stored by another refresh meanwhile")
        return 0
    finally:
        forget_copy()
    return len(limits)


def remember_attempt() -> None:
    current_app.extensions[ATTEMPT] = clock.now()


def recently_attempted() -> bool:
    attempted: datetime | None = current_app.extensions.get(ATTEMPT)
    return attempted is not None and clock.now() - attempted < timedelta(seconds=RETRY_AFTER)


def asking_merchant(session: Session) -> Merchant | None:
    return session.scalar(select(Merchant).order_by(Merchant.client_id).limit(1))


def refresh_if_stale() -> int:
    """Worker task: refresh the cache once it is older than `LIMITS_MAX_AGE`; rows stored."""
    session = db.session()
    max_age = timedelta(seconds=int(current_app.config["LIMITS_MAX_AGE"]))
    last = fetched_at(session)
    merchant = asking_merchant(session)
    session.commit()  # ends the read transaction before the processor is asked
    if merchant is None or (last is not None and clock.now() - last < max_age):
        return 0
    if recently_attempted():
        return 0
    try:
        return refresh(session, processor.client_for(merchant))
    except processor.ProcessorError as exc:
        log.warning("minimum deposits not refreshed: %s", type(exc).__name__)
        return 0


# ---------------------------------------------------------------- terminal links


def minimum_for_link(session: Session, link: terminal.TerminalLink) -> Decimal | None:
    """The link currency's minimum; an empty cache (a fresh install) is filled once first.

    That fetch is quick and never retried; a processor that does not answer leaves the
    link unchecked (the processor still cancels a deposit too small), and is logged.
    """
    table = copy(session)
    known = table.minimums.get(link.currency.upper())
    if known is not None or table.fetched_at is not None or recently_attempted():
        return known
    if session.new or session.dirty or session.deleted:
        log.warning("minimum deposits not fetched: the link has unsaved changes")
        return None
    session.commit()  # only ends the lookups' transaction: no HTTP call waits inside one
    quick = processor.client_for(link.merchant, retry_delays=(), max_timeout=LINK_TIMEOUT)
    try:
        refresh(session, quick)
    except processor.ProcessorError as exc:
        log.warning("minimum deposits unknown (%s): %s link not checked",
                    type(exc).__name__, link.currency)
        return None
    return minimum(session, link.currency)


@dataclass(frozen=True)
class BelowMinimum:
    """A link asking for less than its currency's minimum deposit: a deposit that the
    processor would cancel. The route answers it (web/customer.py: a 422 page)."""

    currency: str
    minimum: Decimal


def refuse_link(session: Session, link: terminal.TerminalLink) -> BelowMinimum | None:
    """Why the link may not open (it asks for less than the network accepts); None to go on.

    Every link fills an empty cache first, also one without an amount: its page tells the
    customer the smallest payment that is credited before they send anything.
    """
    floor = minimum_for_link(session, link)
    if link.amount is None or floor is None or link.amount >= floor:
        return None
    log.info("link of merchant %s refused: %s below the %s minimum",
             link.merchant.client_id, link.amount, link.currency)
    return BelowMinimum(link.currency, floor)


# ---------------------------------------------------------------- wiring


def init_app(app: Flask) -> None:
    @app.cli.group("limits")
    def limits_cli() -> None:
        """The processor's minimum deposits, cached from currencies/list."""

    @limits_cli.command("refresh")
    def refresh_command() -> None:
        """Fetch the minimums now and print them (asks with the lowest client id's key)."""
        session = db.session()
        merchant = asking_merchant(session)
        session.commit()
        if merchant is None:
            raise click.ClickException(
                "no merchant yet: add one with `flask --app checkout merchant add`")
        try:
            stored = refresh(session, processor.client_for(merchant))
        except processor.ProcessorError as exc:
            raise click.ClickException(f"currencies/list failed: {type(exc).__name__}") from exc
        click.echo(f"{stored} minimum deposits stored (currency, minimum, precision):")
        for limit in table(session):
            precision = "-" if limit.precision is None else str(limit.precision)
            click.echo(f"{limit.currency}\t{money.plain(limit.minimum)}\t{precision}")
