"""The back office's payments list: every page (deposit and invoice) of the merchants a person
may see, newest first, filtered, searched by exact match, walked by keyset; and its CSV rows
with the fiat value at payment time and the processor's fees.

Every query here is bounded by the `merchants` list the caller passes (Access.merchants):
None is an operator (every merchant), an empty list sees nothing. A merchant filter naming a
merchant outside that list gives the same empty list as a merchant that does not exist.

The cursor is the last row's (created_at, id), base64url-encoded. It is not signed: it only
positions a walk inside the bounded query, so a forged one can skip rows the person may see
anyway, never reach others. It is parsed strictly and a bad one is `InvalidCursor`.

"Needs attention" (`attention`) is a page whose money needs a person: underpaid, overpaid,
paid late, paid after its invoice timed out or refused as too small; or one with a flagged
callback (on its deposits, its invoice's quotes, or a quote's own flag); or one whose shop
was not told yet although we tried (a delivery failing or given up).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    or_,
    select,
    true,
    tuple_,
    union,
)
from sqlalchemy.orm import Session, aliased

from .. import audit, currencies, money, states
from ..models import (
    Callback,
    Delivery,
    Deposit,
    Invoice,
    InvoiceQuote,
    Merchant,
    Page,
    QuoteTxid,
    is_page_token,
)
from ..pagekinds import deposit, invoice, outcomes
from ..pagekinds.deposit import BELOW_MINIMUM, OVERPAID, UNDERPAID
from . import periods

# The list reads each kind's own tables (a deposit's transactions, an invoice's quotes), so
# it names the two kinds, by their own names.
DEPOSIT: Final = deposit.KIND.name
INVOICE: Final = invoice.KIND.name
KINDS: Final = (DEPOSIT, INVOICE)
# What the status filter accepts: how a page ended (Page.outcome, the very column the
# overview counts, so each of its figures links to exactly the pages it counts: paid,
# expired, underpaid, overpaid); else a page's status, or the reason that says more of it
# ("phase": a paid invoice's deposit came late, a failed invoice timed out).
OUTCOMES: Final = outcomes.OUTCOMES
STATUSES: Final = (states.WAITING, states.SEEN, states.CONFIRMED, states.CANCELLED,
                   states.CREATED, states.PENDING, states.PROCESSING, states.FAILED)
REASONS: Final = (BELOW_MINIMUM, "timeout", "late")
# Reasons that need a person (see the module's docstring).
ATTENTION_REASONS: Final = (UNDERPAID, OVERPAID, BELOW_MINIMUM, "timeout", "late")
FLAGGED_OUTCOME: Final = "flagged"
APPLIED_OUTCOME: Final = "applied"
PAGE_SIZE: Final = 100
CSV_BATCH: Final = 500
MAX_SEARCH: Final = 255
_CURRENCY = re.compile(r"[A-Z0-9]{1,16}")
_MAX_CURSOR: Final = 200


class InvalidCursor(ValueError):
    """An `after` value this list never made."""


@dataclass(frozen=True)
class Filters:
    """The list's filters as the URL names them (console.md); web parses and validates."""

    q: str | None = None
    status: str | None = None
    kind: str | None = None
    currency: str | None = None
    merchant: int | None = None
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    flagged: bool = False
    attention: bool = False

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in OUTCOMES + STATUSES + REASONS:
            raise ValueError("status")
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError("kind")
        if self.currency is not None and not _CURRENCY.fullmatch(self.currency):
            raise ValueError("currency")
        if self.q is not None and (not 0 < len(self.q) <= MAX_SEARCH or "\x00" in self.q):
            raise ValueError("q")

    def as_args(self) -> dict[str, str]:
        """The URL's query arguments for these filters (a link reproduces the view)."""
        args = {"q": self.q, "status": self.status, "kind": self.kind,
                "currency": self.currency,
                "merchant": None if self.merchant is None else str(self.merchant),
                "from": None if self.date_from is None else self.date_from.isoformat(),
                "to": None if self.date_to is None else self.date_to.isoformat(),
                "flagged": "1" if self.flagged else None,
                "attention": "1" if self.attention else None}
        return {name: value for name, value in args.items() if value}


@dataclass(frozen=True)
class Row:
    """One page as the list shows it."""

    id: str
    kind: str
    merchant_id: int
    merchant_name: str
    foreign_id: str
    status: str
    reason: str | None
    currency: str
    amount: str | None
    amount_paid: str
    fiat_currency: str | None
    created_at: datetime
    address: str | None


