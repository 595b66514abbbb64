"""Money is Decimal: strict parsing of outside input, lenient parsing of the processor's.

No float ever touches an amount. Amounts are stored as canonical decimal TEXT.
"""

from __future__ import annotations

import json
import re
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .text import check_json

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


def ceil(amount: Decimal, places: int) -> Decimal:
    """Round up: what a customer owes is never rounded down."""
    return amount.quantize(Decimal(1).scaleb(-places), ROUND_CEILING)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


# Deeper than anything the processor, a shop or a link sends (they nest three or four deep),
# and far below the interpreter's recursion limit: the JSON parser recurses once per level,
# and a parse driven to that limit leaves no frame for whatever runs meanwhile (a garbage
# collection's finalizers then fail), so nesting is measured before the parser runs.
MAX_JSON_DEPTH = 64
# A JSON string (skipped whole: brackets inside it are text) or one bracket.
_JSON_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _too_deep(raw: bytes | str, limit: int) -> bool:
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw  # brackets are ASCII
    if text.count("[") + text.count("{") <= limit:  # every real document
        return False
    depth = 0
    for match in _JSON_STRUCTURE.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif len(token) == 1:
            depth -= 1
    return False


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key is repeated")
    return result


def loads(raw: bytes | str, *, unique_keys: bool = False) -> Any:
    """JSON with bare numbers as Decimal; NaN/Infinity and absurd nesting refused (ValueError),
    and a string that is no UTF-8 text (a lone surrogate's escape) too (text.NotText, naming it).

    `unique_keys`: a repeated key is refused too, for signed text that others read as well:
    parsers disagree on which copy wins, so the same signature could mean two things.
    """
    if _too_deep(raw, MAX_JSON_DEPTH):
        raise ValueError("JSON nested too deeply")
    hook = _unique_keys if unique_keys else None
    try:
        parsed = json.loads(raw, parse_float=Decimal, parse_constant=_no_constants,
                            object_pairs_hook=hook)
    except RecursionError as exc:  # only if a caller is itself nearly out of stack
        raise ValueError("JSON nested too deeply") from exc
    check_json(raw, parsed)
    return parsed


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return text(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """Compact JSON (the bytes we sign are the bytes we send); Decimals as strings."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=_default)


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
