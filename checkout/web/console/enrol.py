"""The one-time link's page (/console/enrol/<token>): a new user sets a password, then their
authenticator (QR and secret as text), confirms it with a code and sees their recovery codes
once; an enrolled user signs in there to accept an invitation. Then they are signed in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import Response, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from ... import clock, db, passwords
from ...models import Enrolment, User
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
        page = Page(token, enrolment.step(user), user.email,
                    _named(enrolment.invited_to(session, link)))
        if request.method == "POST" and request.form.get("step") == page.step:
            answered = ANSWERS[page.step](session, link, user, page, now)
            if answered is not None:
                return answered
        qr_image, secret = (enrolment.factor(user) if page.step == enrolment.FACTOR
                            else ("", ""))
    return render("console/enrol.html", step=page.step, email=page.email, error=page.error,
                  invitation=page.invitation, qr_image=qr_image, secret=secret,
                  minimum=passwords.MINIMUM_LENGTH,
                  maximum=passwords.MAXIMUM_LENGTH), 200 if page.error is None else 400


@dataclass
class Page:
    """The link's page being answered; `error` is set by a step that refuses its form."""

    token: str
    step: str
    email: str
    invitation: tuple[str, str] | None
    error: str | None = None


Answer = Callable[[Session, Enrolment, User, Page, datetime], ResponseReturnValue | None]


def _password(session: Session, _link: Enrolment, user: User, page: Page,
              _now: datetime) -> ResponseReturnValue | None:
    problem = enrolment.set_password(session, user, request.form.get("password", ""),
                                     request.form.get("again", ""))
    if problem is None:
        return redirect(url_for("console.enrol", token=page.token), 303)
    page.error = _password_error(problem)
    return None


def _factor(session: Session, link: Enrolment, user: User, page: Page,
            now: datetime) -> ResponseReturnValue | None:
    done = enrolment.confirm_factor(session, link, user, request.form.get("code", ""),
                                    now=now, address=client_address(),
                                    user_agent=request.user_agent.string)
    if done is None:
        page.error = _("That code is not right. Enter the code your app shows now.")
        return None
    # Shown in this answer only: the codes are kept as digests and never shown again.
    return _signed_in(render("console/recovery_codes.html", codes=done.recovery_codes),
                      done.token)


def _invitation(session: Session, link: Enrolment, user: User, page: Page,
                now: datetime) -> ResponseReturnValue | None:
    accepted = enrolment.accept_invitation(
        session, link, user, request.form.get("password", ""), request.form.get("code", ""),
        now=now, address=client_address(), user_agent=request.user_agent.string)
    if isinstance(accepted, enrolment.Done):
        return _signed_in(redirect(url_for("console.overview"), 303), accepted.token)
    if accepted.wait is not None:
        return blocked("console/enrol.html", accepted.wait, step=page.step, email=page.email,
                       invitation=page.invitation)
    page.error = _("That password and code do not match this account.")
    return None


ANSWERS: dict[str, Answer] = {enrolment.PASSWORD: _password, enrolment.FACTOR: _factor,
                              enrolment.INVITATION: _invitation}


def _named(invitation: tuple[str, str] | None) -> tuple[str, str] | None:
    if invitation is None:
        return None
    merchant, role = invitation
    return merchant, str(ROLE_NAMES.get(role, role))


def _signed_in(page: ResponseReturnValue, token: str) -> Response:
    response = make_response(page)
    set_session_cookie(response, token)
    return response