@dataclass(frozen=True)
class Listing:
    rows: list[Row]
    next_cursor: str | None  # None: this was the last page


@dataclass(frozen=True)
class ExportRow:
    """One page as the CSV gives it: fiat value at payment time and fees, Decimal text."""

    row: Row
    paid_at: datetime | None
    fiat_currency: str | None
    fiat_value: str | None
    fees: dict[str, Decimal] = field(default_factory=dict)  # currency -> sum


# ---------------------------------------------------------------- cursor

def encode_cursor(created_at: datetime, page_id: str) -> str:
    raw = f"{created_at.isoformat()}|{page_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, str]:
    """(created_at, id) of the row the walk continues after; InvalidCursor for anything else."""
    if not value or len(value) > _MAX_CURSOR or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise InvalidCursor(value[:_MAX_CURSOR])
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, _, page_id = raw.partition("|")
        created_at = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidCursor(value) from error
    if created_at.tzinfo is not None or not is_page_token(page_id):
        raise InvalidCursor(value)
    return created_at, page_id


# ---------------------------------------------------------------- the query

def _bounded(merchants: Sequence[int] | None, wanted: int | None) -> ColumnElement[bool]:
    """Pages of the merchants allowed, narrowed to `wanted` only when it is one of them."""
    if wanted is not None:
        if merchants is not None and wanted not in merchants:
            return false()
        return Page.merchant_id == wanted
    if merchants is None:
        return true()
    if not merchants:
        return false()
    if len(merchants) == 1:  # the planners walk one merchant's index best by equality
        return Page.merchant_id == merchants[0]
    return Page.merchant_id.in_(list(merchants))


def _search(q: str) -> ColumnElement[bool]:
    """Pages matching `q` exactly by one of their keys, each an indexed lookup."""
    page_ids: list[Select[Any]] = [
        select(Page.id).where(Page.foreign_id == q),
        select(Page.id).where(Page.address == q),
        select(Page.id).join(Deposit, Deposit.address_id == Page.address_id)
        .where(Deposit.txid == q),
        select(Invoice.page_id).join(InvoiceQuote, InvoiceQuote.invoice_id == Invoice.id)
        .join(QuoteTxid, QuoteTxid.quote_id == InvoiceQuote.id).where(QuoteTxid.txid == q),
        select(Invoice.page_id).where(Invoice.email_user.in_(sorted({q, q.lower()}))),
    ]
    if is_page_token(q):
        page_ids.append(select(Page.id).where(Page.id == q))
    return Page.id.in_(union(*page_ids).scalar_subquery())


def _deposit_pages_of(callbacks: ColumnElement[bool]) -> Select[Any]:
    """Deposit pages at whose address a transaction had a callback matching `callbacks`."""
    return (select(Page.id)
            .join(Deposit, Deposit.address_id == Page.address_id)
            .join(Callback, and_(Callback.merchant_id == Deposit.merchant_id,
                                 Callback.processor_id == Deposit.processor_id))
            .where(callbacks, Page.kind == DEPOSIT))


def _invoice_pages_of(callbacks: ColumnElement[bool]) -> Select[Any]:
    """Invoice pages one of whose quotes had a callback matching `callbacks`."""
    return (select(Invoice.page_id)
            .join(InvoiceQuote, InvoiceQuote.invoice_id == Invoice.id)
            .join(Callback, and_(Callback.merchant_id == InvoiceQuote.merchant_id,
                                 Callback.processor_id == InvoiceQuote.processor_id))
            .where(callbacks))


def _flagged() -> list[Select[Any]]:
    flagged = Callback.outcome == FLAGGED_OUTCOME
    return [_deposit_pages_of(flagged), _invoice_pages_of(flagged),
            select(Invoice.page_id).join(InvoiceQuote, InvoiceQuote.invoice_id == Invoice.id)
            .where(InvoiceQuote.flag.is_not(None))]


def _failing_deliveries() -> list[Select[Any]]:
    """Pages whose shop we tried and failed to tell (retrying or given up)."""
    failing = exists().where(Delivery.callback_id == Callback.id,
                             Delivery.state != "delivered", Delivery.attempts > 0)
    return [_deposit_pages_of(failing), _invoice_pages_of(failing)]


