"""JSON with Decimal numbers, and text that is no text found where it is parsed.

Bare JSON numbers parse as Decimal (never float); the compact text written is the text
signed. A JSON escape such as `"\\ud800"` (half of a surrogate pair) parses into a Python
string that no database, log or response can encode as UTF-8: `loads` refuses it with
NotText, naming the field, before it can fail far from where it came in.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from . import decimals

# Only an escape (\uD800-\uDFFF) makes a lone surrogate out of JSON bytes that decoded as UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class NotText(ValueError):
    """A field whose text does not encode as UTF-8; `field` is printable (escaped)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is not UTF-8 text")
        self.field = field


def is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(name: str) -> str:
    """A field's name, fit to be written anywhere even when it is itself no text."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def check_json(raw: bytes | str, parsed: Any) -> None:
    """NotText naming the first string (key or value) of `parsed` that is no UTF-8 text."""
    if isinstance(raw, bytes):
        if _SURROGATE_ESCAPE_BYTES.search(raw) is None:
            return
    elif raw.isascii() and _SURROGATE_ESCAPE.search(raw) is None:
        return
    field = _first_bad(parsed, None)
    if field is not None:
        raise NotText(field)


def _first_bad(value: Any, path: str | None) -> str | None:
    """`path`: the field's dotted name; None for the whole body."""
    if isinstance(value, str):
        return None if is_text(value) else ("body" if path is None else path)
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key) if path is None else f"{path}.{key}"
            if not is_text(name):
                return printable(name)
            found = _first_bad(item, name)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_bad(item, str(index) if path is None else f"{path}.{index}")
            if found is not None:
                return found
    return None


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
    and a string that is no UTF-8 text (a lone surrogate's escape) too (NotText, naming it).

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
        return decimals.text(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """Compact JSON (the bytes we sign are the bytes we send); Decimals as strings."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=_default)
