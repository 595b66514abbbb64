"""Notices of changed pages (on SQLite, a change log), for the processes that keep pages'
rows (web/pagerows.py): whichever way a page or a merchant is changed, every process hears of it
once the change is committed, and never of a change rolled back.

Every statement a connection sends is looked at as it is sent (the ORM's flush, an
`update(Page)`, a script's DELETE, raw SQL alike): one that updates or deletes pages notes
their ids on its connection (all pages, `EVERY`, where its WHERE does not name them one by
one), one that changes a merchant or its logo notes `EVERY` (a page's row holds its
merchant's language). As that transaction commits, one `NOTIFY` in it names what was noted;
PostgreSQL delivers it to every listener after the commit, in commit order, and drops it
with a rollback. Inserted pages need no notice: no process keeps a row it never read;
nor do later changes to them in the transaction that inserts them (`inserted`).

SQLite has no server to send notices through: there the transaction writes what it
changed into the `page_changes` table instead (`PageChange`), in the same commit, and the
processes that keep rows read that table whenever the database has a new commit
(web/pagelog.py). A rolled-back transaction leaves no row, as no notice.

The committing process also forgets its own kept rows (`add_forgetter`) as soon as its
COMMIT is done (not before: a thread of its own could read the page in between and keep the
old row), so that its own next request never waits for the notice to come back to it.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.sql import operators
from sqlalchemy.sql.dml import Delete, Insert, Update
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

CHANNEL = "checkout_pages"
CHANNEL_LIMIT = 63  # PostgreSQL's identifiers; LISTEN would cut a longer one short
EVERY = "*"
NOTES = "checkout.page_notes"
BORN = "checkout.pages_born"  # pages inserted by the transaction: no process knows them yet
MAKING = "checkout_pages_making"  # on a statement's context: the pages its INSERT names
PAGES = "pages"
# PostgreSQL refuses a payload of 8000 bytes or more; ids are short, and a transaction that
# changed more pages than fit in one notice tells every process to forget everything.
PAYLOAD_LIMIT = 7000
# Statements that may change what a kept row holds: a page, its merchant (name, look,
# language) or the merchant's logo (a first logo is an INSERT), and the merchants' version
# that every change to a merchant raises. In any spelling, the ORM's or a script's.
WATCHED = r"(?P<table>pages|merchants|merchant_logos|merchants_version)\b"
WRITE = re.compile(r"\b(update(?:\s+or\s+\w+)?|delete\s+from|insert(?:\s+or\s+\w+)?\s+into"
                   r"|replace\s+into|merge\s+into)\s+(only\s+)?(\"?\w+\"?\.)?\"?" + WATCHED,
                   re.IGNORECASE)
TRUNCATE = re.compile(r"^\s*truncate\b.*\b" + WATCHED, re.IGNORECASE | re.DOTALL)
UPSERT = re.compile(r"\bon\s+conflict\b.*\bdo\s+update\b", re.IGNORECASE | re.DOTALL)
# SQLite's spellings of an INSERT that may replace an existing row.
REPLACING = re.compile(r"^(replace|(insert|update)\s+or\s+replace)\b", re.IGNORECASE)
CONFLICT = re.compile(r"\bon\s+conflict\b|^insert\s+or\b", re.IGNORECASE)
# SQLite: the change log's rows are kept this long, far past any kept row's age
# (pagerows.MAX_AGE): a reader that missed a pruned row has no row left from before it.
LOG_KEPT_SECONDS = 600
PRUNE_EVERY = 64  # a thread's commits that log changes, between two prunings
LOG_CHANGE = "INSERT INTO page_changes (pages, at) VALUES (?, ?)"
# Pruned by age (a reader that missed a pruned row notices the gap in the numbers and
# forgets everything: web/pagelog.py).
PRUNE_LOG = "DELETE FROM page_changes WHERE at < ?"

Forgetter = Callable[[frozenset[str]], None]
# Held weakly: a process's kept rows (and their listener) go with their app, not with the
# engine's lifetime.
_forgetters: weakref.WeakKeyDictionary[Engine, list[weakref.WeakMethod[Forgetter]]] = (
    weakref.WeakKeyDictionary())
# What the commit about to be sent on this thread forgets once it is done.
_committing = threading.local()
_channels: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def channel(engine: Engine) -> str:
    """The channel of this site's notices, for its commits to send on and its listeners to
    hear: worked out once per engine (`channel_of`)."""
    found = _channels.get(engine)
    if found is None:
        found = _channels[engine] = channel_of(engine)
    return found


def channel_of(engine: Engine) -> str:
    """Channels are the database's, not a schema's: a site kept in a schema of its own (a
    `search_path` in its URL's options, as the tests' processes are) has its own channel,
    and hears no other site's changes."""
    options = str(engine.url.query.get("options", ""))
    found = re.search(r"search_path\s*=\s*([\w$]+)", options)
    if found is None:
        return CHANNEL
    named = f"{CHANNEL}_{found[1].lower()}"
    if len(named) <= CHANNEL_LIMIT:
        return named
    return f"{CHANNEL}_{hashlib.sha256(found[1].encode()).hexdigest()[:32]}"