def _conditions(merchants: Sequence[int] | None, filters: Filters) -> list[ColumnElement[bool]]:
    found = [_bounded(merchants, filters.merchant)]
    if filters.status in OUTCOMES:
        found.append(Page.outcome == filters.status)
    elif filters.status in STATUSES:
        found.append(Page.status == filters.status)
    elif filters.status is not None:
        found.append(Page.reason == filters.status)
    if filters.kind:
        found.append(Page.kind == filters.kind)
    if filters.currency:
        found.append(Page.currency == filters.currency)
    found += periods.within_days(Page.created_at, filters.date_from, filters.date_to)
    if filters.q:
        found.append(_search(filters.q))
    if filters.flagged:
        found.append(Page.id.in_(union(*_flagged()).scalar_subquery()))
    if filters.attention:
        found.append(or_(Page.reason.in_(ATTENTION_REASONS),
                         Page.id.in_(union(*_flagged(), *_failing_deliveries())
                                     .scalar_subquery())))
    return found


def _walk(merchants: Sequence[int] | None, filters: Filters,
          after: tuple[datetime, str] | None, limit: int) -> Select[*tuple[Any, ...]]:
    query = (select(Page.id, Page.kind, Page.merchant_id, Merchant.name, Page.foreign_id,
                    Page.status, Page.reason, Page.currency, Page.amount, Page.amount_paid,
                    Page.fiat_currency, Page.created_at, Page.address, Page.paid_at,
                    Page.paid_rate, Invoice.currency, Invoice.amount)
             .join(Merchant, Merchant.client_id == Page.merchant_id)
             .outerjoin(Invoice, Invoice.page_id == Page.id)
             .where(*_conditions(merchants, filters)))
    if after is not None:
        query = query.where(tuple_(Page.created_at, Page.id) < tuple_(*after))
    return query.order_by(Page.created_at.desc(), Page.id.desc()).limit(limit)


def _row(found: Any) -> Row:
    return Row(id=found[0], kind=found[1], merchant_id=found[2], merchant_name=found[3],
               foreign_id=found[4], status=found[5], reason=found[6], currency=found[7],
               amount=found[8], amount_paid=found[9], fiat_currency=found[10],
               created_at=found[11], address=found[12])


def listing(session: Session, merchants: Sequence[int] | None, filters: Filters,
            after: str | None = None, limit: int = PAGE_SIZE) -> Listing:
    """One page of the list (one statement); InvalidCursor for a bad `after`."""
    position = decode_cursor(after) if after else None
    found = session.execute(_walk(merchants, filters, position, limit + 1)).all()
    rows = [_row(item) for item in found[:limit]]
    more = len(found) > limit
    return Listing(rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)


def merchant_choices(session: Session, merchants: Sequence[int] | None) -> list[tuple[int, str]]:
    """(client_id, name) of the merchants the merchant filter may name."""
    query = select(Merchant.client_id, Merchant.name).order_by(Merchant.name,
                                                                Merchant.client_id)
    if merchants is not None:
        query = query.where(Merchant.client_id.in_(list(merchants)))
    return [(client_id, name) for client_id, name in session.execute(query)]


# ---------------------------------------------------------------- the export

def record_export(session: Session, merchants: Sequence[int] | None, filters: Filters, *,
                  actor: str, user_id: int, address: str) -> None:
    """The audit entry of one export (committed by the caller before the rows stream). It
    names the filter's merchant only when that is one the person exports from and exists:
    an entry never points at a merchant they may not see, or at none at all."""
    merchant_id = filters.merchant
    if merchant_id is not None and (
            (merchants is not None and merchant_id not in merchants)
            or session.get(Merchant, merchant_id) is None):
        merchant_id = None
    audit.record(session, "payments.export", actor=actor, user_id=user_id,
                 merchant_id=merchant_id, detail={"filters": filters.as_args()},
                 address=address)


def export(session: Session, merchants: Sequence[int] | None, filters: Filters,
           batch: int = CSV_BATCH) -> Iterator[ExportRow]:
    """Every page of the filtered list, newest first, in keyset batches of `batch` (memory
    stays that of one batch): three statements per batch (pages, then the fees of their
    deposits and of their invoices' quotes)."""
    position: tuple[datetime, str] | None = None
    while True:
        found = session.execute(_walk(merchants, filters, position, batch)).all()
        if not found:
            return
        fees = _fees(session, [item[0] for item in found if item[1] == DEPOSIT],
                     [item[0] for item in found if item[1] == INVOICE])
        for item in found:
            yield _export_row(item, fees.get(item[0], {}))
        if len(found) < batch:
            return
        position = (found[-1][11], found[-1][0])


