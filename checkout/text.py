"""Outside text that is not text: found where it is parsed, named by its field.

A JSON escape such as `"\\ud800"` (half of a surrogate pair) parses into a Python string that
no database, log or response can encode as UTF-8; percent-escaped bytes that are not UTF-8
(`%FF`, `%ED%A0%80`) are the same thing in a query or a form. Left in, either fails far from
where it came in (a 500 at the commit). Every parser of outside input asks here first and
refuses the request with a 400 that names the field.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.exceptions import BadRequest

# Only an escape (\uD800-\uDFFF) makes a lone surrogate out of JSON bytes that decoded as UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class NotText(ValueError):
    """A field whose text does not encode as UTF-8; `field` is printable (escaped)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is not UTF-8 text")
        self.field = field


class BadText(BadRequest):
    """A request refused for such a field: each audience's error handler answers it in its
    own shape (CoinsPaid's `{"errors": {field: message}}`, or a customer's page)."""

    def __init__(self, field: str) -> None:
        super().__init__(message(field))
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


def bad_query_field(raw: bytes) -> str | None:
    """The first name in a query string or urlencoded form whose name or value, once
    percent-decoded, is not UTF-8. Werkzeug keeps such bytes percent-escaped instead (or
    drops a whole form whose raw bytes are not UTF-8): readable, but not what was sent."""
    if b"%" not in raw and raw.isascii():
        return None
    decoded = raw.decode("utf-8", "surrogateescape")
    for name, value in parse_qsl(decoded, keep_blank_values=True, errors="surrogateescape"):
        if not (is_text(name) and is_text(value)):
            return printable(name)
    return None


def message(field: str) -> str:
    """The CoinsPaid-style validation message for such a field (English, as the API's)."""
    return f"The {field.replace('_', ' ')} must be valid UTF-8 text."
