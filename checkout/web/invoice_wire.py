"""The merchant API's request fields, read as CoinsPaid reads them: every bad field at once, in
the processor's (Laravel-style) words, for `invoices/create` and `invoices/{foreign_id}/cancel/`
(coinspaid-api.md §2.11, §2.12). These words are the API's contract; the invoice workflow
(services/invoices.py) takes the validated `InvoiceRequest`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from .. import currencies, limits, money, returns
from ..emails import valid_email
from ..models import Merchant
from ..services.invoices import PLACES, InvalidRequest, InvoiceRequest

TYPES = ("fill_or_kill", "good_until_expired")
MAX_AMOUNT = Decimal(10) ** 15
MAX_FOREIGN_ID = 255
WRONG_STATE = {"error": "Invoice cannot be failed in its current state.",
               "code": "invalid_invoice_state"}
UNKNOWN_FOREIGN_ID = {"foreign_id": "The selected foreign id is invalid."}


def _label(name: str) -> str:
    return name.replace("_", " ")


class _Fields:
    """Reads request fields, one message per bad field, all at once."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.errors: dict[str, str] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def present(self, name: str) -> bool:
        return self.body.get(name) not in (None, "")

    def string(self, name: str, *, required: bool = True, max_length: int = 255,
               numbers: bool = False) -> str | None:
        if not self.present(name):
            if required:
                self.fail(name, f"The {_label(name)} field is required.")
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
        if "\x00" in value:  # no database keeps it, and no shop means it
            self.fail(name, f"The {_label(name)} format is invalid.")
            return None
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.body.get(name)
        if value is None:
            self.fail(name, f"The {_label(name)} field is required.")
            return None
        if isinstance(value, bool):
            return value
        if value in (0, 1, "0", "1", "true", "false") and not isinstance(value, Decimal):
            return value in (1, "1", "true")
        self.fail(name, f"The {_label(name)} field must be true or false.")
        return None

    def amount(self, name: str) -> Decimal | None:
        """A JSON number (Decimal from `money.loads`) or a decimal string; never a float."""
        if not self.present(name):
            self.fail(name, f"The {_label(name)} field is required.")
            return None
        value = self.body[name]
        if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
            self.fail(name, f"The {_label(name)} must be a number.")
            return None
        if isinstance(value, str):
            text = value.strip()
            sign = text.startswith("-")
            if not text.lstrip("-").replace(".", "", 1).isdigit() or not text.isascii():
                self.fail(name, f"The {_label(name)} must be a number.")
                return None
            if sign:
                self.fail(name, f"The {_label(name)} must be at least 0.")
                return None
        elif isinstance(value, Decimal) and value.is_finite() and value < 0 or \
                isinstance(value, int) and value < 0:
            self.fail(name, f"The {_label(name)} must be at least 0.")
            return None
        try:
            # Bounded and strict: huge exponents, NaN and separators never reach arithmetic.
            amount = money.parse_amount(value, money.MAX_PLACES, allow_zero=True)
        except money.AmountError as exc:
            if "places" in str(exc):
                self.fail(name, f"The {_label(name)} may not have more than {PLACES} decimal "
                                "places.")
            else:
                self.fail(name, f"The {_label(name)} must be a number.")
            return None
        if amount <= 0:
            self.fail(name, f"The {_label(name)} must be at least 0.")
            return None
        if amount >= MAX_AMOUNT:
            self.fail(name, f"The {_label(name)} may not be greater than {MAX_AMOUNT - 1}.")
            return None
        if amount != amount.quantize(Decimal(1).scaleb(-PLACES)):
            self.fail(name, f"The {_label(name)} may not have more than {PLACES} decimal "
                            "places.")
            return None
        return amount

    def currency(self, name: str, *, required: bool = True, crypto: bool = False
                 ) -> str | None:
        if not self.present(name):
            if required:
                self.fail(name, f"The {_label(name)} field is required.")
            return None
        value = self.body[name]
        known = currencies.get(value)
        if known is not None:
            return known.code
        if not crypto and currencies.is_fiat(value):
            return str(value).upper()
        self.fail(name, f"The selected {_label(name)} is invalid.")
        return None

    def url(self, name: str, allowed_hosts: list[str]) -> str | None:
        value = self.string(name, max_length=returns.MAX_LENGTH)
        if value is None:
            return None
        try:
            return returns.check(value, allowed_hosts)
        except returns.ReturnUrlError:
            self.fail(name, f"The {_label(name)} format is invalid.")
            return None

    def email(self, name: str) -> str | None:
        value = self.string(name, required=False)
        if value is not None and not valid_email(value):
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


def validate(session: Session, merchant: Merchant, params: Mapping[str, Any]) -> InvoiceRequest:
    """The request of §2.11, or InvalidRequest with every bad field in the processor's words."""
    fields = _Fields(params)
    timer = fields.boolean("timer")
    title = fields.string("title", max_length=50)
    description = fields.string("description", required=False, max_length=1000)
    currency = fields.currency("currency")
    amount = fields.amount("amount")
    foreign_id = fields.string("foreign_id", numbers=True)
    url_success = fields.url("url_success", merchant.return_hosts)
    url_failed = fields.url("url_failed", merchant.return_hosts)
    email = fields.email("email_user")
    sender = fields.currency("sender_currency", required=False, crypto=True)
    kind = fields.choice("type", TYPES, TYPES[0])
    reference = fields.string("end_user_reference", required=False)
    if currency is not None and amount is not None:
        floor = limits.minimum_payment(session, currency)
        if floor is not None and amount < floor:
            fields.fail("amount", f"The amount must be at least {money.plain(floor)}.")
    if fields.errors:
        raise InvalidRequest(fields.errors)
    assert timer is not None and title is not None and currency is not None
    assert amount is not None and foreign_id is not None
    assert url_success is not None and url_failed is not None
    # Without a timer the payer picks the currency on the page (type 1), as at the processor.
    return InvoiceRequest(foreign_id, title, description, currency, amount, timer,
                          sender if timer else None, kind, url_success, url_failed, email,
                          reference)


def check_foreign_id(foreign_id: str) -> None:
    """A cancel's foreign_id that no invoice can have: refused as the processor refuses an
    unknown one (404), before any lookup."""
    if "\x00" in foreign_id or len(foreign_id) > MAX_FOREIGN_ID:
        raise InvalidRequest(UNKNOWN_FOREIGN_ID, 404)
