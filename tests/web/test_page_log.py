"""On SQLite a page polled or viewed again is read once until it changes, as on PostgreSQL,
with the change log in place of notices (web/pagelog.py, page_notices.py): each commit that
changes pages logs them in the same transaction; a process looks at SQLite's mark of the
last commit before it serves a kept row, and reads the log's new rows when there was one.
A change committed anywhere before a request is seen by that request; a rollback logs
nothing; a change no site connection made is seen within `MAX_AGE`."""

from __future__ import annotations

import gc
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from kit import budgets, kept_rows
from kit.deposits import LINK, open_link, send_deposit
from sqlalchemy import create_engine, delete, func, insert, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from checkout import db, page_notices
from checkout.models import DepositAddress, Merchant, Page, PageChange
from checkout.web import pagelog, pagerows, qrimages

DATABASE_URL = os.environ.get("CHECKOUT_DATABASE_URL", "")
pytestmark = pytest.mark.skipif(
    DATABASE_URL.startswith("postgresql"),
    reason="the change log is SQLite's (PostgreSQL's notices: test_page_rows.py)")

PAID_HEADING = '<h1 data-field="heading">Paid</h1>'
LINK_OF_ANOTHER_ORDER = {**LINK, "foreign_id": "user-8"}


@pytest.fixture
def page(app: Flask, merchant: Merchant, address: DepositAddress, fresh_rate: None) -> str:
    return open_link(app.test_client())


def database_file(app: Flask) -> str:
    path = app.extensions[db.EXTENSION + ".engine"].url.database
    assert path
    return str(path)


def log_of(app: Flask) -> pagelog.ChangeLog:
    rows = kept_rows.listening(app)
    assert rows is not None
    assert isinstance(rows.listener, pagelog.ChangeLog)
    return rows.listener


def polled(app: Flask, page: str) -> tuple[dict[str, Any], int]:
    """The poll's answer, and how many statements it sent through the site's engine."""
    with budgets.spent(app) as spent:
        response = app.test_client().get(page + "/status")
    assert response.status_code == 200
    return response.get_json(), len(spent.queries)


def logged(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session().scalars(select(PageChange.pages).order_by(PageChange.seq)))


def page_id_of(page: str) -> str:
    return page.rsplit("/", 1)[1]


def test_a_page_polled_again_is_read_once_and_its_qr_reads_nothing(
        app: Flask, page: str) -> None:
    log_of(app)
    first, reads = polled(app, page)
    assert reads == 1
    assert polled(app, page) == (first, 0)
    with budgets.spent(app) as spent:
        assert app.test_client().get(page + "/qr.svg").status_code == 200
    assert spent.queries == []


def test_a_change_in_another_process_is_seen_by_the_next_request_without_waiting(
        app: Flask, make_app: Callable[..., Flask], page: str) -> None:
    log = log_of(app)
    assert polled(app, page)[0]["phase"] == "waiting"
    assert polled(app, page)[1] == 0
    reads = log.reads
    send_deposit(make_app(), 1, "confirmed")  # another process's callback, its own engine
    answer, statements = polled(app, page)  # at once: the log read in this very request
    assert answer["phase"] == "paid" and statements == 1
    assert log.reads == reads + 1


def test_a_page_viewed_again_is_read_once_until_another_process_changes_it(
        app: Flask, make_app: Callable[..., Flask], page: str) -> None:
    log_of(app)
    client = app.test_client()
    first = client.get(page).get_data(as_text=True)
    with budgets.spent(app) as kept:
        assert client.get(page).get_data(as_text=True) == first
    assert kept.queries == []
    send_deposit(make_app(), 1, "confirmed")
    assert PAID_HEADING not in first
    assert PAID_HEADING in client.get(page).get_data(as_text=True)


def test_each_commit_logs_the_pages_it_changed_and_a_merchants_change_logs_every_page(
        app: Flask, page: str) -> None:
    page_id = page_id_of(page)
    before = logged(app)
    with app.app_context(), db.transaction() as s:
        s.execute(update(Page).where(Page.id == page_id).values(amount="9"))
    with app.app_context(), db.transaction() as s:
        s.execute(update(Merchant).where(Merchant.client_id == 11).values(accent="#123456"))
    assert logged(app)[len(before):] == [page_id, page_notices.EVERY]


def test_a_page_made_and_changed_in_one_transaction_logs_nothing(
        app: Flask, page: str) -> None:
    """No process can keep it before that commit (a first click, a new invoice)."""
    before = logged(app)
    made = page_id_of(open_link(app.test_client(), {**LINK_OF_ANOTHER_ORDER}))
    with app.app_context(), db.transaction() as s:
        s.execute(update(Page).where(Page.id == page_id_of(page)).values(amount="9"))
    assert made not in " ".join(logged(app)[len(before):])
    assert logged(app)[len(before):][-1] == page_id_of(page)


