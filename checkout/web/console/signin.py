"""Signing in to the back office: email and password, then the TOTP code; signing out."""

from __future__ import annotations

from flask import Response, g, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
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


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> ResponseReturnValue:
    error = None
    if request.method == "POST":
        email = request.form.get("email", "")
        password = request.form.get("password", "")
        with db.transaction() as session:
            token = signin.with_password(session, email, password, now=clock.now(),
                                         address=client_address(),
                                         user_agent=request.user_agent.string)
        if token is not None:
            response = make_response(redirect(url_for("console.code", next=_next_url())))
            set_session_cookie(response, token)
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
            accepted = signin.second_factor(session, row, request.form.get("code", ""),
                                            now=clock.now())
        if accepted:
            return redirect(_next_url())
        error = _("That code is not right. Enter the code your app shows now.")
    return render("console/code.html", error=error, next=_next_url()), 200 if not error else 401


@bp.route("/logout", methods=["POST"])
@public
def logout() -> Response:
    row = g.get("console_row")
    if row is not None:
        with db.transaction() as session:
            console_sessions.end(session.merge(row), clock.now())
    response = make_response(redirect(url_for("console.login")))
    set_session_cookie(response, None)
    return response
