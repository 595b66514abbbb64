"""PostgreSQL connections that die in the pool cost no request its answer, and the pool does
not ping before each request (db.py): a connection the server closed is replaced as it is
taken out; a read in front of Flask that meets a connection dying unnoticed reads again on a
fresh one; a Flask request that meets one leaves the pool fit for the next request."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request_started
from kit.links import page_of
from kit.live import LiveServer, wait_until
from kit.site import flask_requests
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

from checkout import db, page_notices
from checkout.models import Merchant
from checkout.web import pagerows

DATABASE_URL = os.environ.get("CHECKOUT_DATABASE_URL", "")
pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not DATABASE_URL.startswith("postgresql"),
                       reason="server-side disconnects need PostgreSQL (CHECKOUT_DATABASE_URL)"),
]
LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "dropped-1", "amount": "0.00123"}


class Backends:
    """The server processes behind the app's connections, and a way to end them as
    pg_terminate_backend does for an operator, a failover or a restart."""

    def __init__(self, app: Flask, admin: Engine) -> None:
        self.admin = admin
        self.pids: set[int] = set()
        self.kill_next_checkout = False
        # Runs after the pool's own checkout check (db.py registered it first): a connection
        # ended here dies after that check, as one cut off by the network would.
        event.listen(app.extensions[db.EXTENSION + ".engine"], "checkout", self.checked_out)

    def checked_out(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        pid = int(dbapi_connection.info.backend_pid)
        self.pids.add(pid)
        if self.kill_next_checkout:
            self.kill_next_checkout = False
            self.end({pid})

    def end(self, pids: set[int]) -> None:
        with self.admin.connect() as conn:
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        def gone() -> bool:
            with self.admin.connect() as conn:
                alive = conn.execute(text("SELECT count(*) FROM pg_stat_activity "
                                          "WHERE pid = ANY(:pids)"), {"pids": list(pids)})
                return alive.scalar() == 0

        wait_until(gone, what=f"backends {pids} ended")

    def end_all(self) -> None:
        assert self.pids
        self.end(self.pids)


@pytest.fixture
def admin(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url, poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def backends(app: Flask, admin: Engine) -> Backends:
    return Backends(app, admin)


def forget_kept_rows(app: Flask) -> None:
    rows = pagerows.rows(app)
    if rows is not None:
        rows.forget(frozenset({page_notices.EVERY}))


@pytest.fixture
def page(app: Flask, backends: Backends, merchant: Merchant, live_server: LiveServer) -> str:
    client = app.test_client()
    path = page_of(client, LINK)
    for asked in (path, path, f"{path}/status", f"{path}/qr.svg"):  # rendered, then kept
        assert client.get(asked).status_code == 200
    return path


def test_no_round_trip_is_spent_on_pinging_before_a_request(app: Flask, page: str) -> None:
    engine = app.extensions[db.EXTENSION + ".engine"]
    pings: list[int] = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(real(dbapi_connection))

    engine.dialect.do_ping = counted
    try:
        client = app.test_client()
        for asked in (page, f"{page}/status", f"{page}/qr.svg", f"{page}?lang=de", "/healthz"):
            assert client.get(asked).status_code == 200
    finally:
        del engine.dialect.do_ping
    assert pings == []


def test_after_the_apps_backends_are_ended_every_route_answers(
        app: Flask, page: str, backends: Backends) -> None:
    client = app.test_client()
    backends.end_all()
    # A route only Flask answers first: nothing before it has met a dead connection (and
    # had the pool replace its older ones).
    assert client.get("/healthz").status_code == 200
    assert client.get(f"{page}?lang=de").status_code == 200  # a first view: Flask renders it
    backends.end_all()
    handled = flask_requests(app)
    for asked in (f"{page}/status", page, f"{page}/qr.svg", f"{page}/qr.png"):
        assert client.get(asked).status_code == 200, asked
    assert handled == []  # each answered in front of Flask, not passed on after a failure


@pytest.mark.parametrize("route", ["{page}/status", "{page}", "{page}/qr.svg"])
def test_a_read_in_front_of_flask_that_meets_a_dead_connection_reads_again(
        app: Flask, page: str, backends: Backends, route: str) -> None:
    client = app.test_client()
    handled = flask_requests(app)
    forget_kept_rows(app)  # a page this process has not read yet: the front reads it
    backends.kill_next_checkout = True
    assert client.get(route.format(page=page)).status_code == 200
    assert not backends.kill_next_checkout  # it did meet one
    assert handled == []


def test_a_flask_request_that_meets_a_dead_connection_leaves_the_pool_fit(
        app: Flask, page: str, backends: Backends) -> None:
    client = app.test_client()
    app.config["PROPAGATE_EXCEPTIONS"] = False  # the 500 a server sends, not the exception

    def arm(_sender: Flask, **_extra: Any) -> None:
        backends.kill_next_checkout = True  # once Flask runs: the front's read is done

    request_started.connect(arm, app)
    try:
        met = client.get(f"{page}?lang=fr")  # a first view: Flask renders it
    finally:
        request_started.disconnect(arm, app)
    assert not backends.kill_next_checkout  # Flask's session met it
    assert met.status_code == 500  # its statement failed: nothing to read again safely
    handled = flask_requests(app)
    for asked in (f"{page}?lang=fr", "/healthz", f"{page}/status", page, f"{page}/qr.svg"):
        assert client.get(asked).status_code == 200, asked
    assert handled == [page, "/healthz"]
