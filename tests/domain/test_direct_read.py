"""The reads in front of Flask go to the driver directly (db.DirectRead): the same rows as
SQLAlchemy reads, named and typed alike, and a failed read leaves no broken connection in
the pool."""

from __future__ import annotations

import gc
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from kit import kept_rows
from kit.links import page_of
from kit.site import flask_requests
from sqlalchemy import column, select, table, update

from checkout import db, sqlite_reader
from checkout.models import Merchant, Page
from checkout.web import front, link_front, pagecache, pagestore, qrimages

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "direct-1", "amount": "0.00123"}
STATEMENTS = {"model": front.READ_MODEL, "state": pagecache.STATE,
              "state and stored": pagestore.STATE_AND_STORED, "qr": qrimages.READ,
              "link": link_front.PAGE_OF_LINK}  # with a value of its own (the version's id)


@pytest.fixture
def page_id(app: Flask, merchant: Merchant) -> str:
    client = app.test_client()
    page = page_of(client, LINK)
    client.get(page)  # stored for every process: the stored columns are read too
    return page.rsplit("/", 1)[1]


def params_of(app: Flask, page_id: str) -> dict[str, Any]:
    with app.app_context():
        variant = db.session().execute(select(pagestore.PageRendering.variant)).scalar()
        digest = db.session().execute(select(Page.link_digest)).scalar()
    return {"page_id": page_id, "variant": variant, "kept": pagestore.NOT_KEPT,
            "client_id": 11, "digest": digest}


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_a_direct_read_is_the_row_sqlalchemy_reads(app: Flask, page_id: str, name: str) -> None:
    engine = app.extensions[db.EXTENSION + ".engine"]
    statement = STATEMENTS[name]
    params = params_of(app, page_id)
    with engine.connect() as connection:
        expected = connection.execute(statement, params).first()
    assert expected is not None
    read = db.DirectRead(engine, statement).first(params)
    assert tuple(read) == tuple(expected)
    assert read._fields == tuple(expected._fields)
    assert [type(value) for value in read] == [type(value) for value in expected]
    if name in ("state", "state and stored"):
        assert read.is_iframe is False  # SQLite's 0, typed as SQLAlchemy types it
    if name == "link":
        assert read.id == page_id


def test_a_direct_read_of_no_row_is_none(app: Flask, merchant: Merchant) -> None:
    engine = app.extensions[db.EXTENSION + ".engine"]
    assert db.DirectRead(engine, front.READ_MODEL).first({"page_id": "x" * 32}) is None


def test_a_failed_direct_read_raises_the_drivers_error_and_keeps_no_connection(
        app: Flask, page_id: str) -> None:
    engine = app.extensions[db.EXTENSION + ".engine"]
    missing = db.DirectRead(engine, select(column("id")).select_from(table("no_such_table")))
    with pytest.raises(engine.dialect.loaded_dbapi.Error):
        missing.first({})
    assert engine.pool.checkedout() == 0
    read = db.DirectRead(engine, front.READ_MODEL)
    assert read.first({"page_id": page_id}).model_json


def model_of(app: Flask, page_id: str) -> Any:
    engine = app.extensions[db.EXTENSION + ".engine"]
    return db.DirectRead(engine, front.READ_MODEL).first({"page_id": page_id}).model_json


def test_a_direct_read_sees_every_change_committed_before_it(app: Flask, page_id: str) -> None:
    """A connection kept for reads (SQLite) holds no snapshot between its reads."""
    for n in range(3):
        assert model_of(app, page_id) != f'{{"changed": {n}}}'
        with app.app_context(), db.transaction() as session:
            session.execute(update(Page).where(Page.id == page_id)
                            .values(model_json=f'{{"changed": {n}}}'))
        assert model_of(app, page_id) == f'{{"changed": {n}}}'


