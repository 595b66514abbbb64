"""SQLite's one-row reads that keep the interpreter's lock (checkout/sqlite_reader.py): the
same values and errors as the `sqlite3` module, no other thread running while SQLite works,
and a read that would wait for a lock handed to the driver, which waits without it."""

from __future__ import annotations

import ctypes
import gc
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit.live import wait_until
from sqlalchemy import column, create_engine, select, table

from checkout import db, sqlite_reader
from checkout.models import Merchant

pytestmark = pytest.mark.skipif(not sqlite_reader.available(),
                                reason="the sqlite3 module's library cannot be called here")

ROWS = [("plain", 5, 1.5, b"\x00\x01", None),
        ("é ☃ \U0001f600", -(2**63), 0.0, b"", ""),
        ("big", 2**63 - 1, -2.5e300, bytes(range(256)) * 40, "x" * 20000),
        ("a NUL in its text", 1, 1.0, b"a\x00b", "before\x00after")]
SELECT_ROW = "SELECT key, number, real, data, note FROM t WHERE key = ?"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "reads.db")
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (key TEXT PRIMARY KEY, number INTEGER, real REAL, "
                           "data BLOB, note TEXT)")
        connection.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", ROWS)
    connection.close()
    yield path


@pytest.fixture
def reader(database: str) -> Iterator[sqlite_reader.Reader]:
    opened = sqlite_reader.Reader(database)
    yield opened
    opened.close()


def driver_first(path: str, sql: str, arguments: list[Any]) -> Any:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, arguments).fetchone()
    finally:
        connection.close()


@pytest.mark.parametrize("key", [row[0] for row in ROWS])
def test_a_row_reads_as_the_driver_reads_it(database: str, reader: sqlite_reader.Reader,
                                            key: str) -> None:
    found = reader.first(SELECT_ROW, [key])
    assert found == driver_first(database, SELECT_ROW, [key])
    assert [type(value) for value in found] == [
        type(value) for value in driver_first(database, SELECT_ROW, [key])]


@pytest.mark.parametrize("value", [None, 0, -1, True, 2**63 - 1, 1.25, "", "ü", "a\x00b",
                                   b"\x00b", bytearray(b"ab")])
def test_each_kind_of_argument_is_bound_as_the_driver_binds_it(
        database: str, reader: sqlite_reader.Reader, value: Any) -> None:
    sql = "SELECT ?, typeof(?)"
    assert reader.first(sql, [value, value]) == driver_first(database, sql, [value, value])


def test_no_row_is_none_and_the_next_read_sees_what_was_committed_since(
        database: str, reader: sqlite_reader.Reader) -> None:
    assert reader.first(SELECT_ROW, ["later"]) is None
    with sqlite3.connect(database) as connection:
        connection.execute("INSERT INTO t VALUES ('later', 1, NULL, NULL, 'new')")
    connection.close()
    assert reader.first("SELECT note FROM t WHERE key = ?", ["later"]) == ("new",)


def test_errors_are_the_drivers(reader: sqlite_reader.Reader) -> None:
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        reader.first("SELECT missing_column FROM t", [])
    with pytest.raises(sqlite3.ProgrammingError, match="bindings"):
        reader.first(SELECT_ROW, [])
    with pytest.raises(sqlite3.ProgrammingError, match="binding parameter 1"):
        reader.first(SELECT_ROW, [object()])
    with pytest.raises(OverflowError):
        reader.first(SELECT_ROW, [2**63])
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.first("DELETE FROM t RETURNING key", [])  # opened read-only
    with pytest.raises(sqlite3.ProgrammingError, match="one statement at a time"):
        reader.first("SELECT 1; DELETE FROM t", [])
    assert reader.first(SELECT_ROW, ["plain"]) == ROWS[0]  # none of them broke it
    reader.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        reader.first(SELECT_ROW, ["plain"])


@pytest.mark.parametrize(("code", "kind"), [
    (5, sqlite_reader.Busy), (261, sqlite_reader.Busy), (517, sqlite_reader.Busy),
    (6, sqlite_reader.Busy), (262, sqlite_reader.Busy), (1, sqlite3.OperationalError),
    (11, sqlite3.DatabaseError), (26, sqlite3.DatabaseError), (7, MemoryError),
    (19, sqlite3.IntegrityError), (21, sqlite3.InterfaceError)])
def test_each_result_code_is_the_drivers_error_and_every_busy_or_locked_one_is_busy(
        code: int, kind: type[Exception]) -> None:
    """Busy and locked with their extended codes (recovery, snapshot, shared cache) too."""
    found = sqlite_reader.error(code, "said")
    assert type(found) is kind and str(found) == "said"


def test_a_reader_never_waits_in_a_busy_timeout(reader: sqlite_reader.Reader) -> None:
    assert reader.first("PRAGMA busy_timeout", []) == (0,)


def test_a_read_that_would_wait_for_a_lock_fails_at_once(
        database: str, reader: sqlite_reader.Reader) -> None:
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        # Out of WAL, a writer's exclusive lock keeps readers out (in WAL it never does).
        writer.execute("PRAGMA journal_mode=DELETE")
        writer.execute("BEGIN EXCLUSIVE")
        with pytest.raises(sqlite_reader.Busy):
            reader.first(SELECT_ROW, ["plain"])
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert reader.first(SELECT_ROW, ["plain"]) == ROWS[0]


# A read that keeps SQLite busy for a while (about a million steps), with no table at all.
LONG_READ = ("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) "
             "SELECT count(*) FROM n")


