"""The back office's blueprint and what every one of its views shares: the sign-in cookie,
who is signed in (`signed()`), the capability a view needs (`requires`), the CSRF token every
form carries, and the page frame.

The back office is the only part of the site with a cookie: scoped to /console/, HttpOnly,
SameSite=Strict, Secure outside sandbox mode. Customer pages stay cookieless.

Every view registers itself with `requires(capability)` or `public`; a view with neither
is refused (403) so that a forgotten declaration fails closed. REQUIRED is the table the
permission test walks.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from ... import access, clock, db, roles
from ...models import ConsoleSession, User
from ...services import console_sessions

bp = Blueprint("console", __name__, url_prefix="/console")

COOKIE = "console_session"
# Before signing in, forms are bound to this random cookie instead of a session.
PRE_COOKIE = "console_form"
PATH = "/console"

# endpoint (without the blueprint's name) -> the capability it needs; None: public.
REQUIRED: dict[str, str | None] = {}

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Signed:
    """The signed-in person of this request."""

    row: ConsoleSession
    user: User
    access: access.Access


def requires(capability: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The view needs `capability` at some merchant (the view checks the object's own)."""
    if capability not in roles.CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")

    def register(view: Callable[P, R]) -> Callable[P, R]:
        REQUIRED[view.__name__] = capability
        return view

    return register


def public(view: Callable[P, R]) -> Callable[P, R]:
    """Reachable without signing in (sign-in, enrolment)."""
    REQUIRED[view.__name__] = None
    return view


def signed() -> Signed:
    """Who is signed in; only views that `requires` something may ask."""
    found: Signed | None = g.get("console_signed")
    if found is None:
        abort(401)
    return found


def signed_or_none() -> Signed | None:
    return g.get("console_signed")


def client_address() -> str:
    return (request.remote_addr or "")[:64]


def set_session_cookie(response: Response, token: str | None) -> None:
    """`token`: the new session's; None: sign out (the cookie is removed)."""
    if token is None:
        response.delete_cookie(COOKIE, path=PATH, secure=secure(), httponly=True,
                               samesite="Strict")
    else:
        response.set_cookie(COOKIE, token, path=PATH, secure=secure(), httponly=True,
                            samesite="Strict")


def secure() -> bool:
    return not current_app.config["SANDBOX"]


def csrf_token() -> str:
    """The token every back-office form carries, bound to this browser's session (or, before
    signing in, to its form cookie) under the site's secret key."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"console-form:" + g.console_csrf_context.encode(),
                    hashlib.sha256).hexdigest()


def _load_signed() -> None:
    now = clock.now()
    found = console_sessions.load(db.session(), request.cookies.get(COOKIE), now)
    g.console_row = None
    g.console_signed = None
    if found is not None:
        row, user = found
        g.console_row = row
        if row.stage == console_sessions.SIGNED_IN:
            g.console_signed = Signed(row, user, access.of(db.session(), user))
        g.console_csrf_context = "session:" + row.token_digest
        db.session().commit()  # the touch, if any
        return
    pre = request.cookies.get(PRE_COOKIE) or ""
    if not (16 <= len(pre) <= 64) or not pre.replace("-", "").replace("_", "").isalnum():
        pre = secrets.token_urlsafe(24)
        g.console_new_pre = pre
    g.console_csrf_context = "pre:" + pre


def _check_csrf() -> None:
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        given = request.form.get("csrf_token", "")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(),
                                                                 csrf_token().encode()):
            abort(400, description="csrf")


@bp.before_request
def _gate() -> ResponseReturnValue | None:
    _load_signed()
    endpoint = (request.endpoint or "").rpartition(".")[2]
    if endpoint not in REQUIRED:
        abort(403 if request.endpoint else 404)
    capability = REQUIRED[endpoint]
    if capability is not None:
        who: Signed | None = g.console_signed
        if who is None:
            if request.method == "GET":
                return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
            abort(401)
        if not who.access.can(capability):
            abort(403)
    _check_csrf()
    return None


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    pre = g.get("console_new_pre")
    if pre and g.get("console_row") is None:
        response.set_cookie(PRE_COOKIE, pre, path=PATH, secure=secure(), httponly=True,
                            samesite="Strict")
    return response


@bp.app_template_global("console_csrf_token")
def _template_csrf_token() -> str:
    return csrf_token()


# The frame's navigation: endpoint, label, the capability that shows it. An entry shows once
# its view exists, so each part of the back office adds its own view and nothing else.
NAV: tuple[tuple[str, LazyString, str], ...] = (
    ("overview", _l("Overview"), roles.READ),
    ("payments", _l("Payments"), roles.READ),
    ("deliveries", _l("Deliveries"), roles.READ),
    ("flagged", _l("Flagged callbacks"), roles.READ),
    ("refunds", _l("Refunds"), roles.READ),
    ("settings", _l("Settings"), roles.CONFIGURE),
    ("users", _l("Users"), roles.USERS),
    ("audit_log", _l("Audit log"), roles.AUDIT),
    ("sessions", _l("Your sessions"), roles.READ),
)


def navigation() -> list[tuple[str, str, bool]]:
    """(url, label, current) for each part this person may open."""
    who = signed_or_none()
    if who is None:
        return []
    here = (request.endpoint or "").rpartition(".")[2]
    return [(url_for(f"console.{endpoint}"), str(label), endpoint == here)
            for endpoint, label, capability in NAV
            if f"console.{endpoint}" in current_app.view_functions
            and who.access.can(capability)]


def render(template: str, **context: Any) -> str:
    """A back-office page in the frame (navigation by what the signed-in person may do)."""
    return render_template(template, signed=signed_or_none(), navigation=navigation(),
                           **context)


def merchant_or_404(merchant_id: int, capability: str = roles.READ) -> None:
    """Refuse an object of a merchant the person may not see as if it did not exist, and
    an act they may not do at a merchant they see with 403."""
    who = signed()
    if not who.access.can(roles.READ, merchant_id):
        abort(404)
    if not who.access.can(capability, merchant_id):
        abort(403)


def closing(lines: Iterator[str], session: Session) -> Iterator[str]:
    """A streamed answer's lines, then the session that reads them is closed (its transaction
    and locks end), also when the client went away: the request's own session is removed
    when the view returns, before the lines stream, and would otherwise hold its connection
    in a transaction until garbage collection."""
    try:
        yield from lines
    finally:
        session.close()


# ---------------------------------------------------------------- filters in the URL

MAX_ID = 2**63 - 1  # the largest id a row can have (a signed 64-bit integer)


class BadFilter(ValueError):
    """A filter in the URL that means nothing: said so, never guessed at."""


def id_filter(name: str) -> int | None:
    """The positive row id named `name` in the query (or the posted form), if any."""
    value = request.values.get(name, "")
    if value == "":
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 19) \
            or not 0 < int(value) <= MAX_ID:
        raise BadFilter(name)
    return int(value)
