"""The audit log's pages: filters in the URL, pages by a cursor, the detail escaped, the CSV
export (recorded itself, safe in a spreadsheet), bad filters refused, nothing of another
merchant; and no route of the back office changes an entry."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

import pytest
from flask import Flask
from kit.console import add_person, sign_in
from kit.console_rows import add_merchant

from checkout import audit, db
from checkout.models import AuditEntry
from checkout.services import audit_log

A, B = 11, 22


@pytest.fixture
def site(app: Flask) -> Flask:
    add_merchant(app, A, "Shop A")
    add_merchant(app, B, "Shop B")
    with app.app_context(), db.transaction() as session:
        for n in range(130):
            audit.record(session, "payment.note", actor="support@a.example", merchant_id=A,
                         target=f"page-{n}", detail={"note": f"note {n}"}, address="192.0.2.7")
        audit.record(session, "settings.change", actor="owner@a.example", merchant_id=A,
                     detail={"name": "<script>alert(1)</script>"}, address="192.0.2.8")
        audit.record(session, "settings.change", actor="owner@b.example", merchant_id=B,
                     target="secret-of-b", address="198.51.100.9")
        audit.record(session, "user.add", actor=audit.COMMAND_LINE, target="op@site.example")
    return app


def _signed(app: Flask, email: str, **kwargs: object) -> object:
    client = app.test_client()
    sign_in(app, client, add_person(app, email, **kwargs))  # type: ignore[arg-type]
    return client


def test_newest_first_by_pages_of_a_hundred_with_the_filters_kept(site: Flask) -> None:
    client = _signed(site, "acc@a.example", roles={A: "accountant"})
    first = client.get("/console/audit?action=payment.note")  # type: ignore[attr-defined]
    assert first.status_code == 200
    targets = re.findall(r'<span class="mono"[^>]*>(page-\d+)</span>', first.text)
    assert targets == [f"page-{n}" for n in range(129, 29, -1)]
    older = unescape(re.search(r'<a href="([^"]+)" rel="next">', first.text).group(1))  # type: ignore[union-attr]
    assert "action=payment.note" in older and "after=" in older
    second = client.get(older)  # type: ignore[attr-defined]
    assert re.findall(r'<span class="mono"[^>]*>(page-\d+)</span>', second.text) == [
        f"page-{n}" for n in range(29, -1, -1)]
    assert 'rel="next"' not in second.text


def test_the_detail_is_shown_escaped_with_who_when_and_from_where(site: Flask) -> None:
    client = _signed(site, "owner@a.example", roles={A: "owner"})
    page = client.get("/console/audit?action=settings.change").text  # type: ignore[attr-defined]
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "owner@a.example" in page and "192.0.2.8" in page
    assert "secret-of-b" not in page and "198.51.100.9" not in page


def test_a_user_of_another_merchant_sees_nothing_of_it(site: Flask) -> None:
    client = _signed(site, "owner@b.example", roles={B: "owner"})
    for path in ("/console/audit", f"/console/audit?merchant={A}", "/console/audit.csv",
                 f"/console/audit.csv?merchant={A}", "/console/audit?user=support@a.example"):
        answer = client.get(path)  # type: ignore[attr-defined]
        text = answer.get_data(as_text=True)
        assert answer.status_code == 200, path
        for secret in ("support@a.example", "page-1", "192.0.2.7", "Shop A", "user.add"):
            if secret in path:
                continue  # what B typed comes back in B's own filter and export link
            assert secret not in text, (path, secret)


def test_the_operator_sees_entries_of_no_merchant(site: Flask) -> None:
    client = _signed(site, "op@site.example", operator=True)
    page = client.get("/console/audit?action=user.add").text  # type: ignore[attr-defined]
    assert audit.COMMAND_LINE in page and "op@site.example" in page


@pytest.mark.parametrize("query", [
    "merchant=abc", "merchant=99999999999999999999999", "merchant=-1", "after=1e9",
    "from=2026-13-01", "to=yesterday", "from=2026-03-10&to=2026-03-01", "merchant=%D9%A1",
])
def test_a_bad_filter_gets_a_message(site: Flask, query: str) -> None:
    client = _signed(site, "acc@a.example", roles={A: "accountant"})
    page = client.get(f"/console/audit?{query}")  # type: ignore[attr-defined]
    assert page.status_code == 400 and 'role="alert"' in page.text
    assert "page-1" not in page.text
    if not query.startswith("after="):  # the export has no pages
        export = client.get(f"/console/audit.csv?{query}")  # type: ignore[attr-defined]
        assert export.status_code == 400 and "page-" not in export.text


def test_huge_filters_match_nothing_and_break_nothing(site: Flask) -> None:
    client = _signed(site, "acc@a.example", roles={A: "accountant"})
    page = client.get("/console/audit?action=" + "x" * 20_000 + "&user=" + "y" * 20_000)  # type: ignore[attr-defined]
    assert page.status_code == 200 and "page-1" not in page.text


def test_the_export_streams_the_filtered_log_and_is_recorded(site: Flask) -> None:
    client = _signed(site, "acc@a.example", roles={A: "accountant"})
    answer = client.get("/console/audit.csv?action=settings.change")  # type: ignore[attr-defined]
    assert answer.status_code == 200 and answer.is_streamed
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == list(audit_log.HEADER)
    assert [(r[2], r[5]) for r in rows[1:]] == [("owner@a.example", "settings.change")]
    # The last line out ends the export's transaction: no connection stays checked out.
    assert site.extensions[db.EXTENSION + ".engine"].pool.checkedout() == 0
    with site.app_context():
        recorded = db.session().query(AuditEntry).filter_by(action=audit_log.EXPORTED).one()
        assert (recorded.actor, recorded.merchant_id) == ("acc@a.example", A)
        assert audit.detail(recorded) == {"filters": {"action": "settings.change"}}
    page = client.get("/console/audit").text  # type: ignore[attr-defined]
    assert audit_log.EXPORTED in page  # the export shows in the log it exported


def test_reading_without_exporting_gets_no_export(site: Flask) -> None:
    # No built-in role audits without exporting; the view still asks for both.
    client = _signed(site, "dev@a.example", roles={A: "developer"})
    assert client.get("/console/audit").status_code == 403  # type: ignore[attr-defined]
    assert client.get("/console/audit.csv").status_code == 403  # type: ignore[attr-defined]


def _snapshot(app: Flask) -> dict[int, tuple[object, ...]]:
    with app.app_context():
        return {e.id: (e.at, e.actor, e.user_id, e.merchant_id, e.action, e.target,
                       e.detail_json, e.address)
                for e in db.session().query(AuditEntry)}


def test_no_route_of_the_back_office_changes_an_entry(site: Flask) -> None:
    """Every route, asked by an operator with a valid form token, by GET and by POST, with
    the ids of existing entries wherever a route takes a value: entries may be added, none
    changed or removed."""
    before = _snapshot(site)
    client = _signed(site, "op@site.example", operator=True)
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"',  # type: ignore[union-attr]
                      client.get("/console/").text).group(1)  # type: ignore[attr-defined]
    some_id = str(max(before))
    for rule in site.url_map.iter_rules():
        if not rule.endpoint.startswith("console.") or rule.endpoint == "console.logout":
            continue
        path = re.sub(r"<(?:[^:>]+:)?[^>]+>", some_id, rule.rule)
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            data = {"csrf_token": token, "id": some_id, "entry": some_id, "detail": "{}",
                    "action": "rewritten", "actor": "nobody"}
            client.open(path, method=method, data=data if method == "POST" else None)  # type: ignore[attr-defined]
    after = _snapshot(site)
    assert {k: after[k] for k in before} == before
