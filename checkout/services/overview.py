"""The back office's overview: for a period, per merchant and currency, how payments ended
(pagekinds/outcomes.py says what counts as what), and what needs someone's attention
(failing deliveries, flagged callbacks).

A page counts by the outcome stored on it (`Page.outcome`, written with its model from
pagekinds/outcomes.py) in the period it was opened in (`Page.created_at`): the payments
list's status and date filters read the same columns, so each figure's link lists exactly
the pages it counts. Rows are per merchant and the currency paid in (`Page.currency`).

The fiat sums are Decimal, added in Python from the TEXT columns: an invoice counts its own
amount in the shop's currency (what the shop asked); a deposit its amount paid at the rate
cached when it was paid in full, in the page's fiat (as its receipt says). A deposit with
no such rate (not paid in full yet) is counted but adds no fiat value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from .. import money
from ..models import Callback, Delivery, Invoice, Merchant, Page
from ..pagekinds import outcomes
from ..pagekinds.outcomes import decimal_or_none
from ..pagekinds.present import fiat_places
from .news_base import FLAGGED
from .periods import Period

OUTCOMES = outcomes.OUTCOMES
PAID, EXPIRED, UNDERPAID, OVERPAID = OUTCOMES


@dataclass
class Figure:
    """How many pages ended one way, and what they were worth in each fiat currency."""

    count: int = 0
    fiat: dict[str, Decimal] = field(default_factory=dict)

    def add(self, value: tuple[str, Decimal] | None) -> None:
        self.count += 1
        if value is not None:
            fiat, amount = value
            self.fiat[fiat] = self.fiat.get(fiat, Decimal(0)) + amount

    def sums(self) -> list[tuple[str, str]]:
        """(currency, amount text) in currency order, to the currency's places."""
        return [(code, format(amount.quantize(Decimal(1).scaleb(-fiat_places(code))), "f"))
                for code, amount in sorted(self.fiat.items())]


@dataclass
class Row:
    merchant_id: int
    merchant_name: str
    currency: str
    figures: dict[str, Figure] = field(default_factory=lambda: {o: Figure() for o in OUTCOMES})


@dataclass
class Attention:
    """Per merchant: deliveries failing now (retrying after an error), given up, and the
    callbacks flagged in the period."""

    merchant_id: int
    merchant_name: str
    failing: int = 0
    given_up: int = 0
    flagged: int = 0


@dataclass(frozen=True)
class Overview:
    period: Period
    rows: list[Row]
    attention: list[Attention]


def _deposit_value(page_fiat: str | None, rate: str | None,
                   paid: str | None) -> tuple[str, Decimal] | None:
    """What the deposit was worth when paid in full, rounded as its receipt rounds it."""
    value_rate, value_paid = decimal_or_none(rate), decimal_or_none(paid)
    if not page_fiat or value_rate is None or value_paid is None:
        return None
    return page_fiat, money.ceil(value_paid * value_rate, fiat_places(page_fiat))


def _bounded(query: Select, column: object, merchant_ids: list[int] | None) -> Select:
    return query if merchant_ids is None else query.where(column.in_(merchant_ids))  # type: ignore[attr-defined]


def _names(session: Session, merchant_ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(merchant_ids))
    if not wanted:
        return {}
    rows = session.execute(select(Merchant.client_id, Merchant.display_name, Merchant.name)
                           .where(Merchant.client_id.in_(wanted))).all()
    return {client_id: display or name for client_id, display, name in rows}


def _page_rows(session: Session, period: Period, merchant_ids: list[int] | None) -> Select:
    query = (select(Page.merchant_id, Page.currency, Page.outcome, Page.amount_paid,
                    Page.fiat_currency, Page.paid_rate, Invoice.currency, Invoice.amount)
             .outerjoin(Invoice, Invoice.page_id == Page.id)
             .where(Page.created_at >= period.start, Page.created_at < period.end,
                    Page.outcome.is_not(None)))
    return _bounded(query, Page.merchant_id, merchant_ids)


def figures(session: Session, period: Period, merchant_ids: list[int] | None) -> list[Row]:
    """The outcome figures, rows by merchant then currency."""
    rows: dict[tuple[int, str], Row] = {}
    result = session.execute(_page_rows(session, period, merchant_ids)
                             .execution_options(yield_per=2000))
    for (merchant_id, currency, outcome, paid, page_fiat, rate, invoice_currency,
         invoice_amount) in result:
        if outcome not in OUTCOMES:
            continue  # no other word is ever written: a figure counts nothing it cannot link
        if invoice_currency is not None:  # an invoice's page: the invoice's own amount
            asked = decimal_or_none(invoice_amount)
            value = None if asked is None or not invoice_currency else (invoice_currency, asked)
        else:
            value = _deposit_value(page_fiat, rate, paid)
        key = (merchant_id, currency)
        if key not in rows:
            rows[key] = Row(merchant_id, "", currency)
        rows[key].figures[outcome].add(value)
    names = _names(session, (m for m, _ in rows))
    for row in rows.values():
        row.merchant_name = names.get(row.merchant_id, str(row.merchant_id))
    return [rows[key] for key in sorted(rows)]


def attention(session: Session, period: Period,
              merchant_ids: list[int] | None) -> list[Attention]:
    """Deliveries failing or given up now, and callbacks flagged in the period, per merchant
    (merchants with nothing to show are left out)."""
    found: dict[int, Attention] = defaultdict(lambda: Attention(0, ""))
    failing = _bounded(select(Delivery.merchant_id, func.count())
                       .where(Delivery.state == "pending", Delivery.last_error.is_not(None))
                       .group_by(Delivery.merchant_id), Delivery.merchant_id, merchant_ids)
    for merchant_id, count in session.execute(failing):
        found[merchant_id].failing = count
    given_up = _bounded(select(Delivery.merchant_id, func.count())
                        .where(Delivery.state == "failed").group_by(Delivery.merchant_id),
                        Delivery.merchant_id, merchant_ids)
    for merchant_id, count in session.execute(given_up):
        found[merchant_id].given_up = count
    flagged = _bounded(select(Callback.merchant_id, func.count())
                       .where(or_(Callback.flag.is_not(None),
                                  Callback.outcome == FLAGGED),
                              Callback.received_at >= period.start,
                              Callback.received_at < period.end)
                       .group_by(Callback.merchant_id), Callback.merchant_id, merchant_ids)
    for merchant_id, count in session.execute(flagged):
        found[merchant_id].flagged = count
    names = _names(session, found)
    result = []
    for merchant_id in sorted(found):
        item = found[merchant_id]
        item.merchant_id = merchant_id
        item.merchant_name = names.get(merchant_id, str(merchant_id))
        result.append(item)
    return result


def overview(session: Session, period: Period, merchant_ids: list[int] | None) -> Overview:
    """Everything the overview shows, bounded by `merchant_ids` (None: every merchant)."""
    return Overview(period, figures(session, period, merchant_ids),
                    attention(session, period, merchant_ids))
