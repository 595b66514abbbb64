"""SQLite's page notices: each process that keeps pages' rows (pagerows.py) reads the change
log (`page_changes`, written by page_notices.py in each committing transaction) whenever the
database has had a commit since it last looked.

Whether there was a commit is read from SQLite's own mark of it: the wal-index header at the
start of the database's `-shm` file, which every commit by any connection of any process
rewrites (its change counter and last frame; the format is SQLite's documented WAL format).
The file is mapped into the process, so looking costs a read of memory: no statement, no
system call, no wait for the interpreter's lock while SQLite works. A page polled or viewed
again while nothing was committed is answered from what the process keeps; after a commit,
one read of the log's new rows tells it which pages to forget, and the request goes on.

Unlike PostgreSQL's notices this is never late: a request looks before it serves a kept
row, so a change committed before the request began is always seen.

The log's reader holds a connection of its own open: while any connection has the database
open, SQLite keeps its `-shm` file in place (the last one to close may remove it), so the
mapped header is always the one every process writes.
"""

from __future__ import annotations

import logging
import mmap
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from itertools import pairwise
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from .. import db, page_notices

log = logging.getLogger(__name__)

# One copy of the wal-index header; SQLite keeps two, one after the other.
HEADER = 48
IS_INIT = 12  # the header's byte that says it holds a valid header
READ_LOG = "SELECT seq, pages FROM page_changes WHERE seq > ? ORDER BY seq"
LAST_SEQ = "SELECT COALESCE(MAX(seq), 0) FROM page_changes"
RETRY_SECONDS = 1.0  # between attempts to follow a log that could not be read


class CommitMark:
    """SQLite's mark of the last commit, read from the mapped wal-index header.

    POSIX file locks belong to the process and the file: closing any descriptor of the
    `-shm` file would drop every lock SQLite holds on it in this process (its own "in use"
    lock, and the WAL's read and write locks of every thread). So the file is opened and
    mapped once per process and file (`of`), and neither is ever closed."""

    def __init__(self, descriptor: int) -> None:
        self.descriptor = descriptor
        self.map = mmap.mmap(descriptor, 2 * HEADER, access=mmap.ACCESS_READ)

    @classmethod
    def of(cls, database: str) -> CommitMark:
        """The mark of the `-shm` file now in place (call it while a connection of this
        process holds the database open: then no other process may replace the file)."""
        # SQLite follows a symbolic link to the database, and keeps its -shm beside the file.
        path = os.path.realpath(database) + "-shm"
        with _marks_lock:
            found = _marks.get(path)
            if found is not None and _same_file(found.descriptor, path):
                return found
            # Kept open for good, also after a fork and when the file was replaced meanwhile
            # (a new one is mapped beside it, the old one kept): closing it would drop the
            # locks above.
            if found is not None:
                _replaced.append(found)
            descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            found = _marks[path] = cls(descriptor)
            return found

    def now(self) -> bytes | None:
        """The header as it stands; None while a commit is being marked (SQLite writes the
        second copy, then the first: copies that differ are a header half written) or
        before the header is made."""
        both = self.map[:2 * HEADER]
        first = both[:HEADER]
        if first != both[HEADER:] or not first[IS_INIT]:
            return None
        return first


_marks: dict[str, CommitMark] = {}
_replaced: list[CommitMark] = []  # held, never closed (see CommitMark)
_marks_lock = threading.Lock()


def _same_file(descriptor: int, path: str) -> bool:
    try:
        held, there = os.fstat(descriptor), os.stat(path)
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)


class ChangeLog:
    """The change log's reader of one process, in a listener's place (pagerows.Listener):
    `live` once it reads the log, and `catch_up` before any kept row is served."""

    def __init__(self, engine: Engine, forget: Callable[[frozenset[str]], None]) -> None:
        self.engine = engine
        self.forget = forget
        self.pid = os.getpid()
        self.live = False
        self.lock = threading.Lock()
        self.connection: Any = None
        self.mark: CommitMark | None = None
        self.seen: bytes | None = None
        self.last = 0  # the last change the process has forgotten what it named
        self.reads = 0  # how many times the log was read
        self.retry_at = 0.0

    def start(self) -> None:
        try:
            self.open()
        except (OSError, ValueError, sqlite3.Error, DBAPIError):
            log.warning("page changes: the change log cannot be followed; pages' rows are "
                        "not kept", exc_info=True)
            self.close()
            return
        self.live = True

    def open(self) -> None:
        database = self.engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise ValueError("no database file to follow")
        self.connection = db.detached_connection(self.engine)  # held open for good
        mode = self.connection.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ValueError(f"journal mode {mode}: no commit mark to read")
        # A read opens the WAL index (the -shm file); this connection holds it open from now.
        self.connection.execute(LAST_SEQ).fetchone()
        self.mark = CommitMark.of(database)
        # The mark first: a commit after it is looked for again.
        self.seen = self.mark.now()
        self.last = int(self.connection.execute(LAST_SEQ).fetchone()[0])

    def catch_up(self) -> bool:
        """Forget what was changed since the last look, if anything was committed since;
        False if the log cannot be read (the request reads the database instead)."""
        mark = self.mark
        if mark is not None:
            try:
                now = mark.now()
            except ValueError:  # a mapping that cannot be read: read the database
                now = None
            if now is not None and now == self.seen:
                return True
        with self.lock:
            if not self.live:
                return False
            try:
                if self.connection is None:
                    return self.reopen()
                assert self.mark is not None
                now = self.mark.now()  # read before the log: a commit after it is looked for
                if now is not None and now == self.seen:
                    return True
                changes = self.connection.execute(READ_LOG, (self.last,)).fetchall()
            except (OSError, ValueError, sqlite3.Error, DBAPIError):
                log.warning("page changes: the change log could not be read; pages' rows are "
                            "read from the database until it can", exc_info=True)
                self.close()
                self.retry_at = time.monotonic() + RETRY_SECONDS
                self.forget(frozenset({page_notices.EVERY}))
                return False
            self.reads += 1
            if changes:
                # Numbers follow one another (one writer; a rollback gives its number back):
                # a gap is rows pruned before this process read them.
                numbers = [self.last, *(int(seq) for seq, _pages in changes)]
                missed = any(b != a + 1 for a, b in pairwise(numbers))
                self.last = numbers[-1]
                self.forget(frozenset({page_notices.EVERY}) if missed else frozenset(
                    page_id for _seq, pages in changes for page_id in str(pages).split()))
            self.seen = now
            return True

    def reopen(self) -> bool:
        """After the log could not be read: follow it again from now on, nothing kept from
        before (changes may have been missed meanwhile)."""
        if time.monotonic() < self.retry_at:
            return False
        self.open()
        # After the mark and the log's last row are taken: a commit between the two is
        # looked for again, and whatever was kept before is gone.
        self.forget(frozenset({page_notices.EVERY}))
        return True

    def stop(self) -> None:
        with self.lock:
            self.live = False
            self.close()

    def close(self) -> None:
        self.mark = None  # the mapping stays: see CommitMark
        if self.connection is not None:
            self.connection.close()
            self.connection = None
