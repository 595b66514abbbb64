"""A page polled again is read from PostgreSQL once until it changes (web/pagerows.py):
kept rows are never served once a change is committed and heard, after the listener lost
its connection, or while a read raced a change; a change no notice names is seen within
`MAX_AGE`."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit import budgets, kept_rows
from kit.deposits import open_link, send_deposit
from kit.live import wait_until
from sqlalchemy import event, make_url

from checkout import db
from checkout.models import DepositAddress, Merchant
from checkout.web import pagerows, qrimages

DATABASE_URL = os.environ.get("CHECKOUT_DATABASE_URL", "")
pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not DATABASE_URL.startswith("postgresql"),
                       reason="kept rows need PostgreSQL's notices (CHECKOUT_DATABASE_URL)"),
]


PAID_HEADING = '<h1 data-field="heading">Paid</h1>'


@pytest.fixture
def raw(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection outside the site, as an operator's SQL session: it announces nothing."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)
    connection = psycopg.connect(dsn, autocommit=True)
    yield connection
    connection.close()


@pytest.fixture
def page(app: Flask, merchant: Merchant, address: DepositAddress, fresh_rate: None) -> str:
    return open_link(app.test_client())


def polled(app: Flask, page: str) -> tuple[dict[str, Any], int]:
    """The poll's answer, and how many statements it sent."""
    with budgets.spent(app) as spent:
        response = app.test_client().get(page + "/status")
    assert response.status_code == 200
    return response.get_json(), len(spent.queries)


def rows_of(app: Flask) -> pagerows.PageRows:
    found = kept_rows.listening(app)
    assert found is not None
    return found