def install(engine: Engine) -> None:
    """Note and announce page changes on this engine's connections: by notices on
    PostgreSQL, in the change log on SQLite."""
    if engine.dialect.name not in ("postgresql", "sqlite"):
        return
    if engine.dialect.name == "postgresql":
        channel(engine)
    _forgetters[engine] = []
    event.listen(engine, "before_cursor_execute", _note)
    event.listen(engine, "after_cursor_execute", _born)
    event.listen(engine, "commit", _announce)
    event.listen(engine, "rollback", _drop)
    commit = engine.dialect.do_commit
    held = weakref.ref(engine)

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            forgotten, _committing.forgotten = getattr(_committing, "forgotten", None), None
        committed = held()
        if forgotten and committed is not None:
            _forget(committed, forgotten)

    # The commit event comes before the COMMIT is sent; this runs once it is done.
    engine.dialect.do_commit = do_commit  # type: ignore[method-assign]


def add_forgetter(engine: Engine, forget: Forgetter) -> None:
    """Call `forget` (a bound method, held weakly) in this process with the ids (or
    `EVERY`) each commit on `engine` changed."""
    _forgetters.setdefault(engine, []).append(weakref.WeakMethod(forget))


def _forget(engine: Engine, forgotten: frozenset[str]) -> None:
    for held in _forgetters.get(engine, ()):
        forget = held()
        if forget is not None:
            forget(forgotten)


def _note(connection: Connection, _cursor: Any, statement: str, _parameters: Any,
          context: Any, _executemany: bool) -> None:
    found = changed(statement, context)
    if found:
        connection.info.setdefault(NOTES, set()).update(found)
    elif context is not None and (made := inserted(statement, context)):
        setattr(context, MAKING, made)  # counted as made once it has run (`_born`)


def _born(connection: Connection, cursor: Any, _statement: str, _parameters: Any,
          context: Any, _executemany: bool) -> None:
    """After a statement has run: the pages it made, if it made every one it names."""
    made: set[str] | None = getattr(context, MAKING, None)
    if made and getattr(cursor, "rowcount", -1) == len(context.compiled_parameters):
        # An id changed earlier in the transaction (a page deleted, then made again) is
        # announced still.
        connection.info.setdefault(BORN, set()).update(made - connection.info.get(NOTES, set()))


def inserted(statement: str, context: Any) -> set[str]:
    """The ids of the pages a plain INSERT makes (no conflict clause: it made each row or
    failed). Changed in the same transaction, they need no notice: until it commits no other
    transaction sees them, so no process keeps them (a first click and a new invoice insert
    their page, then write its model)."""
    found = WRITE.search(statement)
    if (found is None or found["table"].lower() != PAGES
            or not found[1].lower().startswith("insert") or CONFLICT.search(found[1])
            or CONFLICT.search(statement)):
        return set()
    dml = getattr(getattr(context, "compiled", None), "statement", None)
    if not isinstance(dml, Insert) or getattr(dml.table, "name", None) != PAGES:
        return set()
    made = [params.get("id") for params in context.compiled_parameters]
    return set(made) if all(isinstance(page_id, str) for page_id in made) else set()


