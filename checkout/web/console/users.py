"""A merchant's users (USERS: owners and operators): who has which role, invitations by a
one-time link, a role changed, a user removed; an operator sees every user and may disable
one. Each act asks the code again; services.team does it and writes the audit entry."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString, lazy_gettext
from flask_babel import gettext as _

from ... import clock, db, mail, roles
from ...services import merchant_settings, team
from .base import bp, client_address, merchant_or_404, render, requires, signed
from .settings import error_messages

DONE = ("role", "removed", "unchanged", "disabled")
# What people read for each role of roles.ROLES (the form sends the role's own name).
ROLE_LABELS: dict[str, LazyString] = {
    "owner": lazy_gettext("Owner"),
    "admin": lazy_gettext("Admin"),
    "developer": lazy_gettext("Developer"),
    "support": lazy_gettext("Support"),
    "accountant": lazy_gettext("Accountant"),
    "viewer": lazy_gettext("Viewer"),
}


def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


def _merchant_id() -> int:
    raw = request.args.get("merchant", "")
    if not raw.isdigit() or len(raw) > 10:
        abort(404)
    return int(raw)


def _actor() -> merchant_settings.Actor:
    who = signed()
    return merchant_settings.Actor(who.user.id, who.user.email, client_address())


def _messages(errors: dict[str, str]) -> dict[str, str]:
    shown = error_messages(errors)
    if shown.get("") == "last owner":
        shown[""] = _("A merchant keeps at least one owner: make another user owner first.")
    elif shown.get("") == "self":
        shown[""] = _("You cannot disable yourself.")
    return shown


def _user_id(field: str = "user_id") -> int | None:
    raw = request.form.get(field, "")
    return int(raw) if raw.isdigit() and len(raw) <= 10 else None


def _page(merchant_id: int, *, status: int = 200, errors: dict[str, str] | None = None,
          part: str = "", link: str | None = None, emailed: str | None = None,
          invite: dict[str, str] | None = None) -> ResponseReturnValue:
    session = db.session()
    names = dict(merchant_settings.merchant_names(session, [merchant_id]))
    if merchant_id not in names:
        abort(404)
    context: dict[str, Any] = {
        "merchant_id": merchant_id, "merchant_name": names[merchant_id],
        "members": team.members(session, merchant_id),
        "invitations": team.invitations(session, merchant_id, clock.now()),
        "roles": list(roles.ROLES), "role_label": role_label,
        "errors": _messages(errors or {}), "part": part,
        "link": link, "emailed": emailed, "invite": invite or {},
        "done": request.args.get("done") if request.args.get("done") in DONE else None,
    }
    return render("console/users.html", **context), status


@bp.route("/users")
@requires(roles.USERS)
def users() -> ResponseReturnValue:
    who = signed()
    if "merchant" not in request.args:
        choices = merchant_settings.merchant_names(db.session(),
                                                   who.access.merchants(roles.USERS))
        if len(choices) == 1 and not who.access.operator:
            return redirect(url_for("console.users", merchant=choices[0][0]))
        everybody = team.everybody(db.session()) if who.access.operator else []
        done = request.args.get("done")
        return render("console/users_all.html", choices=choices, people=everybody,
                      done=done if done in DONE else None, errors={}, role_label=role_label)
    merchant_id = _merchant_id()
    merchant_or_404(merchant_id, roles.USERS)
    return _page(merchant_id)


@bp.route("/users/invite", methods=["POST"])
@requires(roles.USERS)
def users_invite() -> ResponseReturnValue:
    merchant_id = _merchant_id()
    merchant_or_404(merchant_id, roles.USERS)
    email, role = request.form.get("email", ""), request.form.get("role", "")
    try:
        with db.transaction() as session:
            token = team.invite(session, merchant_id, email, role,
                                request.form.get("confirm_code", ""), actor=_actor(),
                                now=clock.now())
    except merchant_settings.Invalid as exc:
        return _page(merchant_id, status=422, errors=exc.errors, part="invite",
                     invite={"email": email, "role": role})
    link = _link(token)
    if _emailed(email.strip(), link):
        return _page(merchant_id, emailed=email.strip(), part="invite")
    return _page(merchant_id, link=link, part="invite",
                 errors={"mail": _("The email could not be sent: copy the link instead.")}
                 if current_app.config.get("SMTP_URL") else None)


def _link(token: str) -> str:
    """The one-time link, on the site's public address (else the one this request used)."""
    base = current_app.config.get("PUBLIC_URL") or request.host_url.rstrip("/")
    return f"{base}/console/enrol/{token}"


def _emailed(email: str, link: str) -> bool:
    """Whether the invitation went out by email (only with CHECKOUT_SMTP_URL set)."""
    url = current_app.config.get("SMTP_URL")
    if not url:
        return False
    body = _("You are invited to the back office of %(site)s. Open this link within 24 hours "
             "to accept; it works once:", site=request.host) + f"\n\n{link}\n"
    try:
        mail.send(url, email, _("Your invitation to the back office"), body)
    except mail.MailError as exc:
        current_app.logger.warning("invitation email not sent: %s", exc)
        return False
    return True


@bp.route("/users/change", methods=["POST"])
@requires(roles.USERS)
def users_change() -> ResponseReturnValue:
    """Change a user's role here, or (action=remove) remove them from this merchant."""
    merchant_id = _merchant_id()
    user_id = _user_id()
    if user_id is None:
        return _page_or_404(merchant_id, {"user_id": _("Choose a user.")})
    merchant_or_404(merchant_id, roles.USERS)
    code = request.form.get("confirm_code", "")
    try:
        with db.transaction() as session:
            if request.form.get("action") == "remove":
                team.remove(session, merchant_id, user_id, code, actor=_actor(),
                            now=clock.now())
                done = "removed"
            else:
                changed = team.change_role(session, merchant_id, user_id,
                                           request.form.get("role", ""), code,
                                           actor=_actor(), now=clock.now())
                done = "role" if changed else "unchanged"
    except LookupError:
        abort(404)
    except merchant_settings.Invalid as exc:
        return _page(merchant_id, status=422, errors=exc.errors, part="change")
    return redirect(url_for("console.users", merchant=merchant_id, done=done), 303)


def _page_or_404(merchant_id: int, errors: dict[str, str]) -> ResponseReturnValue:
    merchant_or_404(merchant_id, roles.USERS)
    return _page(merchant_id, status=422, errors=errors, part="change")


@bp.route("/users/disable", methods=["POST"])
@requires(roles.USERS)
def users_disable() -> ResponseReturnValue:
    """An operator's act: the user can no longer sign in anywhere."""
    user_id = _user_id()
    who = signed()
    if user_id is None:
        return render("console/users_all.html", choices=[], people=[], done=None,
                      errors={"user_id": _("Choose a user.")}, role_label=role_label), 422
    if not who.access.operator:
        abort(403)
    try:
        with db.transaction() as session:
            team.disable(session, user_id, request.form.get("confirm_code", ""),
                         actor=_actor(), now=clock.now())
    except LookupError:
        abort(404)
    except merchant_settings.Invalid as exc:
        return render("console/users_all.html",
                      choices=merchant_settings.merchant_names(db.session(), None),
                      people=team.everybody(db.session()), done=None,
                      errors=_messages(exc.errors), role_label=role_label), 422
    return redirect(url_for("console.users", done="disabled"), 303)
