"""The customer's side of money owed back, on the page itself (no JavaScript needed): asking for
it to a wallet address, and withdrawing a request nobody decided yet.

Cookieless like the rest of the page: the forms carry a token bound to the page
(forms.PageForm). A refused claim stores nothing and shows the page again with why.
"""

from __future__ import annotations

from flask import Flask, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from .. import db
from .. import refund_rules as rules
from ..models import Page
from ..pagekinds import KINDS, present, snapshot
from ..pagekinds.owed import places
from ..services import refunds
from . import forms
from .customer import bp, load_page, no_store, render_page

# Refusals the customer can fix in the form (400); the rest are the page's state (409).
_INPUT = frozenset({refunds.TOO_MUCH, refunds.TOO_SMALL, refunds.BAD_AMOUNT,
                    refunds.BAD_DESTINATION})
# Which field a refusal is about, so that the page points at it.
_FIELD = {refunds.TOO_MUCH: "amount", refunds.TOO_SMALL: "amount",
          refunds.BAD_AMOUNT: "amount", refunds.BAD_DESTINATION: "address"}


@bp.post("/p/<page_id>/refund")
def claim_refund(page_id: str) -> ResponseReturnValue:
    """The customer asks for the money the page owes them. Approved at once when the shop's
    policy lets a refund this small through: then sent after the commit, so the withdrawal
    call runs with no transaction open (services/refunds.send)."""
    session = db.session()
    page = load_page(page_id)
    form = forms.RefundForm(page.id, formdata=request.form)
    owed = (snapshot.model_of(session, page).get("refund") or {}).get("owed")
    if not owed:
        return _refused(session, page, 409, refunds.refused(refunds.NOTHING_OWED).message,
                        form)
    if not form.validate_on_submit():
        field = next(iter(form.errors), None)
        return _refused(session, page, 400, _first_error(form), form,
                        field if field != "csrf_token" else None)
    currency = str(owed["currency"])
    address, tag = str(form.address.data or ""), str(form.tag.data or "") or None
    try:
        amount = forms.refund_amount(form.amount.data, places(currency))
    except ValueError as exc:
        return _refused(session, page, 400, str(exc), form, "amount")
    wrong = forms._destination_error(currency, address, tag, testnet=present.testnet())
    if wrong is not None:
        return _refused(session, page, 400, wrong[1], form, wrong[0])
    try:
        refund = refunds.request(session, page, address, tag, amount)
    except refunds.Refused as exc:
        return _refused(session, page, 400 if exc.code in _INPUT else 409, exc.message, form,
                        _FIELD.get(exc.code))
    approved = refund.state == rules.APPROVED
    refund_id = refund.id
    session.commit()
    if approved:
        refunds.send(refund_id)
    return redirect(url_for("pages.show", page_id=page.id), 303)


@bp.post("/p/<page_id>/refund/<int:refund_id>/cancel")
def cancel_refund(page_id: str, refund_id: int) -> ResponseReturnValue:
    """The customer withdraws a request the shop has not decided yet."""
    session = db.session()
    page = load_page(page_id)
    form = forms.RefundCancelForm(page.id, formdata=request.form)
    if not form.validate_on_submit():
        return _refused(session, page, 400, _first_error(form))
    try:
        refunds.cancel(session, page, refund_id)
    except refunds.Refused as exc:
        return _refused(session, page, 404 if exc.code == refunds.NOT_FOUND else 409,
                        exc.message)
    session.commit()
    return redirect(url_for("pages.show", page_id=page.id), 303)


def _first_error(form: forms.PageForm) -> str:
    for errors in form.errors.values():
        for error in errors:
            return str(error)
    return _("Please check your answer.")


def _refused(session: Session, page: Page, status: int, message: str,
             form: forms.RefundForm | None = None, field: str | None = None
             ) -> ResponseReturnValue:
    """The page again, nothing stored, the customer's answers kept, with why (an answer no
    form field could hold, control characters or kilobytes, is not echoed back)."""
    session.rollback()
    if form is not None:
        for item, limit in ((form.address, forms.MAX_ADDRESS), (form.tag, forms.MAX_TAG),
                            (form.amount, forms.MAX_AMOUNT_TEXT)):
            data = item.data
            if not isinstance(data, str) or len(data) > limit or not data.isprintable():
                item.data = ""
    html = render_page(session, page, KINDS[page.kind].template, refund_form=form,
                       refund_error=message, refund_error_field=field)
    return no_store(make_response(html, status))


def init_app(app: Flask) -> None:
    """Its routes are on the customer blueprint (imported before that is registered); their
    forms carry the page's own token, as the page's other forms do."""
    forms.exempt_from_session_csrf(app, claim_refund, cancel_refund)
