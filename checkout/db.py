"""One SQLAlchemy engine per app, one session per request or worker step."""

from __future__ import annotations

import logging
import select
import threading
import weakref
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from flask import Flask, current_app
from sqlalchemy import Engine, LargeBinary, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.sql.functions import FunctionElement

from . import page_notices, sqlite_reader

log = logging.getLogger(__name__)

EXTENSION = "checkout.db"


class Base(DeclarativeBase):
    """The site's tables. The embedded sandbox keeps its own Base."""


# Connections each process keeps open. At least the threads a process serves with (`make run`:
# 16): past the pool, every request opens a connection and closes it again, and a new SQLite
# connection reads the schema and sets its pragmas, a new PostgreSQL one forks a backend.
POOL_SIZE = 16


def make_engine(url: str, pool_size: int = POOL_SIZE) -> Engine:
    """An engine that behaves the same on SQLite and PostgreSQL under concurrency."""
    pool = {"pool_size": pool_size, "max_overflow": pool_size}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets the site, the worker and the sandbox read while one writes;
            # foreign keys are off by default in SQLite.
            cursor = dbapi_connection.cursor()
            # Text is read as its bytes where it is served as UTF-8 (`utf8_bytes`): SQLite
            # hands out the bytes in the database's encoding, UTF-8 unless a database was
            # made otherwise by hand before the site's schema.
            (encoding,) = cursor.execute("PRAGMA encoding").fetchone()
            if encoding != "UTF-8":
                cursor.close()
                raise ValueError(f"the SQLite database is in {encoding}; the site needs UTF-8 "
                                 "(SQLite's default, set before its first table is made)")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        ThreadReaders.install(engine)
        page_notices.install(engine)
        return engine
    # No pre-ping: a round trip before every request's first statement, as long as the
    # status poll's own query. A connection that died in the pool (a backend
    # terminated, a server restarted) has told us so already: it is dropped as it is taken
    # out, for a new one, without a round trip (`_closed_by_server`). One that dies without a
    # word (a network cut) fails its request's statement: SQLAlchemy invalidates it and every
    # connection of the pool opened before it, so the next request starts on fresh ones.
    engine = create_engine(url, **pool)
    event.listen(engine, "checkout", _closed_by_server)
    page_notices.install(engine)
    return engine


