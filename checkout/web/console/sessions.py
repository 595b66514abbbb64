"""Your sessions (/console/sessions): where you are signed in, and signing out any of them."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ... import clock, db, roles
from ...services import console_sessions
from .base import bp, client_address, render, requires, signed


@bp.route("/sessions")
@requires(roles.READ)
def sessions() -> ResponseReturnValue:
    who = signed()
    rows = console_sessions.of_user(db.session(), who.user.id, clock.now())
    notice = request.args.get("done")
    messages = {"ended": _("That session is signed out."),
                "gone": _("That session had ended already."),
                "others": _("Your other sessions are signed out.")}
    return render("console/sessions.html", rows=rows, current=who.row.id,
                  browser_of=console_sessions.browser_of,
                  notice=messages.get(notice or ""))


@bp.route("/sessions/end", methods=["POST"])
@requires(roles.READ)
def end_session() -> ResponseReturnValue:
    who = signed()
    wanted = request.form.get("session", "")
    with db.transaction() as session:
        ended = wanted.isdigit() and len(wanted) < 12 and console_sessions.end_own(
            session, who.user, int(wanted), clock.now(), address=client_address())
    return redirect(url_for("console.sessions", done="ended" if ended else "gone"), 303)


@bp.route("/sessions/end-others", methods=["POST"])
@requires(roles.READ)
def end_other_sessions() -> ResponseReturnValue:
    who = signed()
    with db.transaction() as session:
        console_sessions.end_others(session, who.user, who.row.id, clock.now(),
                                    address=client_address())
    return redirect(url_for("console.sessions", done="others"), 303)
