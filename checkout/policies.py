"""A merchant's policies for money that did not arrive as asked: how short a payment may be and
still count as paid, whether late money that still covers the price is accepted, and below
which value a refund needs no person's approval.

Each has a default on the safe side (no tolerance, late money accepted only when it covers
the price, every refund approved by a person), and where a fiat value is needed but no rate
is known the answer is the safe one too: not tolerated, not approved automatically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l

from . import money
from .models import Merchant

MAX_PERCENT = Decimal(10)  # a tolerance above 10 % is no tolerance but a discount
MAX_FIAT = Decimal(10) ** 9
PLACES = 2
_NUMBER = re.compile(r"\d{1,12}(\.\d{1,8})?", re.ASCII)


class PolicyError(ValueError):
    """A policy value that cannot be kept; its text is for the person who typed it."""


@dataclass(frozen=True)
class Policy:
    currency: str  # the fiat the thresholds are in
    underpaid_percent: Decimal
    underpaid_fiat: Decimal
    late_accept: bool
    refund_auto_below: Decimal

    @property
    def tolerates_underpayment(self) -> bool:
        return self.underpaid_percent > 0 and self.underpaid_fiat > 0


def _stored(text: str | None) -> Decimal:
    """A stored value; a damaged one reads as 0, the safe default."""
    try:
        value = Decimal(text or "0")
    except InvalidOperation:
        return Decimal(0)
    return value if value.is_finite() and value >= 0 else Decimal(0)


def of(merchant: Merchant) -> Policy:
    return Policy(currency=merchant.policy_currency or "EUR",
                  underpaid_percent=_stored(merchant.underpaid_percent),
                  underpaid_fiat=_stored(merchant.underpaid_fiat),
                  late_accept=bool(merchant.late_accept if merchant.late_accept is not None
                                   else True),
                  refund_auto_below=_stored(merchant.refund_auto_below))


def short_tolerated(policy: Policy, asked: Decimal, paid: Decimal,
                    rate: Decimal | None) -> bool:
    """Whether `paid`, short of `asked` (both in the coin), counts as paid: short by at most
    the percent AND by at most the fiat amount at `rate` (coin -> policy currency)."""
    if not policy.tolerates_underpayment or asked <= 0 or paid <= 0 or paid >= asked:
        return False
    short = asked - paid
    if short * 100 > asked * policy.underpaid_percent:
        return False
    if rate is None or rate <= 0:
        return False
    return short * rate <= policy.underpaid_fiat


def late_accepted(policy: Policy, value_at_arrival: Decimal | None, price: Decimal) -> bool:
    """Late money is accepted when the merchant allows it and its value when it arrived (in
    the price's currency) covers the price; an unknown value is not accepted."""
    return policy.late_accept and value_at_arrival is not None and value_at_arrival >= price


def approves_itself(policy: Policy, amount: Decimal, rate: Decimal | None) -> bool:
    """Whether a refund of `amount` (coin) is below the merchant's automatic approval limit
    at `rate` (coin -> policy currency)."""
    if policy.refund_auto_below <= 0 or rate is None or rate <= 0:
        return False
    return amount * rate < policy.refund_auto_below


# ---------------------------------------------------------------- values people type

def parse_percent(text: str) -> Decimal:
    value = _typed(text)
    if value > MAX_PERCENT:
        raise PolicyError(_l("A tolerance may be at most %(max)s percent.", max=MAX_PERCENT))
    return value


def parse_fiat(text: str) -> Decimal:
    value = _typed(text)
    if value > MAX_FIAT:
        raise PolicyError(_l("This amount is too large."))
    if value != value.quantize(Decimal(1).scaleb(-PLACES)):
        raise PolicyError(_l("Use at most two decimal places."))
    return value


def _typed(text: str) -> Decimal:
    cleaned = (text or "").strip()
    if not _NUMBER.fullmatch(cleaned):
        raise PolicyError(_l("Enter a number such as 1 or 2.50."))
    return Decimal(cleaned)


def text(value: Decimal) -> str:
    """Canonical stored text."""
    return money.plain(value)