def test_a_rolled_back_change_logs_nothing(app: Flask, page: str) -> None:
    before = logged(app)
    with app.app_context():
        s = db.session()
        s.execute(update(Page).where(Page.id == page_id_of(page)).values(amount="9"))
        s.rollback()
    assert logged(app) == before


def test_a_read_that_raced_a_change_is_not_kept(
        app: Flask, make_app: Callable[..., Flask], page: str) -> None:
    rows = pagerows.rows(app)
    assert rows is not None
    log_of(app)
    other = make_app()

    def read_then_changed() -> Any:
        with app.extensions[db.EXTENSION + ".engine"].connect() as connection:
            row = connection.execute(qrimages.READ, {"page_id": page_id_of(page)}).first()
        send_deposit(other, 1, "confirmed")  # committed while this read is under way
        return row

    assert '"waiting"' in rows.read(page_id_of(page), read_then_changed).model_json
    answer, reads = polled(app, page)  # the log says the page changed: read again
    assert answer["phase"] == "paid" and reads == 1


def test_a_commit_of_any_connection_moves_the_mark_and_the_log_is_read_once_for_it(
        app: Flask, page: str) -> None:
    log = log_of(app)
    polled(app, page)
    mark = log.mark
    assert mark is not None
    seen = mark.now()
    with sqlite3.connect(database_file(app)) as outside:  # no site code: no log row
        outside.execute("UPDATE merchants SET accent = '#654321'")
    assert mark.now() not in (None, seen)
    reads = log.reads
    polled(app, page)
    polled(app, page)
    assert log.reads == reads + 1


