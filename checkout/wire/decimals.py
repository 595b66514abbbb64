"""Decimal amounts on the processor's wire: strict parsing of outside input, lenient parsing
of the processor's, and canonical fixed-point text. No float ever touches an amount.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

# ASCII digits only: Decimal() alone would take "NaN", "1e3", "1_000" and "١٢".
_AMOUNT = re.compile(r"\A[0-9]{1,20}(?:\.[0-9]{1,18})?\Z")
MAX_PLACES = 18


class AmountError(ValueError):
    """An amount that is not a plain, positive, bounded decimal."""


def parse_amount(value: Any, places: int = MAX_PLACES, *, allow_zero: bool = False) -> Decimal:
    """Strictly parse an amount from outside input (links, forms, merchant API).

    Accepts a decimal string or an int (a JSON number that was an integer, or a
    Decimal produced by `loads`); refuses floats, booleans, exponents, signs,
    NaN, infinities, separators and more than `places` decimal places.
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise AmountError("amount must be a decimal string")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise AmountError("amount must be a finite number")
        # Bounds first: format() would spell out 1E+999999999 in full, a gigabyte of digits.
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)  # finite
        if value.adjusted() >= 20 or exponent < -2 * MAX_PLACES:
            raise AmountError("amount must look like 12.34")
        text = format(value, "f")
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise AmountError("amount must be a decimal string")
    if not _AMOUNT.match(text):
        raise AmountError("amount must look like 12.34")
    amount = Decimal(text)
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # finite by the pattern above
    if -exponent > places and amount != amount.quantize(Decimal(1).scaleb(-places), ROUND_DOWN):
        raise AmountError(f"amount has more than {places} decimal places")
    if amount == 0 and not allow_zero:
        raise AmountError("amount must be greater than zero")
    return amount


# What a processor amount may be: CoinsPaid writes 8 decimal places, and no currency's
# amount reaches 10**16. Anything else is a forged or broken value: refused before it is
# formatted, since spelling out 1e999999999 takes gigabytes and seconds.
PROCESSOR_PLACES = 8
_PROCESSOR_MAX_ADJUSTED = 15
_PROCESSOR_MAX_TEXT = 64


def read_decimal(value: Any) -> Decimal:
    """A finite decimal from a string or a bare JSON number, in short text only (AmountError
    otherwise). No bounds on its size: callers bound it before formatting it."""
    if isinstance(value, bool) or isinstance(value, float) or value is None:
        raise AmountError(f"not a processor amount: {value!r}")
    raw = value.strip() if isinstance(value, str) else str(value)
    if len(raw) > _PROCESSOR_MAX_TEXT:
        raise AmountError("processor amount is too long")
    try:
        amount = Decimal(raw)
    except InvalidOperation as exc:
        raise AmountError("not a processor amount") from exc
    if not amount.is_finite():
        raise AmountError("not a processor amount")
    return amount


def from_processor(value: Any) -> Decimal:
    """Leniently read a processor amount: "0.01000000", 1, Decimal("1.5") (bare JSON numbers),
    within what any currency can hold (AmountError otherwise)."""
    amount = read_decimal(value)
    if amount.is_zero():
        return Decimal(0)
    if not -PROCESSOR_PLACES <= amount.adjusted() <= _PROCESSOR_MAX_ADJUSTED:
        raise AmountError("processor amount is out of bounds")
    if amount != amount.quantize(Decimal(1).scaleb(-PROCESSOR_PLACES), ROUND_DOWN):
        raise AmountError(f"processor amount has more than {PROCESSOR_PLACES} places")
    return amount


def text(amount: Decimal, places: int | None = None) -> str:
    """Canonical fixed-point text, never exponent form; quantised when `places` is given."""
    if places is not None:
        amount = amount.quantize(Decimal(1).scaleb(-places), ROUND_DOWN)
    return format(amount, "f")


def plain(amount: Decimal) -> str:
    """Shortest fixed-point text: 0.00123000 -> "0.00123", 20 -> "20" (for URIs)."""
    # Not Decimal.normalize(): it rounds to the context's 28 significant digits.
    result = format(amount, "f")
    if "." in result:
        result = result.rstrip("0").rstrip(".")
    return result or "0"
