"""Customer forms (Flask-WTF) with CSRF tokens bound to the page, not to a session cookie.

Customer pages are cookieless so that they work inside a shop's third-party iframe, where
browsers drop or partition cookies; a session-bound CSRF token would fail there. The token
is an HMAC of the page id and the form's purpose under the site's secret key: only a page
the customer has open can carry it, and no other site can read it from that page.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from decimal import ROUND_DOWN, Decimal
from typing import Any

from flask import Flask, current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, Field, RadioField, StringField
from wtforms.csrf.core import CSRF
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from .. import currencies, payout_addresses
from ..emails import valid_email


class PageCSRF(CSRF):
    """WTForms CSRF keyed by the page id (the form's `csrf_context`) and the site secret."""

    def setup_form(self, form: Any) -> Any:
        self.page_id = str(form.meta.csrf_context or "")
        self.purpose = type(form).__name__
        return super().setup_form(form)

    def generate_csrf_token(self, csrf_token_field: Field) -> str:
        return page_token(self.page_id, self.purpose)

    def validate_csrf_token(self, form: Any, field: Field) -> None:
        given = field.data if isinstance(field.data, str) else ""
        if not self.page_id or not hmac.compare_digest(
                given.encode(), page_token(self.page_id, self.purpose).encode()):
            raise ValidationError(_l("This form has expired. Please reload the page."))


def page_token(page_id: str, purpose: str) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    message = f"checkout-form:{purpose}:{page_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class PageForm(FlaskForm):
    """A form on a customer page; build it with the page id: `SomeForm(page.id)`."""

    class Meta:
        csrf = True
        csrf_class = PageCSRF

    def __init__(self, page_id: str, **kwargs: Any) -> None:
        super().__init__(meta={"csrf_context": page_id}, **kwargs)


class AgainForm(PageForm):
    """"Make another payment" on a paid page: no fields but the token."""


def exempt_from_session_csrf(app: Flask, *views: Any) -> None:
    """Views whose forms are PageForms: their token is checked by the form, bound to the
    page, so the app-wide session-bound check (CSRFProtect) stands aside for them alone."""
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        for view in views:
            csrf.exempt(view)


class PickForm(PageForm):
    """The invoice's currency picker (and the payer's email where the shop gave none).

    `currency` choices are set by the view from the currencies the page offers, so a value
    made by hand is refused like any other wrong answer.
    """

    currency = RadioField(_l("Currency"), validators=[InputRequired()], choices=[])
    email = EmailField(_l("Your email address"), validators=[
        Optional(), Length(max=255), lambda form, field: check_email(field)])


class EmailForm(PageForm):
    """The payer's email, asked before the address of an invoice whose shop gave none."""

    email = EmailField(_l("Your email address"), validators=[
        DataRequired(), Length(max=255), lambda form, field: check_email(field)])


def check_email(field: Field) -> None:
    """The invoice service's own rule (emails.py): what it would store, the form accepts."""
    if field.data and not valid_email(str(field.data).strip()):
        raise ValidationError(_l("Please enter a valid email address."))


class FindForm(FlaskForm):
    """"Find my payment": a txid or an address, and a tag for a coin that needs one.

    No CSRF token: the form changes nothing and answers only what its sender typed, so a
    post forged by another site gains that site nothing (it cannot read the answer: the
    page sends no CORS headers), and a token would need a session cookie or a page id,
    neither of which a customer who lost their page has. Its rate limit stays its guard.
    """

    class Meta:
        csrf = False

    # Spelled out: `make messages` extracts lazy_gettext, not its alias.
    text = StringField(lazy_gettext("Transaction ID or address"))
    tag = StringField(lazy_gettext("Destination tag or memo"))
# ---------------------------------------------------------------------------------------------
# Money owed back: the customer's claim, and withdrawing it


# Longer than any address or tag of any network: more is not an address, and is not read.
MAX_ADDRESS = 255
MAX_TAG = 64
MAX_AMOUNT_TEXT = 40
_AMOUNT = re.compile(r"\A[0-9]+(?:[.,][0-9]+)?\Z")


def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class RefundForm(PageForm):
    """Where to send money the page owes back, and how much (empty: all of it). The address
    and tag are checked for the currency's network by the view (`_destination_error`); the
    amount here, as text, so that no float or exponent ever becomes money."""

    address = StringField(_l("Address"), filters=[_stripped],
                          validators=[DataRequired(_l("Please enter your wallet address.")),
                                      Length(max=MAX_ADDRESS, message=_l(
                                          "This is too long to be a wallet address."))])
    tag = StringField(_l("Destination tag"), filters=[_stripped], validators=[
        Optional(), Length(max=MAX_TAG, message=_l("This is too long to be a tag."))])
    amount = StringField(_l("Amount"), filters=[_stripped], validators=[
        Optional(), Length(max=MAX_AMOUNT_TEXT, message=_l(
            "Enter the amount as a number, such as 0.0015."))])


class RefundCancelForm(PageForm):
    """"Cancel this request" on a refund nobody decided yet: no fields but the token."""


def refund_amount(text: str | None, places: int) -> Decimal | None:
    """The amount a customer typed, exactly, or None for "everything owed". Digits with one
    decimal mark (a point, or the comma many languages write); no sign, exponent, NaN or
    separators, no more places than the coin carries. ValueError with the customer's text."""
    if not text:
        return None
    if len(text) > MAX_AMOUNT_TEXT or not _AMOUNT.fullmatch(text):
        raise ValueError(_("Enter the amount as a number, such as 0.0015."))
    amount = Decimal(text.replace(",", "."))
    if amount != amount.quantize(Decimal(1).scaleb(-places), ROUND_DOWN):
        raise ValueError(_("This coin carries at most %(places)d decimal places.",
                           places=places))
    if amount <= 0:
        raise ValueError(_("Enter an amount above zero."))
    return amount


def _destination_error(currency: str, address: str, tag: str | None, *,
                       testnet: bool) -> tuple[str, str] | None:
    """Why this address (and tag) cannot receive a refund in `currency`, as (field, message);
    None when it can: the network's own rules (payout_addresses.check: its characters,
    checksum, test or main network, tag), and a tag asked for wherever the coin has one. A
    wallet of the customer's own ignores a tag, but an exchange's shared address credits
    nobody without it, and the money would be lost."""
    known = currencies.get(currency)
    label = _(known.tag_label) if known is not None and known.tag_label else None
    if label is not None and not tag:
        return "tag", _("Please enter your %(label)s: without it the refund cannot reach "
                        "your account.", label=label)
    found = payout_addresses.check(currency, address, tag, testnet=testnet)
    if isinstance(found, payout_addresses.Refusal):
        return ("tag" if found.code.startswith("tag") else "address"), str(found.message)
    return None