def test_on_postgresql_a_direct_read_is_its_statement_alone(
        app: Flask, page_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No transaction around it: no BEGIN before the SELECT, no ROLLBACK as the pool takes
    the connection back (each a round trip to the server). The connection goes back as it
    came: the next session on it opens a transaction, and its rollback undoes its write.
    The row comes in binary (the values are the same: the test above)."""
    engine = app.extensions[db.EXTENSION + ".engine"]
    if engine.dialect.name != "postgresql":
        pytest.skip("a SQLite read is made in the process, with no round trip")
    seen: list[Any] = []
    drivers: list[Any] = []
    real = db.fetch_one

    options: list[dict[str, Any]] = []

    def watched(connection: Any, sql: str, arguments: Any, **cursor_options: Any) -> Any:
        row = real(connection, sql, arguments, **cursor_options)
        drivers.append(getattr(connection, "dbapi_connection", connection))
        seen.append(drivers[-1].info.transaction_status)
        options.append(cursor_options)
        return row

    monkeypatch.setattr(db, "fetch_one", watched)
    for _ in range(3):
        assert model_of(app, page_id)
    assert [status.name for status in seen] == ["IDLE"] * 3  # INTRANS: a BEGIN went first
    assert all(driver.autocommit is False for driver in drivers)
    # In PostgreSQL's binary format: a stored rendering's bytes as they are, not as hex.
    assert options == [{"binary": True}] * 3
    monkeypatch.undo()
    with engine.connect() as connection:
        connection.execute(update(Page).where(Page.id == page_id).values(model_json="{}"))
        connection.rollback()
    assert model_of(app, page_id) != "{}"


def open_connections(readers: db.ThreadReaders) -> list[Any]:
    return [held.connection for held in readers.opened if held.close.alive]


def is_open(connection: Any) -> bool:
    if isinstance(connection, sqlite_reader.Reader):
        return not connection.closed
    try:
        connection.execute("SELECT 1")
    except sqlite3.ProgrammingError:  # closed
        return False
    return True


def test_on_sqlite_each_thread_reads_on_a_connection_of_its_own_outside_the_pool(
        app: Flask, page_id: str) -> None:
    engine = app.extensions[db.EXTENSION + ".engine"]
    readers = db.ThreadReaders.of(engine)
    if engine.dialect.name != "sqlite":
        assert readers is None  # PostgreSQL reads through the pool
        return
    assert readers is not None
    assert model_of(app, page_id)
    mine = readers.local.held.connection
    before = engine.pool.checkedout()
    for _ in range(3):
        assert model_of(app, page_id)
    assert readers.local.held.connection is mine and engine.pool.checkedout() == before
    # Another thread reads on one of its own, closed when the thread ends.
    theirs: list[Any] = []

    def read_elsewhere() -> None:
        assert model_of(app, page_id)
        theirs.append(readers.local.held.connection)
        assert theirs[0] in open_connections(readers)

    other = threading.Thread(target=read_elsewhere)
    other.start()
    other.join()
    assert len(theirs) == 1 and theirs[0] is not mine
    assert not is_open(theirs[0]) and open_connections(readers) == [mine]
    engine.dispose()  # the engine's connections go, and the threads' with them
    assert not is_open(mine) and open_connections(readers) == []
    assert model_of(app, page_id)  # a new one, without an error
    assert len(open_connections(readers)) == 1


def test_a_poll_whose_direct_read_fails_is_answered_in_front_all_the_same(
        app: Flask, page_id: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = app.extensions[db.EXTENSION + ".engine"]
    client = app.test_client()
    assert client.get(f"/p/{page_id}/status").status_code == 200
    readers = db.ThreadReaders.of(engine)
    if readers is None:
        pytest.skip("PostgreSQL reads through the pool (test_dropped_connections.py)")
    readers.local.held.connection.close()  # broken under the reader, unknown to it
    kept_rows.forget_all(app)  # the page is read again, not served as kept
    handled = flask_requests(app)
    for _ in range(2):
        assert client.get(f"/p/{page_id}/status").status_code == 200
    assert handled == []  # answered in front of Flask, read again through SQLAlchemy
    assert [r.message for r in caplog.records if "direct read failed" in r.message] == [
        "a direct read failed; reading again through SQLAlchemy"]


def test_a_failed_read_on_a_threads_own_connection_opens_another(
        app: Flask, page_id: str) -> None:
    engine = app.extensions[db.EXTENSION + ".engine"]
    readers = db.ThreadReaders.of(engine)
    if readers is None:
        pytest.skip("PostgreSQL reads through the pool")
    assert model_of(app, page_id)
    kept = readers.local.held.connection
    missing = db.DirectRead(engine, select(column("id")).select_from(table("no_such_table")))
    with pytest.raises(engine.dialect.loaded_dbapi.Error):
        missing.first({})
    assert not is_open(kept) and kept not in open_connections(readers)
    assert model_of(app, page_id)
    assert open_connections(readers) == [readers.local.held.connection]
    assert readers.local.held.connection is not kept


def test_an_engine_dropped_is_freed_with_its_readers(tmp_path: Path) -> None:
    """What keeps each thread's connection never keeps the engine alive (a test suite makes
    an app, and an engine, per test)."""

    def used_and_disposed() -> weakref.ref[Any]:
        engine = db.make_engine(f"sqlite:///{tmp_path / 'gone.db'}")
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        read = db.DirectRead(engine, select(column("id")).select_from(table("t")))
        assert read.first({}) is None
        engine.dispose()
        return weakref.ref(engine)

    gone = used_and_disposed()
    gc.collect()
    assert gone() is None


def test_a_sqlite_database_not_in_utf8_is_refused_at_its_first_connection(
        tmp_path: Path) -> None:
    """A stored rendering is read as its bytes and served as UTF-8: a database made in
    UTF-16 by hand would serve its bytes as they are, so the site refuses to open it."""
    path = tmp_path / "utf16.db"
    made = sqlite3.connect(path)
    made.execute("PRAGMA encoding = 'UTF-16le'")
    made.execute("CREATE TABLE t (x TEXT)")
    made.close()
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(ValueError, match="UTF-16le; the site needs UTF-8"):
            engine.connect()
    finally:
        engine.dispose()
    fine = db.make_engine(f"sqlite:///{tmp_path / 'utf8.db'}")
    try:
        with fine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA encoding").scalar() == "UTF-8"
    finally:
        fine.dispose()
