"""The payments list (/console/payments) and its CSV export (/console/payments.csv).

The URL holds every filter (a link reproduces the view); this module only parses and checks
them, asks services/payments_list, and renders. A filter it cannot read is answered 400 with
the form as typed and which field is wrong, never a list that silently ignores it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Response, current_app, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ... import db, roles
from ...services import payments_list
from ...services.payments_list import Filters, InvalidCursor
from .base import bp, client_address, closing, render, requires, signed

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CLIENT_ID = re.compile(r"[0-9]{1,10}")
MAX_CLIENT_ID = 2**31 - 1  # the column is a 32-bit integer everywhere

STATUS_LABELS: dict[str, LazyString] = {
    "paid": _l("Paid"),
    "waiting": _l("Waiting for payment"),
    "not_confirmed": _l("Seen, not confirmed"),
    "confirmed": _l("Confirmed"),
    "cancelled": _l("Cancelled"),
    "created": _l("Created"),
    "pending": _l("Pending"),
    "processing": _l("Processing"),
    "failed": _l("Failed"),
    "underpaid": _l("Underpaid"),
    "overpaid": _l("Overpaid"),
    "below_minimum": _l("Below the minimum"),
    "expired": _l("Expired"),
    "timeout": _l("Timed out"),
    "late": _l("Paid late"),
}
KIND_LABELS: dict[str, LazyString] = {payments_list.DEPOSIT: _l("Deposit"),
                                      payments_list.INVOICE: _l("Invoice")}
FIELD_LABELS: dict[str, LazyString] = {
    "q": _l("Search"), "status": _l("Status"), "kind": _l("Kind"), "currency": _l("Currency"),
    "merchant": _l("Merchant"), "from": _l("From"), "to": _l("To"),
}
CSV_COLUMNS = ("page_id", "created_at", "merchant_id", "merchant", "kind", "foreign_id",
               "status", "reason", "currency", "amount", "amount_paid", "paid_at",
               "fiat_currency", "fiat_value", "fees")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(args: Mapping[str, str], name: str) -> str | None:
    value = (args.get(name) or "").strip()
    return value or None


def _date(value: str) -> date:
    if not _DATE.fullmatch(value):
        raise ValueError(value)
    return date.fromisoformat(value)


def _client_id(value: str) -> int:
    if not _CLIENT_ID.fullmatch(value) or not 0 < int(value) <= MAX_CLIENT_ID:
        raise ValueError(value)
    return int(value)


# URL name -> (Filters field, how its text is read); each reader raises ValueError.
_READERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "q": ("q", str), "status": ("status", str), "kind": ("kind", str),
    "currency": ("currency", str.upper), "merchant": ("merchant", _client_id),
    "from": ("date_from", _date), "to": ("date_to", _date),
}


def parse_filters(args: Mapping[str, str]) -> tuple[Filters, list[str]]:
    """The filters of the URL, and the names of those that could not be read (left out)."""
    wrong: list[str] = []
    filters = Filters(flagged=args.get("flagged") == "1",
                      attention=args.get("attention") == "1")
    for name, (field, read) in _READERS.items():
        raw = _text(args, name)
        if raw is None:
            continue
        try:  # Filters checks each value itself as it is made
            change: dict[str, Any] = {field: read(raw)}
            filters = replace(filters, **change)
        except ValueError:
            wrong.append(name)
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        wrong.append("to")
    return filters, wrong


def _wrong_names(args: Mapping[str, str], wrong: list[str]) -> str:
    """Each unreadable filter by its label and what was given (shortened): a date field
    cannot show a date that does not exist, so the message does."""
    def given(name: str) -> str:
        value = (args.get(name) or "").strip()
        return value if len(value) <= 24 else value[:24] + "…"
    return ", ".join(f"{FIELD_LABELS[name]} ({given(name)!r})" for name in wrong)


def payment_url(page_id: str) -> str:
    """One payment's page, once its view exists (another part of the back office)."""
    if "console.payment" in current_app.view_functions:
        return url_for("console.payment", page_id=page_id)
    return f"{url_for('console.payments')}/{page_id}"


@bp.route("/payments")
@requires(roles.READ)
def payments() -> ResponseReturnValue:
    who = signed()
    merchants = who.access.merchants(roles.READ)
    filters, wrong = parse_filters(request.args)
    after = _text(request.args, "after")
    session = db.session()
    errors = [_("These filters could not be read: %(names)s. Correct them and apply again.",
                names=_wrong_names(request.args, wrong))] if wrong else []
    listing = payments_list.Listing([], None)
    if not errors:
        try:
            listing = payments_list.listing(session, merchants, filters, after)
        except InvalidCursor:
            errors.append(_("This page of the list cannot be found any more: "
                            "start again from the first page."))
    exportable = who.access.can(roles.EXPORT)
    args: dict[str, Any] = dict(filters.as_args())
    html = render(
        "console/payments.html", filters=filters, raw=request.args, wrong=set(wrong),
        errors=errors, listing=listing, args=args, after=after,
        merchant_choices=payments_list.merchant_choices(session, merchants),
        statuses=[(name, STATUS_LABELS[name]) for name in
                  (*payments_list.OUTCOMES, *payments_list.STATUSES,
                   *payments_list.REASONS)],
        status_labels=STATUS_LABELS, kinds=KIND_LABELS, payment_url=payment_url,
        export_url=url_for("console.payments_csv", **args) if exportable else None,
        next_url=(url_for("console.payments", **args, after=listing.next_cursor)
                  if listing.next_cursor else None),
        first_url=url_for("console.payments", **args) if after else None)
    return html, 400 if errors else 200


@bp.route("/payments.csv")
@requires(roles.EXPORT)
def payments_csv() -> ResponseReturnValue:
    who = signed()
    merchants = who.access.merchants(roles.EXPORT)
    filters, wrong = parse_filters(request.args)
    if wrong:
        return Response(_("These filters could not be read: %(names)s. Correct them and apply "
                          "again.", names=_wrong_names(request.args, wrong)) + "\n",
                        status=400, mimetype="text/plain")
    session = db.session()
    payments_list.record_export(session, merchants, filters, actor=who.user.email,
                                user_id=who.user.id, address=client_address())
    session.commit()
    rows = payments_list.export(session, merchants, filters)
    return Response(stream_with_context(closing(_csv_lines(rows), session)),
                    mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="payments.csv"'})


def _csv_lines(rows: Iterable[payments_list.ExportRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: Iterable[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([safe_cell(cell) for cell in cells])
        return buffer.getvalue()

    yield line(CSV_COLUMNS)
    for item in rows:
        row = item.row
        yield line((row.id, _stamp(row.created_at), str(row.merchant_id), row.merchant_name,
                    row.kind, row.foreign_id, row.status, row.reason or "", row.currency,
                    row.amount or "", row.amount_paid,
                    _stamp(item.paid_at) if item.paid_at else "",
                    item.fiat_currency or "", item.fiat_value or "", _fees(item.fees)))


def _stamp(moment: datetime) -> str:
    return f"{moment.isoformat()}Z"  # stored naive, in UTC


def _fees(fees: Mapping[str, Decimal]) -> str:
    """"0.0008 BTC; 4.2 EUR": each currency's sum, as exact decimal text."""
    return "; ".join(f"{format(amount, 'f')} {currency}"
                     for currency, amount in sorted(fees.items()))


def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a quote."""
    return "'" + value if value.startswith(_FORMULA_START) else value
