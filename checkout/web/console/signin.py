"""Signing in to the back office: email and password, then the TOTP code (or a recovery
code); signing out. A blocked attempt answers 429 with Retry-After."""

from __future__ import annotations

import math
from datetime import timedelta

from flask import Response, g, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta
from flask_babel import gettext as _

from ... import clock, db
from ...services import console_sessions, signin
from .base import bp, client_address, public, render, set_session_cookie


def _next_url() -> str:
    """Where to go after signing in: only a path inside the back office."""
    wanted = request.values.get("next", "")
    if wanted.startswith("/console/") and "//" not in wanted and "\\" not in wanted:
        return wanted
    return url_for("console.overview")


def blocked(template: str, wait: timedelta, **context: object) -> ResponseReturnValue:
    """The page again with how long to wait, as 429 with Retry-After (whole seconds)."""
    seconds = max(1, math.ceil(wait.total_seconds()))
    message = _("Too many attempts. Wait %(wait)s, then try again.",
                wait=format_timedelta(timedelta(seconds=seconds), threshold=1.1,
                                      add_direction=False))
    return render(template, error=message, **context), 429, {"Retry-After": str(seconds)}


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> ResponseReturnValue:
    error = None
    if request.method == "POST":
        email = request.form.get("email", "")
        password = request.form.get("password", "")
        with db.transaction() as session:
            attempt = signin.with_password(session, email, password, now=clock.now(),
                                           address=client_address(),
                                           user_agent=request.user_agent.string)
        if attempt.wait is not None:
            return blocked("console/login.html", attempt.wait, next=_next_url())
        if attempt.token is not None:
            response = make_response(redirect(url_for("console.code", next=_next_url())))
            set_session_cookie(response, attempt.token)
            return response
        error = _("That email and password do not match an account.")
    return render("console/login.html", error=error, next=_next_url()), 200 if not error else 401


@bp.route("/login/code", methods=["GET", "POST"])
@public
def code() -> ResponseReturnValue:
    row = g.get("console_row")
    if row is None:
        return redirect(url_for("console.login"))
    if row.stage == console_sessions.SIGNED_IN:
        return redirect(_next_url())
    error = None
    if request.method == "POST":
        with db.transaction() as session:
            row = session.merge(row)
            attempt = signin.second_factor(session, row, request.form.get("code", ""),
                                           now=clock.now(), address=client_address())
        if attempt.wait is not None:
            return blocked("console/code.html", attempt.wait, next=_next_url())
        if attempt.ok:
            return redirect(_next_url())
        error = _("That code is not right. Enter the code your app shows now, "
                  "or one of your recovery codes.")
    return render("console/code.html", error=error, next=_next_url()), 200 if not error else 401


@bp.route("/logout", methods=["POST"])
@public
def logout() -> Response:
    row = g.get("console_row")
    if row is not None:
        with db.transaction() as session:
            signin.sign_out(session, session.merge(row), now=clock.now(),
                            address=client_address())
    response = make_response(redirect(url_for("console.login")))
    set_session_cookie(response, None)
    return response
