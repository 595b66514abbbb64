"""The audit log: who did what, when, from which address; filters in the URL, pages by a
cursor, and a CSV export (which is itself recorded).

Reading it needs AUDIT at a merchant; exporting it needs EXPORT too, at the same merchants:
the gate checks EXPORT (the table's capability) and the view bounds the rows by the
merchants where a person holds both.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ... import clock, db, roles
from ...services import audit_log as log_service
from ...services import periods
from .base import bp, client_address, closing, render, requires, signed

MAX_ID = 2**63 - 1


class FilterError(ValueError):
    pass


def _number(name: str) -> int | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > MAX_ID:
        raise FilterError(name)
    return int(text)


def _filters() -> log_service.Filters:
    try:
        period = periods.parse(request.args.get("from"), request.args.get("to"),
                               today=clock.now().date(), default_days=None)
    except periods.PeriodError as exc:
        raise FilterError(str(exc)) from None
    return log_service.Filters(merchant_id=_number("merchant"),
                             action=request.args.get("action", "").strip(),
                             user=request.args.get("user", "").strip(), period=period)


def _message(part: str) -> str:
    if part == "range":
        return _("The start date is after the end date.")
    if part in ("from", "to"):
        return _("Enter dates as YYYY-MM-DD, for example 2026-01-31.")
    return _("That filter is not a number.")


def _auditable() -> list[int] | None:
    return signed().access.merchants(roles.AUDIT)


def _exportable() -> list[int] | None:
    access = signed().access
    audit, export = access.merchants(roles.AUDIT), access.merchants(roles.EXPORT)
    if audit is None or export is None:
        return audit if export is None else export
    return sorted(set(audit) & set(export))


def _given() -> dict[str, str]:
    return {name: request.args.get(name, "")[:255]
            for name in ("merchant", "action", "user", "from", "to")}


@bp.route("/audit")
@requires(roles.AUDIT)
def audit_log() -> ResponseReturnValue:
    merchant_ids = _auditable()
    session = db.session()
    actions = log_service.actions(session, merchant_ids)
    try:
        filters = _filters()
        after = _number("after")
    except FilterError as exc:
        return render("console/audit_log.html", error=_message(str(exc)), given=_given(),
                      actions=actions, listing=None, can_export=False), 400
    listing = log_service.listing(session, filters, merchant_ids, after=after)
    kept: dict[str, Any] = filters.query()
    next_url = (url_for("console.audit_log", **kept, after=listing.next_after)
                if listing.next_after is not None else None)
    first_url = url_for("console.audit_log", **kept) if after is not None else None
    can_export = signed().access.can(roles.EXPORT)
    return render("console/audit_log.html", error=None, given=_given(),
                  actions=actions, listing=listing, next_url=next_url,
                  first_url=first_url, can_export=can_export,
                  export_url=url_for("console.audit_csv", **kept))


@bp.route("/audit.csv")
@requires(roles.EXPORT)
def audit_csv() -> ResponseReturnValue:
    merchant_ids = _exportable()
    if merchant_ids == []:
        abort(403)  # exporting without reading: the log is not theirs to take
    try:
        filters = _filters()
    except FilterError as exc:
        return Response(_message(str(exc)) + "\n", status=400, mimetype="text/plain")
    who = signed()
    with db.transaction() as session:
        log_service.record_export(session, filters, merchant_ids, actor=who.user.email,
                                user_id=who.user.id, address=client_address())
    session = db.session()
    lines = closing(log_service.export(session, filters, merchant_ids), session)
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    return Response(stream_with_context(lines), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="audit-{stamp}.csv"'})
