"""/console/payments and /console/payments.csv over HTTP: filters that survive every link, a
streamed CSV that is correct and safe in a spreadsheet, audited; hostile input answered with
a clear 400 (never a 500); statements per request that do not grow with the rows."""

from __future__ import annotations

import csv
import io
import re
import secrets
from datetime import datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.console import add_person, sign_in
from kit.counters import statements
from sqlalchemy import select

from checkout import db, merchants
from checkout.models import AuditEntry, Page

A, B = 11, 22
T0 = datetime(2026, 3, 1, 12, 0, 0)


@pytest.fixture
def shops(app: Flask) -> None:
    with app.app_context():
        for client_id, name in ((A, "Shop A"), (B, "Shop B")):
            merchants.add(merchants.NewMerchant(
                client_id=client_id, name=name, key=f"key-{client_id}",
                secret=f"secret-{client_id}", return_hosts=("shop.example",),
                frame_origins=(), webhook_url=None))


def add_pages(app: Flask, merchant_id: int, count: int, *, foreign_id: str = "order",
              status: str = "confirmed", currency: str = "BTC") -> list[str]:
    made = []
    with app.app_context(), db.transaction() as session:
        for i in range(count):
            page = Page(id=secrets.token_urlsafe(32), kind="deposit", merchant_id=merchant_id,
                        foreign_id=f"{foreign_id}-{i}" if count > 1 else foreign_id,
                        currency=currency, amount="0.01", amount_paid="0.02",
                        address=f"addr-{merchant_id}-{i}", status=status,
                        created_at=T0 - timedelta(seconds=i), updated_at=T0)
            session.add(page)
            made.append(page.id)
    return made


@pytest.fixture
def accountant(app: Flask, shops: None) -> FlaskClient:
    """Signed in as the accountant of A (read and export)."""
    client = app.test_client()
    sign_in(app, client, add_person(app, "books@a.example", roles={A: "accountant"}))
    return client


def links(html: str, rel: str | None = None) -> list[str]:
    pattern = r'<a[^>]*href="([^"]+)"[^>]*' + (f'rel="{rel}"' if rel else "")
    return [unescape(href) for href in re.findall(pattern, html)]


def test_filters_survive_the_pager_and_the_export_link(app: Flask,
                                                       accountant: FlaskClient) -> None:
    made = add_pages(app, A, 130, status="confirmed", currency="ETH")
    add_pages(app, A, 5, status="waiting", currency="ETH", foreign_id="other")
    add_pages(app, B, 3, status="confirmed", currency="ETH", foreign_id="of-b")
    query = ("/console/payments?status=confirmed&currency=eth&kind=deposit"
             "&from=2026-02-01&to=2026-03-01")
    first = accountant.get(query)
    assert first.status_code == 200
    shown = re.findall(r'href="/console/payments/([A-Za-z0-9_-]{43})"', first.text)
    assert shown == made[:100]
    [after_link] = links(first.text, "next")
    wanted = {"status": ["confirmed"], "currency": ["ETH"], "kind": ["deposit"],
              "from": ["2026-02-01"], "to": ["2026-03-01"]}
    args = parse_qs(urlsplit(after_link).query)
    assert {k: v for k, v in args.items() if k != "after"} == wanted and args["after"]
    second = accountant.get(after_link)
    rest = re.findall(r'href="/console/payments/([A-Za-z0-9_-]{43})"', second.text)
    assert rest == made[100:]
    assert not links(second.text, "next")
    first_page = [h for h in links(second.text) if "after" not in h and "status=" in h]
    assert first_page, "no way back to the first page with the filters"
    [export] = [h for h in links(first.text) if h.startswith("/console/payments.csv")]
    assert parse_qs(urlsplit(export).query) == wanted
    # The form shows the filters it applied.
    assert 'value="confirmed" selected' in first.text and 'value="eth"' in first.text


def test_the_csv_is_streamed_correct_spreadsheet_safe_and_audited(
        app: Flask, accountant: FlaskClient) -> None:
    add_pages(app, A, 1, foreign_id="=HYPERLINK(\"http://evil\")")
    add_pages(app, A, 1, foreign_id="+1-2")
    add_pages(app, B, 1, foreign_id="of-b")
    answer = accountant.get("/console/payments.csv?status=confirmed")
    assert answer.status_code == 200 and answer.is_streamed
    assert answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    # The last row out ends the export's transaction: no connection stays checked out in
    # it (on PostgreSQL it would hold locks until garbage collection).
    assert app.extensions[db.EXTENSION + ".engine"].pool.checkedout() == 0
    assert {row["foreign_id"] for row in rows} == {"'=HYPERLINK(\"http://evil\")", "'+1-2"}
    assert {row["merchant_id"] for row in rows} == {str(A)}
    assert all(row["amount_paid"] == "0.02" and row["status"] == "confirmed" for row in rows)
    with app.app_context():
        [entry] = db.session().scalars(select(AuditEntry)
                                       .where(AuditEntry.action == "payments.export")).all()
        assert entry.actor == "books@a.example" and '"status": "confirmed"' in entry.detail_json