def _export_row(found: Any, fees: dict[str, Decimal]) -> ExportRow:
    row = _row(found)
    paid_at, paid_rate, invoice_currency, invoice_amount = found[13:17]
    fiat_currency, fiat_value = None, None
    if row.kind == INVOICE and invoice_currency and currencies.is_fiat(invoice_currency):
        # An invoice is priced in fiat by the shop: that is its worth, whatever was paid.
        fiat_currency, fiat_value = invoice_currency, invoice_amount
    elif row.fiat_currency and paid_rate:
        fiat_currency = row.fiat_currency
        fiat_value = _fiat_worth(row.amount_paid, paid_rate, row.fiat_currency)
    return ExportRow(row, paid_at, fiat_currency, fiat_value, fees)


def _fiat_worth(paid: str, rate: str, fiat: str) -> str | None:
    """What the money paid was worth at the rate cached when the page was paid (the receipt's
    own rounding: up to the fiat's places)."""
    try:
        value = Decimal(paid) * Decimal(rate)
    except InvalidOperation:
        return None
    places = currencies.fiat_places(fiat) if currencies.is_fiat(fiat) else 2
    return money.text(money.ceil(value, places), places)


def _fees(session: Session, deposit_pages: list[str],
          invoice_pages: list[str]) -> dict[str, dict[str, Decimal]]:
    """page id -> {currency: fees}, from the processor's applied callbacks as stored (the
    `fees` array): of each transaction, its latest callback that names fees."""
    bodies: list[tuple[str, int | None, int, bytes]] = []  # page, transaction, callback id, body
    applied = Callback.outcome == APPLIED_OUTCOME
    if deposit_pages:
        later = aliased(Page)
        # A transaction belongs to the newest page open at its address when it was first
        # seen (pagekinds/deposit.page_deposits), never to two pages.
        newer_page = exists().where(
            later.address_id == Page.address_id, later.kind == Page.kind,
            tuple_(later.created_at, later.id) > tuple_(Page.created_at, Page.id),
            later.created_at <= Deposit.created_at)
        bodies += session.execute(
            select(Page.id, Deposit.processor_id, Callback.id, Callback.body)
            .join(Deposit, and_(Deposit.address_id == Page.address_id,
                                Deposit.created_at >= Page.created_at))
            .join(Callback, and_(Callback.merchant_id == Deposit.merchant_id,
                                 Callback.processor_id == Deposit.processor_id))
            .where(Page.id.in_(deposit_pages), applied, ~newer_page)).all()
    if invoice_pages:
        bodies += session.execute(
            select(Invoice.page_id, InvoiceQuote.processor_id, Callback.id, Callback.body)
            .join(InvoiceQuote, InvoiceQuote.invoice_id == Invoice.id)
            .join(Callback, and_(Callback.merchant_id == InvoiceQuote.merchant_id,
                                 Callback.processor_id == InvoiceQuote.processor_id))
            .where(Invoice.page_id.in_(invoice_pages), applied)).all()
    latest: dict[tuple[str, int | None], tuple[int, list[tuple[str, Decimal]]]] = {}
    for page_id, transaction, callback_id, body in bodies:
        named = fees_in(body)
        key = (page_id, transaction)
        if named and (key not in latest or latest[key][0] < callback_id):
            latest[key] = (callback_id, named)
    sums: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for (page_id, _transaction), (_id, named) in latest.items():
        for currency, amount in named:
            sums[page_id][currency] = sums[page_id].get(currency, Decimal(0)) + amount
    return sums


def fees_in(body: bytes) -> list[tuple[str, Decimal]]:
    """(currency, amount) of each fee a stored callback body names; [] for anything unreadable
    (a body is kept as received, whatever it holds)."""
    try:
        payload = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return []
    if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
        payload = payload["data"]  # reconciliation stores the processor's answer whole
    items = payload.get("fees") if isinstance(payload, dict) else None
    found: list[tuple[str, Decimal]] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        currency, amount = item.get("currency"), item.get("amount")
        if not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
            continue
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            continue
        if value.is_finite() and not isinstance(amount, bool):
            found.append((currency, value))
    return found