def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled PostgreSQL connection that the server has closed; the pool then opens
    another in its place.

    Between requests an idle connection has nothing to read: every answer was read whole.
    A server that ends a session (pg_terminate_backend, a shutdown, idle_session_timeout)
    sends its FATAL message and closes the socket, so a readable socket is a dead session.
    A poll with no wait costs a system call, not a round trip. (Were the server to send an
    idle connection anything else, such as a setting reloaded, it would only cost a new
    connection.)"""
    try:
        fileno = dbapi_connection.fileno()
    except Exception as exc:  # closed already: psycopg refuses to name its socket
        raise DisconnectionError("connection closed") from exc
    waiting = select.poll()
    waiting.register(fileno, select.POLLIN | select.POLLPRI)
    if waiting.poll(0):
        raise DisconnectionError("connection closed by the server")


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"],
                         int(app.config.get("DATABASE_POOL_SIZE", POOL_SIZE)))
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    app.extensions[EXTENSION] = scoped_session(factory)
    app.extensions[EXTENSION + ".engine"] = engine
    app.extensions[EXTENSION + ".factory"] = factory

    @app.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        app.extensions[EXTENSION].remove()


def conflict_insert(dialect_name: str, target: Any) -> Any:
    """An INSERT into `target` that can say ON CONFLICT, in the dialect of the database the
    site runs on (PostgreSQL's, else SQLite's: the two it supports spell it alike)."""
    return (postgresql if dialect_name == "postgresql" else sqlite).insert(target)


class utf8_bytes(FunctionElement[bytes]):  # noqa: N801 (an SQL function's name)
    """A text column's value as its UTF-8 bytes: SQLite's `CAST(x AS BLOB)` (its text is
    UTF-8: `make_engine` refuses a database in another encoding), PostgreSQL's
    `convert_to(x, 'UTF8')`. A page served as bytes is read as bytes, not decoded into text
    only to be encoded back."""

    type = LargeBinary()
    inherit_cache = True
    name = "utf8_bytes"


@compiles(utf8_bytes, "sqlite")
def _sqlite_utf8_bytes(element: utf8_bytes, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS BLOB)"


@compiles(utf8_bytes, "postgresql")
def _postgresql_utf8_bytes(element: utf8_bytes, compiler: Any, **kw: Any) -> str:
    return f"convert_to({compiler.process(element.clauses, **kw)}, 'UTF8')"


class DirectRead:
    """One SELECT read through the driver: for the few reads in front of Flask that every
    open page repeats (web/front.py). Compiled once; each read then costs a pooled
    connection, the driver's execute and one row, without SQLAlchemy's per-statement work
    (a cache lookup, an execution context, a result), which is most of a status poll's own
    time on SQLite. The row comes back as SQLAlchemy would build it: its columns by name,
    each value through its type's result processing (SQLite's 0/1 as a bool, say).

    Its statements do not pass through the engine's events: nothing listens for reads in
    the site (page_notices.py notes writes), and tests count them apart. Result processing
    is set up without the driver's column types, as for the columns these reads take
    (text, integers, booleans, bytes); a type whose processing needs them (PostgreSQL's
    numerics) would fail when the front is built, not in a customer's request."""

    def __init__(self, engine: Engine, statement: Any) -> None:  # a Select of any columns
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.engine = engine
        self.statement = statement
        self.sql = compiled.string
        # On PostgreSQL a read in a transaction of its own costs three round trips: the
        # driver's BEGIN, the SELECT, and the pool's ROLLBACK as the connection goes back. In
        # autocommit it is the SELECT alone (its own snapshot, as before).
        self.autocommit = dialect.name == "postgresql"
        # The driver's parameters in the compiled statement's order (SQLite's `?`), or by
        # name (psycopg's `%(name)s`).
        self.order = list(compiled.positiontup or ()) if compiled.positional else None
        # Values the statement carries itself (`MerchantsVersion.id == 1`).
        self.fixed = {name: value for name, value in compiled.params.items()
                      if value is not None}
        columns = list(statement.selected_columns)
        self.row = namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]
        self.processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                           for column in columns]

    def first(self, params: dict[str, Any]) -> Any:
        """The statement's first row, or None. A driver error is raised as the driver's,
        its connection dropped from the pool (it may be broken); the caller reads again
        through SQLAlchemy, which recovers from a lost connection."""
        found = self.execute(params)
        if found is None:
            return None
        return self.row(*[value if process is None else process(value)
                          for process, value in zip(self.processors, found, strict=True)])

    def read(self, params: dict[str, Any]) -> Any:
        """`first(params)`; after a driver error (logged), the same read through
        SQLAlchemy, which recovers from a lost connection. SQLAlchemy's own errors are the
        caller's."""
        try:
            return self.first(params)
        except self.engine.dialect.loaded_dbapi.Error:
            log.warning("a direct read failed; reading again through SQLAlchemy",
                        exc_info=True)
        try:
            return self.through_sqlalchemy(params)
        except DBAPIError as exc:
            # A connection that died unnoticed in the pool (no pre-ping) fails its first
            # statement and is invalidated, with the pool's older ones: a read has changed
            # nothing, so it is asked again once, on a fresh connection.
            if not exc.connection_invalidated:
                raise
            log.warning("a database connection was lost; reading again")
        return self.through_sqlalchemy(params)

    def through_sqlalchemy(self, params: dict[str, Any]) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(self.statement, params).first()

    def execute(self, params: dict[str, Any]) -> Any:
        if self.fixed:
            params = {**self.fixed, **params}
        arguments = params if self.order is None else [params[name] for name in self.order]
        readers = ThreadReaders.of(self.engine)
        if readers is not None:
            return readers.execute(self.sql, arguments)
        connection = self.engine.raw_connection()
        try:
            if self.autocommit:
                return autocommitted_one(connection.dbapi_connection, self.sql, arguments)
            return fetch_one(connection, self.sql, arguments)
        except BaseException:
            connection.invalidate()
            raise
        finally:
            connection.close()


def fetch_one(connection: Any, sql: str, arguments: Any, **cursor_options: Any) -> Any:
    cursor = connection.cursor(**cursor_options)
    try:
        cursor.execute(sql, arguments)
        return cursor.fetchone()
    finally:
        cursor.close()


def autocommitted_one(driver: Any, sql: str, arguments: Any) -> Any:
    """The first row on a psycopg connection in autocommit: no BEGIN before the statement,
    nothing for the pool to roll back after it. Taken idle from the pool, it goes back as
    it came (autocommit off), so that a session that takes it next opens its transaction.

    The row comes in PostgreSQL's binary format, its values the same Python objects as in
    text: a stored rendering's bytes (`utf8_bytes`) then come as they are, where text sends
    them as hex, twice as long, for the driver to decode (about 20 µs of a first view's
    read, measured)."""
    driver.autocommit = True
    try:
        return fetch_one(driver, sql, arguments, binary=True)
    finally:
        driver.autocommit = False