def test_a_change_no_site_connection_logged_is_seen_within_the_rows_age(
        app: Flask, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log_of(app)
    polled(app, page)
    with sqlite3.connect(database_file(app)) as outside:  # an operator's SQL session
        outside.execute("UPDATE pages SET model_json = replace(model_json, '\"waiting\"', "
                        "'\"paid\"') WHERE id = ?", (page_id_of(page),))
    assert polled(app, page)[0]["phase"] == "waiting"  # kept: nothing logged it
    monkeypatch.setattr(pagerows, "MAX_AGE", 0.0)
    assert polled(app, page)[0]["phase"] == "paid"


def test_a_log_that_cannot_be_read_keeps_nothing_served(
        app: Flask, make_app: Callable[..., Flask], page: str) -> None:
    log = log_of(app)
    polled(app, page)
    assert polled(app, page)[1] == 0
    assert log.connection is not None
    log.connection.close()  # broken under the reader
    send_deposit(make_app(), 1, "confirmed")
    answer, reads = polled(app, page)
    assert answer["phase"] == "paid" and reads == 1


def test_old_log_rows_are_pruned_as_commits_go_on(
        app: Flask, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    page_id = page_id_of(page)
    with app.app_context(), db.transaction() as s:
        s.execute(text("INSERT INTO page_changes (pages, at) VALUES ('old', 1)"))
    monkeypatch.setattr(page_notices, "PRUNE_EVERY", 1)
    with app.app_context(), db.transaction() as s:
        s.execute(update(Page).where(Page.id == page_id).values(amount="9"))
    assert "old" not in logged(app) and logged(app)[-1] == page_id
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(PageChange)) >= 1


def test_polls_under_way_in_many_threads_while_another_process_commits(
        app: Flask, make_app: Callable[..., Flask], page: str) -> None:
    """Every poll that starts after the commit shows the change; once a thread has seen it,
    it never sees the page as it was again."""
    log_of(app)
    other = make_app()
    seen: list[list[tuple[bool, str]]] = [[] for _ in range(4)]
    committed = threading.Event()

    def poll(into: list[tuple[bool, str]]) -> None:
        client = app.test_client()
        for _ in range(5000):
            after = committed.is_set()
            into.append((after, client.get(page + "/status").get_json()["phase"]))
            if after and len([1 for was_after, _ in into if was_after]) >= 5:
                return

    threads = [threading.Thread(target=poll, args=(into,)) for into in seen]
    for thread in threads:
        thread.start()
    send_deposit(other, 1, "confirmed")
    committed.set()
    for thread in threads:
        thread.join(60)
    for polls in seen:
        assert {phase for after, phase in polls if after} == {"paid"}, polls
        phases = [phase for _after, phase in polls]
        assert "waiting" not in phases[phases.index("paid"):], phases


def test_a_database_not_in_wal_mode_is_not_followed_and_nothing_is_kept(
        tmp_path: Path) -> None:
    """Without a write-ahead log there is no commit mark to read: every request reads."""
    engine = create_engine(f"sqlite:///{tmp_path / 'rollback-journal.db'}")
    forgotten: list[frozenset[str]] = []
    log = pagelog.ChangeLog(engine, forgotten.append)
    try:
        log.start()
        assert not log.live and not log.catch_up()
        assert log.connection is None and log.mark is None
    finally:
        log.stop()
        engine.dispose()


def test_following_the_log_leaves_sqlites_own_locks_in_place(tmp_path: Path) -> None:
    """POSIX locks belong to the process: had the log's reader closed a descriptor of the
    `-shm` file, the write lock a thread of this process holds there would be gone, and
    another process could write at the same time."""
    path = tmp_path / "locks.db"
    engine = db.make_engine(f"sqlite:///{path}")
    PageChange.__table__.create(engine)  # type: ignore[attr-defined]
    writer = sqlite3.connect(path, isolation_level=None)
    log = pagelog.ChangeLog(engine, lambda _ids: None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO page_changes (pages, at) VALUES ('x', 1)")
        log.start()
        assert log.live
        log.stop()
        gc.collect()
        other = subprocess.run(
            [sys.executable, "-c", "import sqlite3, sys\n"
             "connection = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
             "connection.execute('BEGIN IMMEDIATE')\n", str(path)],
            capture_output=True, text=True, timeout=60, check=False)
        assert other.returncode != 0 and "database is locked" in other.stderr, other
    finally:
        writer.close()
        log.stop()
        engine.dispose()


def test_a_gap_in_the_log_after_what_was_seen_forgets_everything(
        app: Flask, page: str) -> None:
    """Rows pruned before this process read them: it cannot know what they named."""
    log = log_of(app)
    forgotten: list[frozenset[str]] = []
    log.forget = forgotten.append
    polled(app, page)
    with sqlite3.connect(database_file(app)) as outside:
        outside.execute("INSERT INTO page_changes (seq, pages, at) VALUES (?, 'other', 1)",
                        (log.last + 5,))
    assert log.catch_up()
    assert forgotten == [frozenset({page_notices.EVERY})]
    # A gap between two rows read together, too.
    with sqlite3.connect(database_file(app)) as outside:
        outside.executemany("INSERT INTO page_changes (seq, pages, at) VALUES (?, 'x', 1)",
                            [(log.last + 1,), (log.last + 3,)])
    assert log.catch_up()
    assert forgotten[1:] == [frozenset({page_notices.EVERY})]


@pytest.mark.parametrize(("statement", "noted"), [
    ("REPLACE INTO pages (id) VALUES ('x')", {page_notices.EVERY}),
    ("INSERT OR REPLACE INTO pages (id) VALUES ('x')", {page_notices.EVERY}),
    ("UPDATE OR IGNORE pages SET amount = '1'", {page_notices.EVERY}),
    ("UPDATE OR REPLACE pages SET amount = '1' WHERE id = 'x'", {page_notices.EVERY}),
    ('UPDATE "main"."pages" SET amount = \'1\'', {page_notices.EVERY}),
    ("INSERT OR IGNORE INTO pages (id) VALUES ('x')", set()),
    ("INSERT INTO pages (id) VALUES ('x')", set()),
])
def test_sqlites_own_spellings_of_a_change_are_noted(statement: str, noted: set[str]) -> None:
    assert page_notices.changed(statement, None) == noted


def test_a_page_an_insert_did_not_make_is_still_logged_when_changed(
        app: Flask, page: str) -> None:
    """An INSERT that met the page already (ON CONFLICT DO NOTHING) made nothing: a change to
    that page in the same transaction is logged as any other."""
    page_id = page_id_of(page)
    before = logged(app)
    with app.app_context(), db.transaction() as s:
        s.execute(sqlite_insert(Page).values(
            id=page_id, kind="deposit", merchant_id=11, foreign_id="f", currency="BTC",
            status="waiting").on_conflict_do_nothing())
        s.execute(update(Page).where(Page.id == page_id).values(amount="9"))
    assert logged(app)[len(before):] == [page_id]


def test_a_page_deleted_then_made_again_in_one_transaction_is_logged(
        app: Flask, page: str) -> None:
    page_id = page_id_of(page)
    before = logged(app)
    with app.app_context(), db.transaction() as s:
        found = s.get(Page, page_id)
        assert found is not None
        values = {column.key: getattr(found, column.key) for column in Page.__table__.columns}
        s.execute(text("DELETE FROM page_renderings WHERE page_id = :i"), {"i": page_id})
        s.execute(delete(Page).where(Page.id == page_id))
        s.execute(insert(Page).values(**{**values, "amount": "9"}))
    assert page_id in " ".join(logged(app)[len(before):])
