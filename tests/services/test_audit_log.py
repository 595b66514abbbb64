"""Reading the audit log: newest first, filtered, a page at a time by a cursor, bounded by
the merchants one may audit; its CSV safe in a spreadsheet; its entries never changed."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

import pytest
from flask import Flask
from kit.console_rows import add_merchant
from kit.site import sql_statements
from sqlalchemy import delete, update

from checkout import audit, db
from checkout.models import AuditEntry
from checkout.services import audit_log, periods

A, B = 11, 22
START = datetime(2026, 3, 10, 8, 0)


@pytest.fixture
def log(app: Flask) -> Flask:
    """25 entries: alternately of A and B, every third of no merchant, an hour apart."""
    add_merchant(app, A, "Shop A")
    add_merchant(app, B, "Shop B")
    with app.app_context(), db.transaction() as session:
        for n in range(25):
            merchant = None if n % 3 == 0 else (A if n % 2 else B)
            entry = audit.record(session, "payment.resend" if n % 2 else "settings.change",
                                 actor=f"user{n % 4}@shop.example", merchant_id=merchant,
                                 target=f"target-{n}", detail={"n": n}, address=f"192.0.2.{n}")
            entry.at = START + timedelta(hours=n)
    return app


def _all_pages(session: object, filters: audit_log.Filters, merchant_ids: list[int] | None,
               size: int) -> list[int]:
    seen: list[int] = []
    after = None
    while True:
        page = audit_log.listing(session, filters, merchant_ids, after=after,  # type: ignore[arg-type]
                                 size=size)
        seen += [line.id for line in page.lines]
        if page.next_after is None:
            return seen
        after = page.next_after


def test_pages_walk_every_entry_newest_first_once(log: Flask) -> None:
    with log.app_context():
        session = db.session()
        everything = [e.id for e in session.query(AuditEntry).order_by(AuditEntry.id.desc())]
        assert _all_pages(session, audit_log.Filters(), None, size=7) == everything
        # Entries added while someone pages do not shift what the next page shows.
        first = audit_log.listing(session, audit_log.Filters(), None, size=5)
        audit.record(session, "late.entry", actor="x@shop.example")
        session.commit()
        second = audit_log.listing(session, audit_log.Filters(), None, after=first.next_after,
                                   size=5)
        assert [line.id for line in second.lines] == everything[5:10]


def test_a_merchant_user_sees_their_merchants_entries_only(log: Flask) -> None:
    with log.app_context():
        session = db.session()
        lines = _all_pages(session, audit_log.Filters(), [A], size=100)
        merchants = {session.get(AuditEntry, i).merchant_id for i in lines}  # type: ignore[union-attr]
        assert merchants == {A}
        operator = _all_pages(session, audit_log.Filters(), None, size=100)
        assert len(operator) == 25
        assert None in {session.get(AuditEntry, i).merchant_id for i in operator}  # type: ignore[union-attr]
        # Naming another merchant in the filter reads nothing of it.
        assert _all_pages(session, audit_log.Filters(merchant_id=B), [A], size=100) == []
        assert _all_pages(session, audit_log.Filters(), [], size=100) == []
        assert "settings.change" not in audit_log.actions(session, [A])
        assert audit_log.actions(session, None) == ["payment.resend", "settings.change"]


def test_filters_narrow_by_merchant_action_user_and_days(log: Flask) -> None:
    with log.app_context():
        session = db.session()

        def matching(filters: audit_log.Filters) -> list[audit_log.Line]:
            return audit_log.listing(session, filters, None, size=100).lines

        assert {line.merchant_id for line in matching(audit_log.Filters(merchant_id=A))} == {A}
        assert {line.action for line in matching(audit_log.Filters(action="payment.resend"))
                } == {"payment.resend"}
        by_user = matching(audit_log.Filters(user=" User1@Shop.example "))
        assert by_user and {line.actor for line in by_user} == {"user1@shop.example"}
        day = periods.Period(date(2026, 3, 10), date(2026, 3, 10))
        on_day = matching(audit_log.Filters(period=day))
        assert [line.at.hour for line in on_day] == list(range(23, 7, -1))
        assert matching(audit_log.Filters(action="x" * 10_000)) == []
        assert matching(audit_log.Filters(user="' OR 1=1 --")) == []


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://evil\")", "+1", "-2+3", "@SUM(A1)",
                                  "\tcmd", "\rcmd"])
def test_a_cell_a_spreadsheet_would_run_is_defused(cell: str) -> None:
    assert audit_log.safe_cell(cell) == "'" + cell
    assert audit_log.safe_cell("plain") == "plain"
    assert audit_log.safe_cell(None) == ""


def test_the_export_has_every_filtered_entry_and_no_formula(log: Flask) -> None:
    with log.app_context(), db.transaction() as session:
        audit.record(session, "=cmd|' /C calc'!A0", actor="-attacker@shop.example",
                     merchant_id=A, detail={"x": "@evil"})
    with log.app_context():
        text = "".join(audit_log.export(db.session(), audit_log.Filters(), [A]))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(audit_log.HEADER)
    assert len(rows) == 1 + 8 + 1
    for row in rows[1:]:
        assert all(not cell.startswith(("=", "+", "-", "@")) for cell in row), row
    assert rows[1][5] == "'=cmd|' /C calc'!A0" and rows[1][2] == "'-attacker@shop.example"


def test_an_export_is_recorded_in_each_merchants_log(log: Flask) -> None:
    with log.app_context(), db.transaction() as session:
        audit_log.record_export(session, audit_log.Filters(action="x"), [A, B],
                                actor="acc@shop.example", user_id=None,  # type: ignore[arg-type]
                                address="198.51.100.1")
        audit_log.record_export(session, audit_log.Filters(merchant_id=B), [A],
                                actor="acc@shop.example", user_id=None,  # type: ignore[arg-type]
                                address="198.51.100.1")
    with log.app_context():
        rows = db.session().query(AuditEntry).filter_by(action=audit_log.EXPORTED).all()
        # A filter naming a merchant one may not read lands in no merchant's log but the site's.
        assert sorted((r.merchant_id or 0) for r in rows) == [0, A, B]
        assert all(audit.detail(r)["filters"] for r in rows)


def test_an_entry_cannot_be_changed_or_deleted_through_the_orm(log: Flask) -> None:
    with log.app_context():
        session = db.session()
        entry = session.query(AuditEntry).first()
        assert entry is not None
        entry.detail_json = '{"rewritten": true}'
        with pytest.raises(audit.AppendOnly):
            session.flush()
        session.rollback()
        session.delete(session.query(AuditEntry).first())
        with pytest.raises(audit.AppendOnly):
            session.flush()
        session.rollback()
        assert session.query(AuditEntry).filter(
            AuditEntry.detail_json.contains("rewritten")).count() == 0
        assert session.query(AuditEntry).count() == 25


def test_bulk_statements_are_no_way_around_it(log: Flask) -> None:
    """The ORM's own bulk UPDATE/DELETE skip flush events: the log refuses them too."""
    with log.app_context():
        session = db.session()
        with pytest.raises(audit.AppendOnly):
            session.execute(update(AuditEntry).values(actor="nobody"))
        session.rollback()
        with pytest.raises(audit.AppendOnly):
            session.execute(delete(AuditEntry))
        session.rollback()
        assert session.query(AuditEntry).count() == 25


def test_a_page_of_the_log_is_one_query_however_long_the_log(log: Flask) -> None:
    def page() -> audit_log.Listing:
        with log.app_context():
            return audit_log.listing(db.session(), audit_log.Filters(), [A, B], size=10)

    _listing, short = sql_statements(log, page)
    with log.app_context(), db.transaction() as session:
        for n in range(300):
            audit.record(session, "payment.note", actor="x@shop.example", merchant_id=A,
                         target=str(n))
    listing, long = sql_statements(log, page)
    assert len(listing.lines) == 10 and listing.next_after is not None
    assert short == long == ["SELECT"]


def test_the_export_reads_in_batches_and_loses_none_between_them(log: Flask) -> None:
    with log.app_context():
        session = db.session()
        everything = [str(e.id) for e in session.query(AuditEntry).order_by(AuditEntry.id.desc())]
        _lines, statements = sql_statements(log, lambda: list(
            audit_log.export(session, audit_log.Filters(), None, batch=7)))
        rows = list(csv.reader(io.StringIO("".join(
            audit_log.export(session, audit_log.Filters(), None, batch=7)))))
    assert [row[0] for row in rows[1:]] == everything
    assert statements == ["SELECT"] * 4  # 25 entries, 7 a batch
