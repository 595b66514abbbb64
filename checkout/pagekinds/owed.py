"""What a page owes its customer back, and the refunds that hold part of it: part of what a
page is (its model shows both), read by the refund workflow (services/refunds.py) with the
page locked, so that the refunds holding money never add up to more than is owed.

Only confirmed money is ever owed: money in flight may still be cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import currencies, limits, money
from .. import refund_rules as rules
from ..models import Deposit, DepositAddress, Invoice, Page, Refund
from ..states import CONFIRMED
from . import deposit as deposit_kind
from . import invoice_late


@dataclass(frozen=True)
class Owed:
    cause: str  # refund_rules.CAUSES
    currency: str  # the coin the customer paid and gets back
    balance_currency: str  # what the merchant's balance holds of it (converted on arrival)
    total: Decimal  # owed back in all, before any refund
    left: Decimal  # not yet held by a refund
    receive: Decimal | None  # what `left` delivers after the fee reserve; None: too small
    minimum: Decimal | None  # the smallest withdrawal the processor takes, when known


def owed(session: Session, page: Page, *, refunds: Sequence[Refund] | None = None
         ) -> Owed | None:
    """What the page owes its customer now, or None. `refunds`: the page's, when the caller
    read them already (the page model), to spare their query."""
    found = (_deposit_owed(session, page) if page.kind == deposit_kind.KIND.name
             else _late_owed(session, page))
    if found is None:
        return None
    cause, currency, balance_currency, total = found
    if total <= 0:
        return None
    holding = (held(session, page.id) if refunds is None
               else [(refund.state, refund.amount) for refund in refunds])
    left = rules.still_owed(total, holding)
    receive = rules.to_receive(left, currency, places(currency)) if left > 0 else None
    minimum = limits.minimum_withdrawal(session, currency)
    if receive is not None and minimum is not None and receive < minimum:
        receive = None
    return Owed(cause, currency, balance_currency, total, left, receive, minimum)


def _deposit_owed(session: Session, page: Page) -> tuple[str, str, str, Decimal] | None:
    """An overpaid page owes what came beyond the price; an underpaid one (short beyond the
    merchant's tolerance) everything that came, if the customer prefers it back to paying
    the rest. Only confirmed money is ever owed: money in flight may still be cancelled."""
    if page.status != CONFIRMED or page.reason not in (deposit_kind.OVERPAID,
                                                        deposit_kind.UNDERPAID):
        return None
    confirmed = _confirmed(deposit_kind.page_deposits(session, page))
    asked = deposit_kind.amount_asked(page)
    if page.reason == deposit_kind.OVERPAID:
        if asked is None:
            return None
        cause, total = rules.OVERPAID, confirmed - asked
    else:
        cause, total = rules.UNDERPAID, confirmed
    address = page.deposit_address
    balance = (address.convert_to if address is not None and address.convert_to
               else page.currency)
    return cause, page.currency, balance, total


def _late_owed(session: Session, page: Page) -> tuple[str, str, str, Decimal] | None:
    """An invoice page owes the confirmed money that came after its invoice failed, when the
    merchant's policy did not accept it (invoice_late.py): the customer chose a refund over
    paying the difference. In the payer's coin; the balance holds what the address converts
    it to."""
    invoice = session.scalar(select(Invoice).where(Invoice.page_id == page.id))
    if invoice is None or invoice_late.decision_of(invoice) not in (invoice_late.SHORT,
                                                                    invoice_late.REFUSED):
        return None
    confirmed = invoice_late.confirmed_of(session, invoice)
    if not confirmed:
        return None
    # One coin is sent back: the first late payment's (an invoice's quotes may differ).
    confirmed = [d for d in confirmed if d.currency == confirmed[0].currency]
    address = session.get(DepositAddress, confirmed[0].address_id)
    currency = confirmed[0].currency
    balance = address.convert_to if address is not None and address.convert_to else currency
    return rules.LATE, currency, balance, _confirmed(confirmed)


def _confirmed(deposits: Sequence[Deposit]) -> Decimal:
    total = Decimal(0)
    for item in deposits:
        if item.status == CONFIRMED:
            value = deposit_kind.stored_amount(item)
            total += value if value is not None else Decimal(0)
    return total


def held(session: Session, page_id: str, but: int | None = None) -> list[tuple[str, str]]:
    """(state, amount) of the page's refunds, but the one `but` names."""
    query = select(Refund.state, Refund.amount).where(Refund.page_id == page_id)
    if but is not None:
        query = query.where(Refund.id != but)
    return [(state, amount) for state, amount in session.execute(query)]


def places(currency: str) -> int:
    known = currencies.get(currency)
    return known.decimals if known is not None else money.PROCESSOR_PLACES


def of_page(session: Session, page_id: str) -> list[Refund]:
    """A page's refunds, oldest first."""
    return list(session.scalars(select(Refund).where(Refund.page_id == page_id)
                                .order_by(Refund.id)))
