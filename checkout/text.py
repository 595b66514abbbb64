"""Outside text that is not text: found where it is parsed, named by its field.

A JSON escape such as `"\\ud800"` (half of a surrogate pair) parses into a Python string that
no database, log or response can encode as UTF-8; percent-escaped bytes that are not UTF-8
(`%FF`, `%ED%A0%80`) are the same thing in a query or a form. Left in, either fails far from
where it came in (a 500 at the commit). Every parser of outside input asks here first and
refuses the request with a 400 that names the field. The JSON side (NotText, check_json) is
the wire format's, shared with the embedded sandbox: re-exported here.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from werkzeug.exceptions import BadRequest

from .wire.jsontext import NotText, check_json, is_text, printable

__all__ = ["BadText", "NotText", "bad_query_field", "check_json", "is_text", "message",
           "printable"]


class BadText(BadRequest):
    """A request refused for such a field: each audience's error handler answers it in its
    own shape (CoinsPaid's `{"errors": {field: message}}`, or a customer's page)."""

    def __init__(self, field: str) -> None:
        super().__init__(message(field))
        self.field = field


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
