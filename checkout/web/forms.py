"""Customer forms (Flask-WTF) with CSRF tokens bound to the page, not to a session cookie.

Customer pages are cookieless so that they work inside a shop's third-party iframe, where
browsers drop or partition cookies; a session-bound CSRF token would fail there. The token
is an HMAC of the page id and the form's purpose under the site's secret key: only a page
the customer has open can carry it, and no other site can read it from that page.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import Flask, current_app
from flask_babel import lazy_gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, Field, RadioField, StringField
from wtforms.csrf.core import CSRF
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

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