def others_ran_during(read: Any) -> int:
    """How far another thread, counting, got while `read()` ran. The interpreter is told not
    to switch threads on its own meanwhile, and the counter gives the lock back at each
    step: it runs only where the reading thread lets go of the lock itself."""
    counted = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            counted[0] += 1
            time.sleep(0)  # lets go of the lock: the reading thread takes it back at once

    interval = sys.getswitchinterval()
    sys.setswitchinterval(60)
    counter = threading.Thread(target=count)
    gc.collect()
    gc.disable()  # a collection could close another connection, which lets go of the lock
    try:
        counter.start()
        wait_until(lambda: counted[0] > 0, what="the counting thread running")
        before = counted[0]
        assert read() == (1_000_000,)
        ran = counted[0] - before
    finally:
        gc.enable()
        sys.setswitchinterval(interval)
        stop.set()
        if counter.is_alive():
            counter.join()
    return ran


def test_no_other_thread_runs_while_sqlite_reads(database: str,
                                                 reader: sqlite_reader.Reader) -> None:
    assert others_ran_during(lambda: reader.first(LONG_READ, [1_000_000])) == 0
    # The driver lets go of the lock for the same read, and the other thread counts.
    assert others_ran_during(lambda: driver_first(database, LONG_READ, [1_000_000])) > 0


def test_each_thread_of_a_file_database_reads_through_a_reader(app: Any, merchant: Merchant
                                                               ) -> None:
    engine = app.extensions[db.EXTENSION + ".engine"]
    readers = db.ThreadReaders.of(engine)
    if readers is None:
        pytest.skip("PostgreSQL reads through the pool")
    read = db.DirectRead(engine, select(Merchant.client_id).where(Merchant.client_id == 11))
    assert read.first({}) == (11,)
    assert isinstance(readers.local.held.connection, sqlite_reader.Reader)


def test_an_in_memory_database_reads_through_the_driver() -> None:
    engine = create_engine("sqlite://")
    try:
        assert db.reader_path(engine) is None
    finally:
        engine.dispose()


NOTES = table("t", column("id"), column("note"))


def test_a_direct_read_that_meets_a_lock_waits_for_it_through_the_pool(tmp_path: Path
                                                                       ) -> None:
    # Out of WAL (the site's engine always puts its database in WAL), where a writer's
    # exclusive lock keeps readers out; in WAL a reader never meets one but in recovery.
    path = tmp_path / "locked.db"
    # The pool's connection waits up to a minute: a safety bound, not a measure.
    engine = create_engine(f"sqlite:///{path}",
                           connect_args={"check_same_thread": False, "timeout": 60})
    db.ThreadReaders.install(engine)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT)")
            connection.exec_driver_sql("INSERT INTO t VALUES (1, 'before')")
        read = db.DirectRead(engine, select(NOTES.c.note).where(NOTES.c.id == 1))
        found: list[Any] = []
        readers = db.ThreadReaders.of(engine)
        assert readers is not None
        writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            writer.execute("BEGIN EXCLUSIVE")
            writer.execute("UPDATE t SET note = 'after' WHERE id = 1")

            thread = threading.Thread(target=lambda: found.append(read.first({})))
            thread.start()
            try:
                wait_until(lambda: readers.waited == 1, what="the read handed to the pool")
                writer.execute("COMMIT")
            finally:
                thread.join()
        finally:
            writer.close()
        assert found == [("after",)]  # it waited for the writer, as the driver waits
    finally:
        engine.dispose()


def loaded_sqlite_file() -> str | None:
    """The file of the SQLite library this process has loaded (Linux), if any."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.split()[-1]
                if "libsqlite3" in Path(path).name:
                    return path
    except OSError:
        return None
    return None


def test_only_the_drivers_own_copy_of_sqlite_is_used(tmp_path: Path) -> None:
    """Another copy of the same library, the same version, would not see the driver's locks,
    and closing a file in it would drop them: it fails the proof, the driver's passes."""
    assert sqlite_reader.shares_the_drivers_locks(sqlite_reader.library())
    original = loaded_sqlite_file()
    if original is None:
        pytest.skip("no shared SQLite library file to copy here")
    copy = tmp_path / "libsqlite3-copy.so"
    shutil.copy(original, copy)
    other = sqlite_reader.typed(ctypes.PyDLL(str(copy)))
    assert other.sqlite3_libversion().decode() == sqlite3.sqlite_version
    assert not sqlite_reader.shares_the_drivers_locks(other)


def test_a_reader_closed_by_another_thread_mid_reads_ends_them_cleanly(database: str
                                                                       ) -> None:
    """A close (an engine disposed) while the reader's thread reads on: each read either
    answers whole or finds the reader closed, never a finalized statement."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as the interpreter can
    try:
        for _ in range(50):
            reader = sqlite_reader.Reader(database)
            answers: list[Any] = []
            closed = threading.Event()

            def read_on(reader: sqlite_reader.Reader = reader, answers: list[Any] = answers,
                        closed: threading.Event = closed) -> None:
                try:
                    while True:
                        answers.append(reader.first(SELECT_ROW, ["big"]))
                except sqlite3.ProgrammingError:
                    closed.set()

            thread = threading.Thread(target=read_on)
            thread.start()
            wait_until(lambda answers=answers: len(answers) > 0, what="a first read")
            reader.close()
            thread.join()
            assert closed.is_set()
            assert all(answer == ROWS[2] for answer in answers)
    finally:
        sys.setswitchinterval(interval)
