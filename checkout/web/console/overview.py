"""The back office's front page: how payments ended in a period, per merchant and
currency, and what needs attention; every figure links into the list it counts."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ... import clock, db, roles
from ...services import overview as figures
from ...services import periods
from .base import bp, render, requires, signed

DEFAULT_DAYS = 30


def list_link(path: str, **filters: str | int) -> str:
    """A link into another part's list with its URL filters (console.md names them); built
    as a path so that the overview stands whether or not that part is installed."""
    query = urlencode([(k, str(v)) for k, v in filters.items() if v not in ("", None)])
    return f"{request.script_root}/console/{path}" + (f"?{query}" if query else "")


def period_error(part: str) -> str:
    if part == "range":
        return _("The start date is after the end date.")
    return _("Enter dates as YYYY-MM-DD, for example 2026-01-31.")


@bp.route("/")
@requires(roles.READ)
def overview() -> ResponseReturnValue:
    who = signed()
    given = {"from": request.args.get("from", "")[:32], "to": request.args.get("to", "")[:32]}
    try:
        period = periods.parse(given["from"], given["to"], today=clock.now().date(),
                               default_days=DEFAULT_DAYS)
    except periods.PeriodError as exc:
        return render("console/overview.html", error=period_error(str(exc)), given=given,
                      result=None), 400
    assert period is not None
    result = figures.overview(db.session(), period, who.access.merchants(roles.READ))
    return render("console/overview.html", error=None, given=period.query(), result=result,
                  outcomes=figures.OUTCOMES, link=list_link)
