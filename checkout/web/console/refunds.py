"""Refunds in the back office: the ones waiting for a decision (and every other), one refund's
facts, and the decision: approve (the code asked again; the withdrawal is then sent at once)
or reject with a reason the customer reads.

Filters live in the URL, so a link reproduces the view. A decision answers 303 back to the
refund with what happened in the query (`done`), the back office having no flash cookie.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ... import clock, db, roles
from ... import refund_rules as rules
from ...services import flagged as flagged_news
from ...services import refund_queue, signin
from ...services import refunds as decisions
from .base import (
    BadFilter,
    bp,
    client_address,
    id_filter,
    merchant_or_404,
    render,
    requires,
    signed,
)

REASON_MAX = 500  # the customer reads it on the page: a sentence or two
DONE = ("sent", "later", "failed", "busy", "rejected", "decided")


def state_names() -> dict[str, str]:
    return {
        rules.REQUESTED: _("Waiting for a decision"),
        rules.APPROVED: _("Approved, being sent"),
        rules.SENT: _("Sent"),
        rules.PENDING: _("Waiting for approval at the processor"),
        rules.CONFIRMED: _("Confirmed"),
        rules.REJECTED: _("Rejected"),
        rules.CANCELLED: _("Cancelled by the customer"),
        rules.FAILED: _("Failed"),
    }


def cause_names() -> dict[str, str]:
    return {rules.OVERPAID: _("Overpaid"), rules.UNDERPAID: _("Underpaid, not accepted"),
            rules.LATE: _("Paid late")}



def _filter() -> refund_queue.Filter:
    state = request.args.get("state", rules.REQUESTED)
    if state != refund_queue.ALL and state not in refund_queue.STATES:
        raise BadFilter("state")
    return refund_queue.Filter(state=state, merchant_id=id_filter("merchant"))


def _testnet() -> bool:
    return bool(current_app.config["SANDBOX"])


def _labels() -> dict[str, Any]:
    return {"states": state_names(), "causes": cause_names()}


@bp.route("/refunds")
@requires(roles.READ)
def refunds() -> ResponseReturnValue:
    who = signed()
    allowed = who.access.merchants(roles.READ)
    session = db.session()
    choices = flagged_news.merchant_choices(session, allowed)
    try:
        chosen = _filter()
        after = id_filter("after")
    except BadFilter:
        return render("console/refunds.html", error=_("That filter is not valid."),
                      chosen=refund_queue.Filter(), listing=None, merchants=choices,
                      **_labels()), 400
    listing = refund_queue.listing(session, allowed, chosen, after, testnet=_testnet())
    return render("console/refunds.html", error=None, chosen=chosen, listing=listing,
                  merchants=choices, **_labels())


def _row_or_404(refund_id: int) -> refund_queue.Row:
    """The refund among those the person may read (404 otherwise, as for none at all)."""
    try:
        return refund_queue.one(db.session(), refund_id,
                                signed().access.merchants(roles.READ), testnet=_testnet())
    except refund_queue.NotFound:
        abort(404)


def _show(refund_id: int, *, status: int = 200, errors: dict[str, str] | None = None,
          reason: str = "", message: str | None = None) -> ResponseReturnValue:
    row = _row_or_404(refund_id)
    done = request.args.get("done")
    return render("console/refund.html", row=row, errors=errors or {}, reason=reason,
                  reason_max=REASON_MAX, message=message,
                  done=done if done in DONE else None,
                  can_decide=signed().access.can(roles.REFUND, row.merchant_id),
                  **_labels()), status


def _back(refund_id: int, done: str) -> ResponseReturnValue:
    return redirect(url_for("console.refund", refund_id=refund_id, done=done), 303)


@bp.route("/refunds/<int:refund_id>")
@requires(roles.READ)
def refund(refund_id: int) -> ResponseReturnValue:
    return _show(refund_id)


def _decidable(refund_id: int) -> refund_queue.Row:
    row = _row_or_404(refund_id)
    merchant_or_404(row.merchant_id, roles.REFUND)
    return row


def _code_error(problem: str) -> str:
    if problem == signin.TOO_MANY_CODES:
        return _("Too many wrong codes: nothing was changed. Wait a few minutes, then enter "
                 "the code your app shows.")
    return _("That code is not right: nothing was changed. Enter the code your app shows "
             "now.")


@bp.route("/refunds/<int:refund_id>/approve", methods=["POST"])
@requires(roles.REFUND)
def refund_approve(refund_id: int) -> ResponseReturnValue:
    row = _decidable(refund_id)
    who = signed()
    session = db.session()
    problem = signin.confirm_code(session, who.user.id,
                                  request.form.get("confirm_code", "").strip(), now=clock.now())
    if problem is not None:
        session.rollback()
        return _show(row.id, status=422, errors={"confirm_code": _code_error(problem)})
    # The code is spent whatever follows: it confirmed this person's intent once.
    session.commit()
    try:
        decisions.approve(session, row.id, user_id=who.user.id, actor=who.user.email,
                        merchant_ids=who.access.merchants(roles.REFUND),
                        address=client_address())
        session.commit()
    except decisions.Refused as refused:
        session.rollback()
        return _refused(row.id, refused)
    return _back(row.id, _sent(row.id))


def _refused(refund_id: int, refused: decisions.Refused) -> ResponseReturnValue:
    """A decision the refund no longer takes: someone decided it first, or the page's money
    changed since it was asked for."""
    if refused.code == decisions.DECIDED:
        return _back(refund_id, "decided")
    return _show(refund_id, status=409, message=refused.message)


def _sent(refund_id: int) -> str:
    """Send the approved refund now, and say what became of it."""
    answer = decisions.send(refund_id)
    state = refund_queue.one(db.session(), refund_id,
                             signed().access.merchants(roles.REFUND)).state
    if state == rules.FAILED:
        return "failed"
    if state in (rules.SENT, rules.PENDING, rules.CONFIRMED):
        return "sent"
    return "busy" if answer == decisions.BUSY else "later"


def _reason_error(reason: str) -> str | None:
    if not reason:
        return _("Please write why: the customer reads it on the payment page.")
    if len(reason) > REASON_MAX:
        return _("A reason has at most %(count)d characters.", count=REASON_MAX)
    if not all(c.isprintable() or c in "\r\n" for c in reason):
        return _("This reason contains characters that are not allowed.")
    return None


@bp.route("/refunds/<int:refund_id>/reject", methods=["POST"])
@requires(roles.REFUND)
def refund_reject(refund_id: int) -> ResponseReturnValue:
    row = _decidable(refund_id)
    who = signed()
    reason = request.form.get("reason", "").strip()
    problem = _reason_error(reason)
    if problem is not None:
        # Bad input loses nothing: the form comes back with the text as it was written.
        return _show(row.id, status=422, errors={"reason": problem},
                     reason=reason[:REASON_MAX * 2])
    session = db.session()
    try:
        decisions.reject(session, row.id, reason, user_id=who.user.id, actor=who.user.email,
                       merchant_ids=who.access.merchants(roles.REFUND),
                       address=client_address())
        session.commit()
    except decisions.Refused as refused:
        session.rollback()
        return _refused(row.id, refused)
    return _back(row.id, "rejected")
