"""How a page ended, in four words a merchant counts (the back office's overview): paid,
expired, underpaid, overpaid; None for a page still open or ended otherwise.

- a deposit page: confirmed -> paid (also confirmed/short_accepted: short within the
  merchant's tolerance); confirmed/overpaid -> overpaid; confirmed/underpaid ->
  underpaid (the rest may still come). Deposit pages have no deadline: never expired.
- an invoice page (the invoice's status and reason, the current quote's amount and amount
  paid, as invoices.sync_page keeps them): confirmed -> paid, or overpaid when more than the
  quote arrived; failed/underpaid -> underpaid; failed/expired (or no reason) -> expired. A
  failed invoice that timed out unconfirmed or that the shop cancelled is none of these.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ..states import CONFIRMED, FAILED
from . import deposit

PAID, EXPIRED, UNDERPAID, OVERPAID = "paid", "expired", "underpaid", "overpaid"
OUTCOMES = (PAID, EXPIRED, UNDERPAID, OVERPAID)


def decimal_or_none(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _invoice(status: str, reason: str | None, amount: str | None,
             amount_paid: str | None) -> str | None:
    if status == CONFIRMED:
        asked, paid = decimal_or_none(amount), decimal_or_none(amount_paid)
        return OVERPAID if asked is not None and paid is not None and paid > asked else PAID
    if status == FAILED:
        return {None: EXPIRED, "expired": EXPIRED, "underpaid": UNDERPAID}.get(reason)
    return None


def _deposit(status: str, reason: str | None) -> str | None:
    if status != CONFIRMED:
        return None
    return {None: PAID, deposit.SHORT_ACCEPTED: PAID, deposit.OVERPAID: OVERPAID,
            deposit.UNDERPAID: UNDERPAID}.get(reason)


def outcome_of(kind: str, status: str, reason: str | None, amount: str | None,
               amount_paid: str | None) -> str | None:
    if kind == "invoice":
        return _invoice(status, reason, amount, amount_paid)
    if kind == "deposit":
        return _deposit(status, reason)
    return None