def deaf(listener: pagerows.Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    """The listener hears nothing from now on, and requests do not wait for it: only the
    committing process's own forgetting can tell it of a change."""
    monkeypatch.setattr(listener, "hear", lambda payloads: None)
    monkeypatch.setattr(listener, "catch_up", lambda: True)


def test_a_page_polled_again_is_read_once(app: Flask, page: str) -> None:
    rows_of(app)
    first, reads = polled(app, page)
    assert reads == 1
    assert polled(app, page) == (first, 0)
    assert app.test_client().get(page + "/qr.svg").status_code == 200
    with budgets.spent(app) as spent:
        assert app.test_client().get(page + "/qr.png").status_code == 200
    assert spent.queries == []  # the QR reads the poll's kept row


def test_a_change_in_this_process_is_polled_at_once(app: Flask, page: str) -> None:
    rows_of(app)
    assert polled(app, page)[0]["phase"] == "waiting"
    send_deposit(app, 1, "confirmed")
    answer, reads = polled(app, page)  # at once: no notice awaited
    assert answer["phase"] == "paid" and reads == 1


def test_a_change_in_another_process_is_polled_once_its_notice_is_heard(
        app: Flask, make_app: Callable[..., Flask], page: str) -> None:
    rows = rows_of(app)
    assert rows.listener is not None
    assert polled(app, page)[0]["phase"] == "waiting"
    forgotten = rows.forgotten
    send_deposit(make_app(), 1, "confirmed")  # another process's worker or callback
    wait_until(lambda: rows.forgotten > forgotten, what="the notice heard")
    answer, reads = polled(app, page)
    assert answer["phase"] == "paid" and reads == 1


def test_a_read_that_raced_a_change_is_not_kept(
        app: Flask, make_app: Callable[..., Flask], page: str) -> None:
    rows = rows_of(app)
    page_id = page.rsplit("/", 1)[1]
    other = make_app()

    def read_then_changed() -> Any:
        with app.extensions[db.EXTENSION + ".engine"].connect() as connection:
            row = connection.execute(qrimages.READ, {"page_id": page_id}).first()
        forgotten = rows.forgotten
        send_deposit(other, 1, "confirmed")  # committed while this read is under way
        wait_until(lambda: rows.forgotten > forgotten, what="the notice heard")
        return row

    assert '"waiting"' in rows.read(page_id, read_then_changed).model_json
    answer, reads = polled(app, page)  # not the raced read's row: the page again
    assert answer["phase"] == "paid" and reads == 1


def test_the_committing_process_forgets_its_rows_without_waiting_for_the_notice(
        app: Flask, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = rows_of(app)
    assert rows.listener is not None
    assert polled(app, page)[0]["phase"] == "waiting"
    deaf(rows.listener, monkeypatch)
    send_deposit(app, 1, "confirmed")
    answer, reads = polled(app, page)
    assert answer["phase"] == "paid" and reads == 1


def test_rows_kept_before_the_listener_lost_its_connection_are_forgotten(
        app: Flask, page: str, raw: psycopg.Connection[Any]) -> None:
    rows = rows_of(app)
    listener = rows.listener
    assert listener is not None and listener.backend_pid is not None
    polled(app, page)
    assert polled(app, page)[1] == 0
    # Changed where no notice is sent, then the listener's connection ends: what it kept
    # may have been changed meanwhile, unheard.
    raw.execute("UPDATE pages SET model_json = replace(model_json, '\"waiting\"', '\"paid\"')"
                " WHERE id = %s", (page.rsplit("/", 1)[1],))
    assert polled(app, page)[0]["phase"] == "waiting"  # kept: nothing announced it
    raw.execute("SELECT pg_terminate_backend(%s)", (listener.backend_pid,))
    wait_until(lambda: rows.listener is not None and rows.listener.live
               and rows.listener.connections > 1, what="the listener listening again")
    answer, reads = polled(app, page)
    assert answer["phase"] == "paid" and reads == 1


def test_no_row_is_served_older_than_its_age(
        app: Flask, page: str, raw: psycopg.Connection[Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    rows_of(app)
    polled(app, page)
    raw.execute("UPDATE pages SET model_json = replace(model_json, '\"waiting\"', '\"paid\"')"
                " WHERE id = %s", (page.rsplit("/", 1)[1],))
    assert polled(app, page)[0]["phase"] == "waiting"
    monkeypatch.setattr(pagerows, "MAX_AGE", 0.0)
    assert polled(app, page)[0]["phase"] == "paid"


def test_a_client_never_sees_a_kept_row_of_another_page(app: Flask, page: str,
                                                        merchant: Merchant) -> None:
    rows_of(app)
    client: FlaskClient = app.test_client()
    assert client.get(page + "/status").status_code == 200
    assert client.get(page[:-1] + ("A" if page[-1] != "A" else "B") + "/status"
                      ).status_code == 404


def test_a_notice_that_reached_the_process_is_heard_before_a_kept_row_is_served(
        app: Flask, make_app: Callable[..., Flask], page: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that follows a change (a redirect after a customer's step) may reach this
    process before its listener has done with the change's notice: it waits for it."""
    rows = rows_of(app)
    listener = rows.listener
    assert listener is not None
    polled(app, page)
    assert polled(app, page)[1] == 0
    monkeypatch.setattr(pagerows, "CATCH_UP_SECONDS", 30.0)
    reading, go = threading.Event(), threading.Event()
    hear = listener.hear

    def slow_hear(payloads: list[str]) -> None:
        reading.set()
        go.wait(30)
        hear(payloads)

    monkeypatch.setattr(listener, "hear", slow_hear)
    send_deposit(make_app(), 1, "confirmed")
    assert reading.wait(30), "the listener read the notice"
    waits = listener.hearing.wait_for

    def released_once_waiting(predicate: Callable[[], bool], timeout: float) -> bool:
        go.set()  # the poll waits for the listener: let it finish hearing
        return waits(predicate, timeout)

    monkeypatch.setattr(listener.hearing, "wait_for", released_once_waiting)
    try:
        answer, reads = polled(app, page)
    finally:
        go.set()
    assert answer["phase"] == "paid" and reads == 1


def test_a_page_viewed_again_is_read_once_until_it_changes(
        app: Flask, make_app: Callable[..., Flask], page: str) -> None:
    rows = rows_of(app)
    client = app.test_client()
    with budgets.spent(app) as read:  # its state read and kept, rendered by Flask
        first = client.get(page).get_data(as_text=True)
    with budgets.spent(app) as kept:
        assert client.get(page).get_data(as_text=True) == first
    assert read.queries and kept.queries == [], (read, kept)
    assert rows.listener is not None
    forgotten = rows.forgotten
    send_deposit(make_app(), 1, "confirmed")
    wait_until(lambda: rows.forgotten > forgotten, what="the notice heard")
    assert PAID_HEADING not in first
    assert PAID_HEADING in client.get(page).get_data(as_text=True)
    assert client.get(page + "/status").get_json()["phase"] == "paid"


def test_a_listener_that_does_not_hear_its_own_notice_keeps_nothing(
        app: Flask, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As behind a pooler that hands LISTEN and NOTIFY to different server sessions."""
    monkeypatch.setattr(pagerows, "ECHO_SECONDS", 0.1)
    monkeypatch.setattr(pagerows, "RECONNECT_SECONDS", (0.01, 0.01))
    monkeypatch.setattr(pagerows.Listener, "echo_channel", lambda self, channel: "nowhere")
    rows = pagerows.rows(app)
    assert rows is not None
    rows.stop()  # the one the link's first click started: a new one, from its start
    listener = rows.listening()
    assert listener is not None
    wait_until(lambda: listener.attempts >= 3, what="the listener trying again")
    assert not listener.live and listener.connections == 0
    assert [polled(app, page)[1] for _ in range(3)] == [1, 1, 1]


def test_a_row_read_by_another_thread_just_before_the_commit_is_forgotten_after_it(
        app: Flask, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The committing process forgets the page just before its COMMIT is sent: a thread of
    its own that reads the page in between still sees the old row. It is forgotten again
    once the COMMIT is done."""
    rows = rows_of(app)
    assert rows.listener is not None
    assert polled(app, page)[0]["phase"] == "waiting"
    deaf(rows.listener, monkeypatch)
    engine = app.extensions[db.EXTENSION + ".engine"]
    seen: list[str] = []

    def read_between(_connection: Any) -> None:  # after the forget, before the COMMIT
        if seen:
            return
        def poll() -> None:  # counting nothing: counting adds listeners to this very event
            seen.append(app.test_client().get(page + "/status").get_json()["phase"])

        reader = threading.Thread(target=poll)
        reader.start()
        reader.join(30)

    event.listen(engine, "commit", read_between)
    try:
        send_deposit(app, 1, "confirmed")
    finally:
        event.remove(engine, "commit", read_between)
    assert seen and seen[0] == "waiting"  # read, and kept, before the change was committed
    answer, reads = polled(app, page)
    assert answer["phase"] == "paid" and reads == 1