def changed(statement: str, context: Any) -> set[str]:
    """The page ids (or `EVERY`) a statement may change; empty for one that changes none."""
    if TRUNCATE.search(statement):
        return {EVERY}
    found = WRITE.search(statement)
    if found is None:
        return set()
    if found["table"].lower() != PAGES:
        return {EVERY}  # a merchant, its logo or its version: every page may show it
    verb = found[1]
    if REPLACING.match(verb):
        return {EVERY}  # SQLite's REPLACE deletes the row it meets, then inserts
    if verb.lower().startswith("insert"):
        # A new page: no process keeps it yet, unless the INSERT updates one that exists.
        return {EVERY} if UPSERT.search(statement) else set()
    compiled = getattr(context, "compiled", None)
    dml = getattr(compiled, "statement", None)
    if not isinstance(dml, Update | Delete) or getattr(dml.table, "name", None) != PAGES:
        return {EVERY}  # raw SQL, or a statement of a kind not read here: forget everything
    ids = _named_ids(dml.whereclause, compiled, context)
    return {EVERY} if ids is None else ids


def _named_ids(where: Any, compiled: Any, context: Any) -> set[str] | None:
    """The ids a WHERE holds to by `pages.id = :value` (alone or as one of ANDed terms), in
    every set of parameters sent; None where it holds to none."""
    terms = (list(where.clauses) if isinstance(where, BooleanClauseList)
             and where.operator is operators.and_ else [where])
    for term in terms:
        if not (isinstance(term, BinaryExpression) and term.operator is operators.eq):
            continue
        column, value = ((term.left, term.right) if isinstance(term.right, BindParameter)
                         else (term.right, term.left))
        if (getattr(column, "name", None) == "id"
                and getattr(getattr(column, "table", None), "name", None) == PAGES
                and isinstance(value, BindParameter) and not value.expanding):
            name = compiled.bind_names.get(value, value.key)
            sent = [params.get(name) for params in context.compiled_parameters]
            if all(isinstance(page_id, str) for page_id in sent):
                return set(sent)
    return None


def payloads(notes: Iterable[str]) -> list[str]:
    """The notices that name `notes`: ids joined by spaces, a notice within PostgreSQL's
    limit; `EVERY` alone where it is noted or where the ids would need several."""
    names = sorted(set(notes))
    joined = " ".join(names)
    if EVERY in names or len(joined.encode()) > PAYLOAD_LIMIT:
        return [EVERY]
    return [joined] if joined else []


def _announce(connection: Connection) -> None:
    notes: set[str] | None = connection.info.pop(NOTES, None)
    born: set[str] = connection.info.pop(BORN, set())
    if notes and EVERY not in notes:
        notes -= born
    if not notes:
        return
    sent = payloads(notes)
    # Sent through the driver: an SQLAlchemy execute inside its own commit event would be
    # looked at again.
    driver = connection.connection.driver_connection
    if connection.dialect.name == "sqlite":
        log_changes(driver, sent)
    else:
        to = channel(connection.engine)
        for payload in sent:
            driver.execute("SELECT pg_notify(%s, %s)", (to, payload))  # type: ignore[union-attr]
    forgotten = frozenset(EVERY if payload == EVERY else page_id
                          for payload in sent for page_id in payload.split())
    _committing.forgotten = forgotten  # forgotten here once the COMMIT is done (do_commit)


_logged = threading.local()


def log_changes(driver: Any, sent: list[str]) -> None:
    """SQLite: the transaction's changes, in its own commit; now and then the rows older
    than `LOG_KEPT_SECONDS` pruned."""
    now = int(time.time())
    try:
        driver.executemany(LOG_CHANGE, [(payload, now) for payload in sent])
        count = getattr(_logged, "count", 0) + 1
        _logged.count = count
        if count % PRUNE_EVERY == 0:
            driver.execute(PRUNE_LOG, (now - LOG_KEPT_SECONDS,))
    except sqlite3.OperationalError as exc:
        # A database whose schema predates the log (a migration writing merchants before
        # the table is made): no process of it keeps rows yet.
        if "no such table: page_changes" not in str(exc):
            raise


def _drop(connection: Connection) -> None:
    # A connection that was lost has no notes left to drop, and asking it for them would
    # try to reconnect in the middle of its rollback.
    if not connection.invalidated:
        connection.info.pop(NOTES, None)
        connection.info.pop(BORN, None)
