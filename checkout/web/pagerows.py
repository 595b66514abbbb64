"""Pages' rows kept in each process on PostgreSQL, for the status poll, the QR image and a
page viewed again (front.py): a page polled again and again is read from the database once,
until it changes.

On PostgreSQL each read is a round trip to a server sharing the machine, about as long as
the rest of the poll. A kept row is forgotten when any process commits a change to its page
(page_notices.py announces it; a thread of this process listens, `Listener`), and the
process that commits forgets its own at once. What makes a kept row safe to serve:

- Only while the listener is connected and listening (`live`). Before it is, after its
  connection is lost and until it listens again, every request reads the database and
  nothing is kept; on each connect, what was kept before is forgotten (notices may have
  been missed meanwhile).
- A row read while a notice for its page arrives is not kept (`reading`: the read may have
  seen the page before the change).
- A notice that has reached this process's socket is heard before a kept row is served
  (`catch_up`). A request that follows a change in another process (a redirect after a
  customer's step, a page viewed after its poll said it changed) finds the change once its
  notice has arrived. PostgreSQL sends it as the COMMIT ends, and a customer's step still
  renders its page ahead and commits that before its redirect leaves, so in practice the
  notice is first; it is an ordering in practice, not a guarantee: a process the notice has
  not reached yet answers with the state before, for the milliseconds until it does.
- No row is served older than `MAX_AGE` seconds, for a change no notice names (a page or a
  merchant changed by hand in SQL: only the site's own connections announce changes).

On SQLite a read costs no round trip, but under load it costs the request its turn: the
interpreter's lock is let go while SQLite works, and won back only after the other threads'
turns, which made a page viewed again a fifth slower than the bare app. There the process
keeps rows the same way, with the change log in the listener's place (pagelog.py): a kept
row is served only once the process has read every change committed before the request,
so a change is never seen late.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from flask import Flask
from sqlalchemy import Engine

from .. import db, page_notices
from .kept import Kept
from .pagelog import ChangeLog

log = logging.getLogger(__name__)

EXTENSION = "checkout.pagerows"
# What is kept of a page: its model with its merchant's language (the poll, the QR), its
# state (a view of a page this process has rendered in that state already), and the row a
# terminal link clicked again reads (link_front.py: the page and the merchants' version).
MODEL, STATE, LINK = "model", "state", "link"
KINDS = (MODEL, STATE, LINK)
# A row is its model (one to two KB) and its merchant's language: a few MB per process.
SIZE = 8192
MAX_AGE = 30.0
# How long a request waits for the listener to hear a notice already at its socket; past
# it the request reads the database instead of what is kept.
CATCH_UP_SECONDS = 0.05
# The listener sends itself a notice this often, and waits this long for it to come back:
# a connection cut without a word, or one that cannot hear, is found out, and the kept rows
# forgotten. Its payload starts with a character no page id holds.
HEARTBEAT_SECONDS = 10.0
ECHO_SECONDS = 5.0
ECHO = "~"
RECONNECT_SECONDS = (0.1, 5.0)
# A listener whose server stops answering without a word (a network cut) must not wait on
# it for minutes (libpq's names; the site's URL may set its own).
LISTENER_CONNECTION = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5,
                       "keepalives_interval": 2, "keepalives_count": 2,
                       "tcp_user_timeout": 10000}


class Feed(Protocol):
    """What tells a process of changes: PostgreSQL's notices (`Listener`), SQLite's change
    log (`ChangeLog`)."""

    pid: int
    live: bool

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def catch_up(self) -> bool: ...


class PageRows:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.feed: Callable[[Engine, Callable[[frozenset[str]], None]], Feed] = (
            ChangeLog if engine.dialect.name == "sqlite" else Listener)
        self.rows: Kept[tuple[str, str], tuple[float, Any]] = Kept(SIZE)
        self.tickets: dict[tuple[str, str], object] = {}  # the reads under way
        self.forgotten = 0  # how many times anything was forgotten
        self.lock = threading.Lock()
        self.listener: Feed | None = None
        page_notices.add_forgetter(engine, self.forget)

    # ------------------------------------------------------------ reading

    def read(self, page_id: str, read_row: Callable[[], Any], what: str = MODEL) -> Any:
        """The page's row (`what` of it: `MODEL` or `STATE`): kept, or read by `read_row`
        (and kept if it may be)."""
        key = (page_id, what)
        found = self.kept(key)
        if found is not None:
            return found
        with self.reading(key) as keep:
            row = read_row()
            if row is not None:
                keep(row)
            return row

    def kept(self, key: tuple[str, str]) -> Any:
        """What is kept for (page id, what), if it may be served; None if a read must
        answer (around it, `reading`)."""
        listener = self.listening()
        if listener is None or not listener.live or not listener.catch_up():
            return None
        kept = self.rows.get(key)
        if kept is not None and time.monotonic() - kept[0] < MAX_AGE:
            return kept[1]
        return None

    @contextmanager
    def reading(self, key: tuple[str, str]) -> Iterator[Callable[[Any], None]]:
        """Around a read whose row may be kept: what it yields keeps a row, unless a notice
        for the page came while the read was under way."""
        ticket = object()
        with self.lock:
            self.tickets[key] = ticket
        try:
            yield lambda row: self.keep(key, ticket, row)
        finally:
            with self.lock:
                if self.tickets.get(key) is ticket:
                    del self.tickets[key]

    def generation(self) -> int | None:
        """For a read whose page is known only once it is read (a link's): what it passes
        to `keep_since`; None while nothing may be kept (no listener listening)."""
        listener = self.listening()
        if listener is None or not listener.live:
            return None
        return self.forgotten

    def keep_since(self, key: tuple[str, str], generation: int | None, row: Any) -> None:
        """Keep a row read after `generation()` answered, unless anything at all was
        forgotten since: a notice heard while the read was under way may have named its
        page, and no ticket for it could be taken before the read."""
        with self.lock:
            listener = self.listener
            if (generation is not None and self.forgotten == generation
                    and listener is not None and listener.live):
                self.rows.put(key, (time.monotonic(), row))

    def keep(self, key: tuple[str, str], ticket: object, row: Any) -> None:
        with self.lock:
            listener = self.listener
            if self.tickets.get(key) is ticket and listener is not None and listener.live:
                self.rows.put(key, (time.monotonic(), row))

    # ------------------------------------------------------------ forgetting

    def forget(self, page_ids: frozenset[str]) -> None:
        with self.lock:
            self.forgotten += 1
            if page_notices.EVERY in page_ids:
                self.rows.clear()
                self.tickets.clear()
                return
            for page_id in page_ids:
                for what in KINDS:
                    self.rows.drop((page_id, what))
                    self.tickets.pop((page_id, what), None)

    # ------------------------------------------------------------ the listener

    def listening(self) -> Feed | None:
        """This process's listener, started by its first read (a forked worker starts its
        own: threads do not cross a fork)."""
        listener = self.listener
        if listener is not None and listener.pid == os.getpid():
            return listener
        with self.lock:
            if self.listener is None or self.listener.pid != os.getpid():
                self.rows.clear()
                self.tickets.clear()
                self.listener = self.feed(self.engine, self.forget)
                self.listener.start()
            return self.listener

    def stop(self) -> None:
        with self.lock:
            listener, self.listener = self.listener, None
        if listener is not None and listener.pid == os.getpid():
            listener.stop()


class Listener:
    """A thread that listens for page notices on a connection of its own."""

    def __init__(self, engine: Engine, forget: Callable[[frozenset[str]], None]) -> None:
        self.engine = engine
        self.forget = forget
        self.pid = os.getpid()
        self.live = False
        self.socket: int | None = None
        self.backend_pid: int | None = None
        self.connections = 0  # how many times it has heard its own notice and listened
        self.attempts = 0  # how many times it has connected
        self.echoes = 0
        self.busy = False
        self.heard = 0
        self.hearing = threading.Condition()
        self.stopping = threading.Event()
        self.wake_read, self.wake_write = os.pipe()
        self.thread = threading.Thread(target=self.run, name="page-notices", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        os.write(self.wake_write, b"x")
        self.thread.join(timeout=10)
        if not self.thread.is_alive():  # else it may still select on them: left open
            os.close(self.wake_read)
            os.close(self.wake_write)

    def run(self) -> None:
        pause = RECONNECT_SECONDS[0]
        while not self.stopping.is_set():
            try:
                self.listen()
                pause = RECONNECT_SECONDS[0]
            except Exception:
                log.warning("page notices: the listening connection was lost; reconnecting",
                            exc_info=True)
            self.lost()
            if self.stopping.wait(pause):
                break
            pause = min(pause * 2, RECONNECT_SECONDS[1])

    def listen(self) -> None:
        self.attempts += 1
        connection = self.connect()
        try:
            channel = page_notices.channel(self.engine)
            connection.execute(f"LISTEN {channel}")
            self.socket = connection.fileno()
            self.backend_pid = connection.info.backend_pid
            self.wait_for_notices(connection, channel)
        finally:
            self.live = False
            self.socket = None
            connection.close()

    def connect(self) -> Any:
        """A connection of the site's database outside its pool, in autocommit: LISTEN
        takes effect at once, and no transaction stays open."""
        dialect = self.engine.dialect
        args, kwargs = dialect.create_connect_args(self.engine.url)
        connection = dialect.connect(*args, **{**LISTENER_CONNECTION, **kwargs})
        connection.autocommit = True
        return connection

    def wait_for_notices(self, connection: Any, channel: str) -> None:
        """Hear notices until stopped. The listener trusts its connection (`live`) only once
        a notice of its own has come back through it, and sends one again every
        `HEARTBEAT_SECONDS`: a connection that has gone, or that cannot hear (a pooler
        between site and database that hands LISTEN and NOTIFY to different server
        sessions), fails here within `ECHO_SECONDS`, and the process keeps nothing."""
        fileno = connection.fileno()
        expecting: str | None = None
        sent = 0.0
        while not self.stopping.is_set():
            due = sent + (HEARTBEAT_SECONDS if expecting is None else ECHO_SECONDS)
            # Marked before the connection is used or read: from a notice's arrival until it
            # is heard, a request sees it waiting in the socket or this mark (catch_up).
            self.busy = True
            if time.monotonic() >= due:
                if expecting is None:
                    # Notices that arrive while a statement runs are read with its answer
                    # and wait in the connection, not in the socket: read them at once, below.
                    expecting, sent = self.send_echo(connection, channel), time.monotonic()
                # else what has come is read below before the echo is given up for lost
            else:
                self.busy = False
                ready, _, _ = select.select([fileno, self.wake_read], [], [],
                                            max(0.0, due - time.monotonic()))
                if self.wake_read in ready:
                    return
                if fileno not in ready:
                    continue
                self.busy = True
            try:
                payloads = [notice.payload for notice in connection.notifies(timeout=0)]
                if expecting in payloads:
                    expecting = None
                    self.go_live()
                self.hear([payload for payload in payloads if not payload.startswith(ECHO)])
            finally:
                self.busy = False
            if expecting is not None and time.monotonic() >= sent + ECHO_SECONDS:
                raise ConnectionError("the listener's own notice did not come back")

    def send_echo(self, connection: Any, channel: str) -> str:
        self.echoes += 1
        payload = f"{ECHO}{os.getpid()}.{self.echoes}"
        connection.execute("SELECT pg_notify(%s, %s)", (self.echo_channel(channel), payload))
        return payload

    def echo_channel(self, channel: str) -> str:
        return channel

    def go_live(self) -> None:
        if self.live:
            return
        # Whatever changed before the listener could hear was not heard: start from nothing.
        self.forget(frozenset({page_notices.EVERY}))
        self.connections += 1
        self.live = True

    def hear(self, payloads: list[str]) -> None:
        forgotten = frozenset(page_id for payload in payloads for page_id in payload.split())
        if forgotten:
            self.forget(forgotten)
        with self.hearing:
            self.heard += 1
            self.hearing.notify_all()

    def lost(self) -> None:
        self.live = False
        self.forget(frozenset({page_notices.EVERY}))
        with self.hearing:
            self.heard += 1
            self.hearing.notify_all()

    def catch_up(self) -> bool:
        """Hear what has reached this process before a kept row is served: a notice in the
        socket, or one the listener is reading. False if it is not heard in time."""
        fileno = self.socket
        if fileno is None:
            return False
        with self.hearing:
            before = self.heard
            if not (self.waiting(fileno) or self.busy):
                return True
            return self.hearing.wait_for(lambda: self.heard != before,
                                         timeout=CATCH_UP_SECONDS)

    @staticmethod
    def waiting(fileno: int) -> bool:
        try:
            polling = select.poll()
            polling.register(fileno, select.POLLIN | select.POLLPRI)
            return bool(polling.poll(0))
        except (OSError, ValueError):
            return False


def rows(app: Flask) -> PageRows | None:
    """The app's kept rows; None where nothing is kept (a database in memory)."""
    found: PageRows | None = app.extensions.get(EXTENSION)
    return found


def install(app: Flask) -> None:
    engine: Engine = app.extensions[db.EXTENSION + ".engine"]
    if engine.dialect.name == "postgresql" or (
            engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")):
        app.extensions[EXTENSION] = PageRows(engine)


def stop(app: Flask) -> None:
    """Stop the app's listener (tests: each app is a process of its own)."""
    found = rows(app)
    if found is not None:
        found.stop()
