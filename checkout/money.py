"""Money is Decimal: the site's arithmetic on amounts (rounding up what is owed, figures a
person reads). Parsing and writing amounts is the wire format's (`checkout.wire.decimals`,
`checkout.wire.jsontext`), shared with the embedded sandbox; its names are re-exported here
so that the site reads every amount through one module.

No float ever touches an amount. Amounts are stored as canonical decimal TEXT.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from .wire.decimals import (
    MAX_PLACES,
    PROCESSOR_PLACES,
    AmountError,
    from_processor,
    parse_amount,
    plain,
    read_decimal,
    text,
)
from .wire.jsontext import MAX_JSON_DEPTH, dumps, loads

__all__ = [
    "MAX_JSON_DEPTH", "MAX_PLACES", "PROCESSOR_PLACES", "AmountError", "approx", "ceil",
    "dumps", "floor", "from_processor", "loads", "parse_amount", "plain", "read_decimal",
    "readable_rate", "text",
]


def ceil(amount: Decimal, places: int) -> Decimal:
    """Round up: what a customer owes is never rounded down."""
    return amount.quantize(Decimal(1).scaleb(-places), ROUND_CEILING)


def floor(amount: Decimal, places: int) -> Decimal:
    """Round down: what we promise to pay out is never more than what we hold."""
    return amount.quantize(Decimal(1).scaleb(-places), ROUND_FLOOR)


def approx(amount: Decimal, places: int, digits: int = 6) -> Decimal:
    """An "about" figure a person can read: rounded up to `digits` significant digits,
    never past the currency's `places` (0.011785001662786341 ETH -> 0.0117851)."""
    if not amount.is_finite() or amount <= 0:
        return ceil(amount, places) if amount.is_finite() else amount
    exponent = amount.adjusted()  # 0.0117 -> -2
    wanted = min(places, max(0, digits - 1 - exponent))
    return ceil(amount, wanted)


def readable_rate(rate: Decimal, places: int, digits: int = 6) -> Decimal:
    """An exchange rate as a person reads it (59743.82716049 -> 59743.83): `digits`
    significant digits, never fewer than the quote currency's `places`, no trailing zeros
    beyond them. Only for showing a rate: amounts are never rounded with it."""
    if not rate.is_finite() or rate <= 0:
        return rate
    wanted = max(places, digits - 1 - rate.adjusted())
    shown = rate.quantize(Decimal(1).scaleb(-wanted), ROUND_HALF_UP)
    while wanted > places and shown == shown.quantize(Decimal(1).scaleb(1 - wanted)):
        wanted -= 1
        shown = shown.quantize(Decimal(1).scaleb(-wanted))
    return shown