def detached_connection(engine: Engine) -> Any:
    """A driver connection of the engine's (its pragmas set on connect), taken out of its
    pool for good: the pool opens another in its place when it needs one."""
    taken = engine.raw_connection()
    taken.detach()
    return taken.dbapi_connection


class ThreadReaders:
    """SQLite: a connection of each thread's own for its direct reads, outside the pool, so
    that a read skips the pool's checkout and return (a third of a direct read). On a
    database file it is a `sqlite_reader.Reader`, whose reads keep the interpreter's lock
    (a read that would wait for a lock is read again through the pool, waiting as the driver
    waits); elsewhere a driver connection taken from the pool once and detached from it.
    Reading by primary key outside a transaction, such a connection holds no lock between
    reads. A thread's connection is closed when the thread ends (servers that start a thread
    per connection), with the engine (`dispose`), or after an error; the thread's next read
    opens another. PostgreSQL reads through the pool: a connection there is a server
    process, counted against `max_connections`."""

    _of: weakref.WeakKeyDictionary[Engine, ThreadReaders] = weakref.WeakKeyDictionary()

    def __init__(self, engine: Engine) -> None:
        self.engine = weakref.ref(engine)  # kept by the engine, never keeping it
        self.local = threading.local()
        # The connections open now, as their threads hold them: one whose thread ended is
        # closed and gone from here.
        self.opened: weakref.WeakSet[Held] = weakref.WeakSet()
        self.lock = threading.Lock()
        self.waited = 0  # reads that found a lock taken and were read through the pool

    @classmethod
    def install(cls, engine: Engine) -> None:
        readers = cls._of[engine] = cls(engine)
        event.listen(engine, "engine_disposed", lambda _engine: readers.close())

    @classmethod
    def of(cls, engine: Engine) -> ThreadReaders | None:
        return cls._of.get(engine)

    def execute(self, sql: str, arguments: Any) -> Any:
        held: Held | None = getattr(self.local, "held", None)
        if held is None or not held.close.alive:  # none yet, or closed with the engine
            held = self.local.held = self.open()
        try:
            if isinstance(held.connection, sqlite_reader.Reader):
                return held.connection.first(sql, arguments)
            return fetch_one(held.connection, sql, arguments)
        except sqlite_reader.Busy:
            self.waited += 1
            return self.read_waiting(sql, arguments)
        except BaseException:
            self.local.held = None
            held.close()
            raise

    def read_waiting(self, sql: str, arguments: Any) -> Any:
        """The read on a pooled driver connection, which waits for a lock (busy timeout)
        without holding the interpreter's."""
        engine = self.engine()
        if engine is None:
            raise RuntimeError("the engine is gone")
        connection = engine.raw_connection()
        try:
            return fetch_one(connection, sql, arguments)
        except BaseException:
            connection.invalidate()
            raise
        finally:
            connection.close()

    def open(self) -> Held:
        engine = self.engine()
        if engine is None:
            raise RuntimeError("the engine is gone")
        path = reader_path(engine)  # once per thread: asked again after a close
        # Closing it closes it.
        held = Held(detached_connection(engine) if path is None else sqlite_reader.Reader(path))
        with self.lock:
            self.opened.add(held)
        return held

    def close(self) -> None:
        """Close every thread's connection: each thread opens another at its next read (one
        reading at that moment meets an error, and reads again as after any error)."""
        with self.lock:
            opened = list(self.opened)
        for held in opened:
            held.close()


def reader_path(engine: Engine) -> str | None:
    """The database file a `sqlite_reader.Reader` may read for the engine, as the driver's
    own connection names it (a relative path in the URL, a URI); None: read through the
    driver (no such reader here, an in-memory or temporary database)."""
    if not sqlite_reader.available():
        return None
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            files = {name: file for _seq, name, file in cursor.execute("PRAGMA database_list")}
        finally:
            cursor.close()
    finally:
        connection.close()
    return files.get("main") or None


class Held:
    """A thread's connection for direct reads, closed once: when asked, or when the thread
    ends and its locals go."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.close = weakref.finalize(self, connection.close)


def session() -> Session:
    """The session of the current request (or app context)."""
    return current_app.extensions[EXTENSION]()


def table_of(model: type[Any]) -> Table:
    """A model's table, for statements built once on it (the ORM types it as any FROM)."""
    return cast(Table, model.__table__)


def engine() -> Engine:
    return current_app.extensions[EXTENSION + ".engine"]


@contextmanager
def transaction() -> Iterator[Session]:
    """Commit on success, roll back on any error."""
    s = session()
    try:
        yield s
        s.commit()
    except BaseException:
        s.rollback()
        raise