def test_a_viewer_may_list_but_not_export(app: Flask, shops: None) -> None:
    client = app.test_client()
    sign_in(app, client, add_person(app, "view@a.example", roles={A: "viewer"}))
    page = client.get("/console/payments")
    assert page.status_code == 200 and "payments.csv" not in page.text
    assert client.get("/console/payments.csv").status_code == 403


@pytest.mark.parametrize(("query", "field"), [
    ("from=2026-13-45", "From"), ("from=yesterday", "From"), ("to=2026-02-30", "To"),
    ("from=2026-03-02&to=2026-03-01", "To"), ("merchant=99999999999999999999", "Merchant"),
    ("merchant=-1", "Merchant"), ("merchant=1%27%20OR%201=1", "Merchant"),
    ("currency=" + "X" * 5000, "Currency"), ("currency=BTC%27--", "Currency"),
    ("status=confirmed%27%20OR%20%271%27=%271", "Status"), ("kind=all", "Kind"),
    ("q=" + "a" * 256, "Search"), ("q=abc%00def", "Search"),
])
def test_a_filter_that_cannot_be_read_is_a_clear_400(accountant: FlaskClient, query: str,
                                                    field: str) -> None:
    answer = accountant.get(f"/console/payments?{query}")
    assert answer.status_code == 400
    assert "These filters could not be read" in answer.text and field in answer.text
    assert 'aria-invalid="true"' in answer.text
    exported = accountant.get(f"/console/payments.csv?{query}")
    assert exported.status_code == 400 and field in exported.text


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=0001-01-01", "from=9999-12-31",
                                   "merchant=2147483647", "q=" + "z" * 255])
def test_extreme_but_readable_filters_list_nothing_and_fail_nothing(
        app: Flask, accountant: FlaskClient, query: str) -> None:
    add_pages(app, A, 1)
    assert accountant.get(f"/console/payments?{query}").status_code == 200
    assert accountant.get(f"/console/payments.csv?{query}").status_code == 200


@pytest.mark.parametrize("cursor", ["garbage", "%00", "A" * 5000, "MjAyNi0wMy0wMVQxMjowMHwn"])
def test_a_broken_cursor_is_a_clear_400(accountant: FlaskClient, cursor: str) -> None:
    answer = accountant.get(f"/console/payments?after={cursor}")
    assert answer.status_code == 400
    assert "start again from the first page" in answer.text


@pytest.mark.parametrize("q", ["' OR 1=1 --", "%", "_", "*", "\" OR \"\"=\"", "addr-22-0",
                               "of-b", "1; DROP TABLE pages"])
def test_a_search_that_matches_nothing_of_ones_own_says_so(app: Flask, accountant: FlaskClient,
                                                           q: str) -> None:
    add_pages(app, A, 2)
    add_pages(app, B, 1, foreign_id="of-b")
    answer = accountant.get("/console/payments", query_string={"q": q})
    assert answer.status_code == 200
    assert "Nothing found" in answer.text and "/console/payments/" not in answer.text


def test_statements_per_list_request_do_not_grow_with_rows(app: Flask,
                                                           accountant: FlaskClient) -> None:
    add_pages(app, A, 3)
    with statements(app) as few:
        assert accountant.get("/console/payments?attention=1&q=x").status_code == 200
    with statements(app) as small:
        assert accountant.get("/console/payments").status_code == 200
    add_pages(app, A, 60, foreign_id="more")
    with statements(app) as large:
        assert accountant.get("/console/payments").status_code == 200
    # The sign-in's session and roles, the page of rows, the merchants for the form.
    assert len(small) == len(large) == len(few) <= 6, large
    with statements(app) as exported:
        assert len(accountant.get("/console/payments.csv").get_data(as_text=True)
                   .splitlines()) == 64
    # The sign-in's, the audit entry, and one batch of three (pages, deposit fees, invoice
    # fees; the last two only when the batch holds such pages).
    assert len(exported) <= 4 + 2 + 3, exported
