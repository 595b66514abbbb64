"""The v2 wire protocol: request checks, error shapes and field validation.

Errors are exceptions carrying the exact body the processor answers; the API blueprint
turns them into responses. Messages follow the processor's (Laravel-style) wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from flask import Response, request

from checkout.wire import decimals, jsontext, phpjson

from . import currencies
from .currencies import Currency

BAD_CONTENT = {"error": "Bad content format", "code": "bad_content_format"}
NO_KEY = {"error": "No key header", "code": "required_header_key"}
BAD_KEY = {"error": "Bad key header", "code": "bad_header_key"}
NO_SIGNATURE = {"error": "No signature header", "code": "required_header_signature"}
BAD_SIGNATURE = {"error": "Bad signature header", "code": "bad_header_signature"}
# Sic: the documented body of the exchange/calculate rate limit is not valid JSON.
RATE_LIMITED_BODY = '{"errors": {"error code: 1015"}}'
_EMAIL = re.compile(r"\A[^@\s]{1,64}@[^@\s]+\.[^@\s]+\Z")
# Above this an amount is nonsense (and would overflow Decimal's 28 digits at 8 places).
MAX_AMOUNT = Decimal(10) ** 15


class ApiError(Exception):
    """An answer other than success: HTTP status and the exact JSON body."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body

    def response(self) -> Response:
        text = self.body if isinstance(self.body, str) else phpjson.dumps(self.body)
        return Response(text, status=self.status, mimetype="application/json")


def validation_error(errors: dict[str, str], status: int = 400) -> ApiError:
    return ApiError(status, {"errors": errors})


def read_body() -> dict[str, Any]:
    """The request's JSON parameters; `{}`, `[]` (PHP's empty array) and `null` (Go's
    `json.Marshal(nil)`) all mean none, as they do at the processor."""
    if request.mimetype != "application/json":
        raise ApiError(400, BAD_CONTENT)
    try:
        body = jsontext.loads(request.get_data())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, BAD_CONTENT) from exc
    if body is None or isinstance(body, list):
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, BAD_CONTENT)
    return body


def _label(name: str) -> str:
    return name.replace("_", " ")


@dataclass
class Fields:
    """Reads request fields, collecting one message per bad field (all at once, like Laravel)."""

    body: dict[str, Any]

    def __post_init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def check(self) -> None:
        if self.errors:
            raise validation_error(self.errors)

    def present(self, name: str) -> bool:
        return self.body.get(name) not in (None, "")

    def _required(self, name: str) -> bool:
        if self.present(name):
            return True
        self.fail(name, f"The {_label(name)} field is required.")
        return False

    def string(self, name: str, *, required: bool = True, max_length: int = 255,
               numbers: bool = False) -> str | None:
        """A string field; with `numbers`, a JSON integer is taken as its digits."""
        if not self.present(name):
            if required:
                self._required(name)
            return None
        value = self.body[name]
        if numbers and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.fail(name, f"The {_label(name)} must be a string.")
            return None
        if len(value) > max_length:
            self.fail(name, f"The {_label(name)} may not be greater than {max_length} "
                            "characters.")
            return None
        return value

    def currency(self, name: str, *, required: bool = True, crypto: bool = False,
                 ) -> Currency | None:
        if not self.present(name):
            if required:
                self._required(name)
            return None
        found = currencies.get(self.body[name])
        if found is None or (crypto and not found.is_crypto):
            self.fail(name, f"The selected {_label(name)} is invalid.")
            return None
        return found

    def amount(self, name: str, *, required: bool = True, minimum: Decimal | None = None,
               places: int = currencies.PLACES) -> Decimal | None:
        """A positive amount, as a decimal string or a bare JSON number."""
        if not self.present(name):
            if required:
                self._required(name)
            return None
        value = self.body[name]
        try:
            amount = decimals.read_decimal(value)  # bounded below, with the processor's words
        except decimals.AmountError:
            self.fail(name, f"The {_label(name)} must be a number.")
            return None
        if isinstance(value, str) and not re.fullmatch(r"\s*[0-9]+(\.[0-9]+)?\s*", value):
            self.fail(name, f"The {_label(name)} must be a number.")
            return None
        floor = minimum if minimum is not None else Decimal(0)
        if amount <= 0 or amount < floor:
            shown = decimals.plain(floor) if floor > 0 else "0"
            self.fail(name, f"The {_label(name)} must be at least {shown}.")
            return None
        if amount >= MAX_AMOUNT:
            self.fail(name, f"The {_label(name)} may not be greater than {MAX_AMOUNT - 1}.")
            return None
        if amount != amount.quantize(Decimal(1).scaleb(-places)):
            self.fail(name, f"The {_label(name)} may not have more than {places} decimal "
                            "places.")
            return None
        return amount

    def boolean(self, name: str, *, required: bool = True) -> bool | None:
        if name not in self.body or self.body[name] is None:
            if required:
                self._required(name)
            return None
        value = self.body[name]
        if isinstance(value, bool):
            return value
        if value in (0, 1, "0", "1", "true", "false"):
            return value in (1, "1", "true")
        self.fail(name, f"The {_label(name)} field must be true or false.")
        return None

    def url(self, name: str, *, required: bool = True) -> str | None:
        value = self.string(name, required=required, max_length=2048)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
            self.fail(name, f"The {_label(name)} format is invalid.")
            return None
        return value

    def email(self, name: str, *, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is not None and not _EMAIL.match(value):
            self.fail(name, f"The {_label(name)} must be a valid email address.")
            return None
        return value

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        if not self.present(name):
            return default
        value = self.body[name]
        if value not in options:
            self.fail(name, f"The selected {_label(name)} is invalid.")
            return default
        return str(value)
