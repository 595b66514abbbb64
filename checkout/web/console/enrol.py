"""The one-time link's page (/console/enrol/<token>): a new user sets a password, then their
authenticator (QR and secret as text), confirms it with a code and sees their recovery codes
once; an enrolled user signs in there to accept an invitation. Then they are signed in."""

from __future__ import annotations

from flask import Response, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ... import clock, db, passwords
from ...services import enrolment
from .base import bp, client_address, public, render, set_session_cookie
from .signin import blocked

ROLE_NAMES: dict[str, LazyString] = {
    "owner": _l("owner"), "admin": _l("admin"), "developer": _l("developer"),
    "support": _l("support"), "accountant": _l("accountant"), "viewer": _l("viewer"),
}


def _password_error(problem: str) -> str:
    if problem == enrolment.TOO_SHORT:
        return _("Choose a password of at least %(count)s characters.",
                 count=passwords.MINIMUM_LENGTH)
    if problem == enrolment.TOO_LONG:
        return _("Choose a password of at most %(count)s characters.",
                 count=passwords.MAXIMUM_LENGTH)
    return _("The two passwords are not the same.")


def _gone() -> ResponseReturnValue:
    return render("console/enrol_gone.html"), 404


@bp.route("/enrol/<token>", methods=["GET", "POST"])
@public
def enrol(token: str) -> ResponseReturnValue:
    now = clock.now()
    with db.transaction() as session:
        found = enrolment.open_link(session, token, now)
        if found is None:
            return _gone()
        link, user = found
        step = enrolment.step(user)
        invitation = enrolment.invited_to(session, link)
        error = None
        if request.method == "POST" and request.form.get("step") == step:
            if step == enrolment.PASSWORD:
                problem = enrolment.set_password(session, user, request.form.get("password", ""),
                                                 request.form.get("again", ""))
                if problem is None:
                    return redirect(url_for("console.enrol", token=token), 303)
                error = _password_error(problem)
            elif step == enrolment.FACTOR:
                done = enrolment.confirm_factor(session, link, user,
                                                request.form.get("code", ""), now=now,
                                                address=client_address(),
                                                user_agent=request.user_agent.string)
                if done is not None:
                    return _signed_in(render("console/recovery_codes.html",
                                             codes=done.recovery_codes), done.token)
                error = _("That code is not right. Enter the code your app shows now.")
            else:
                accepted = enrolment.accept_invitation(
                    session, link, user, request.form.get("password", ""),
                    request.form.get("code", ""), now=now, address=client_address(),
                    user_agent=request.user_agent.string)
                if isinstance(accepted, enrolment.Done):
                    return _signed_in(redirect(url_for("console.overview"), 303),
                                      accepted.token)
                if accepted.wait is not None:
                    return blocked("console/enrol.html", accepted.wait, step=step,
                                   email=user.email, invitation=_named(invitation))
                error = _("That password and code do not match this account.")
        qr_image, secret = enrolment.factor(user) if step == enrolment.FACTOR else ("", "")
    status = 200 if error is None else 400
    return render("console/enrol.html", step=step, email=user.email, error=error,
                  invitation=_named(invitation), qr_image=qr_image, secret=secret,
                  minimum=passwords.MINIMUM_LENGTH, maximum=passwords.MAXIMUM_LENGTH), status


def _named(invitation: tuple[str, str] | None) -> tuple[str, str] | None:
    if invitation is None:
        return None
    merchant, role = invitation
    return merchant, str(ROLE_NAMES.get(role, role))


def _signed_in(page: ResponseReturnValue, token: str) -> Response:
    response = make_response(page)
    set_session_cookie(response, token)
    return response
