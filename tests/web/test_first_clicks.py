"""Many first clicks on one new terminal link: one address taken, one page, nobody starved.

The first click claims the address and asks the processor once; the others wait for what it
stores. A failed or abandoned claim never blocks the link for good.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from kit import budgets
from kit.counters import count
from kit.gunicorn import serving
from kit.live import LiveServer
from kit.site import MERCHANT_SECRET
from sqlalchemy import delete, select

from checkout import clock, db, terminal
from checkout.models import AddressClaim, DepositAddress, Merchant, Page
from checkout.sandbox import store as sandbox_store
from checkout.services import addresses

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "sale-1", "amount": "0.00123",
        "convert_to": "EUR", "url_back": "https://shop.example/back"}
CLICKS = 20


def open_link(base_url: str) -> tuple[int, str | None, float]:
    started = time.monotonic()
    response = requests.get(f"{base_url}/terminal",
                            params=terminal.encode_link(LINK, MERCHANT_SECRET),
                            allow_redirects=False, timeout=30)
    return response.status_code, response.headers.get("Location"), time.monotonic() - started




def issued_addresses(app: Flask) -> list[str]:
    """What the embedded processor handed out, from its own table."""
    with app.app_context():
        return list(db.session().scalars(select(sandbox_store.Address.address)))


def test_twenty_first_clicks_under_make_runs_gunicorn_take_one_address_and_reach_one_page(
        app: Flask, merchant: Merchant, database_url: str, tmp_path: Path) -> None:
    # `make run`'s settings: 16 threads, fewer than the clicks. A click that waited for the
    # processor's timeout shows as that slow; the timeout is long enough that a loaded
    # machine's slowest honest click stays well under it.
    timeout = 60.0
    with serving(database_url, tmp_path, "--worker-class", "gthread", "--threads", "16",
                 processor_timeout=timeout) as url:
        start = threading.Barrier(CLICKS)

        def click(_: int) -> tuple[int, str | None, float]:
            start.wait()
            return open_link(url)

        with ThreadPoolExecutor(CLICKS) as pool:
            answers = list(pool.map(click, range(CLICKS)))
        page = requests.get(url + str(answers[0][1]) + "/status", timeout=30).json()
    assert [status for status, _, _ in answers] == [303] * CLICKS, answers
    assert len({location for _, location, _ in answers}) == 1
    slowest = max(seconds for _, _, seconds in answers)
    assert slowest < timeout - 1, f"a click waited {slowest:.1f} s"
    assert issued_addresses(app) == [page["address"]]
    assert (count(app, DepositAddress), count(app, Page), count(app, AddressClaim)) == (1, 1, 0)


def test_a_failed_first_click_leaves_nothing_claimed_and_the_next_click_takes_the_address(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    app.config["PROCESSOR_URL"] = "http://127.0.0.1:9/api/v2"  # nobody listens there
    status, _, _ = open_link(live_server.url)
    assert status == 503
    assert count(app, AddressClaim) == 0 and count(app, DepositAddress) == 0

    app.config["PROCESSOR_URL"] = None  # the embedded processor again
    status, location, _ = open_link(live_server.url)
    assert status == 303 and location
    assert len(issued_addresses(app)) == 1 and count(app, AddressClaim) == 0


def hold_claim(app: Flask, *, until: timedelta) -> None:
    """A claim as a request holding it leaves it (alive, or dead once `until` is past)."""
    with app.app_context():
        session = db.session()
        session.add(AddressClaim(merchant_id=11, foreign_id=LINK["foreign_id"],
                                 currency="BTC", convert_to="EUR", token="another-request",
                                 until=clock.now() + until))
        session.commit()


@pytest.fixture
def waiting(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once a click starts waiting for another request's address (the real wait runs)."""
    started = threading.Event()
    wait_for = addresses.wait_for

    def spied(*args: Any) -> DepositAddress:
        started.set()
        return wait_for(*args)

    monkeypatch.setattr(addresses, "wait_for", spied)
    return started


def once_waiting(waiting: threading.Event, action: Callable[[], None]) -> threading.Thread:
    """`action` (the other request finishing) once the click waits for it, a little after."""

    def run() -> None:
        if waiting.wait(10):
            time.sleep(0.3)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_click_waits_for_the_address_another_request_is_taking(
        app: Flask, live_server: LiveServer, merchant: Merchant,
        waiting: threading.Event) -> None:
    hold_claim(app, until=timedelta(seconds=30))

    def stored_by_the_other_request() -> None:
        with app.app_context():
            session = db.session()
            session.add(DepositAddress(merchant_id=11, foreign_id=LINK["foreign_id"],
                                       currency="BTC", convert_to="EUR", address="tb1qtaken",
                                       processor_id=1))
            session.execute(delete(AddressClaim))
            session.commit()

    other = once_waiting(waiting, stored_by_the_other_request)
    status, location, seconds = open_link(live_server.url)
    other.join()
    assert waiting.is_set() and status == 303 and seconds < 5
    page = requests.get(f"{live_server.url}{location}/status", timeout=30).json()
    assert page["address"] == "tb1qtaken"
    assert issued_addresses(app) == []  # this click never asked the processor


def test_a_click_waiting_on_a_request_that_failed_is_told_to_retry_at_once(
        app: Flask, live_server: LiveServer, merchant: Merchant,
        waiting: threading.Event) -> None:
    hold_claim(app, until=timedelta(seconds=30))

    def failed_and_released() -> None:
        with app.app_context():
            db.session().execute(delete(AddressClaim))
            db.session().commit()

    other = once_waiting(waiting, failed_and_released)
    status, _, seconds = open_link(live_server.url)
    other.join()
    assert waiting.is_set() and status == 503 and seconds < 5  # not the claim's 30 s
    assert issued_addresses(app) == [] and count(app, AddressClaim) == 0
    status, _, _ = open_link(live_server.url)  # the customer's "try again"
    assert status == 303 and len(issued_addresses(app)) == 1


def test_a_claim_left_by_a_dead_request_is_taken_over_once_expired(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    hold_claim(app, until=timedelta(seconds=-1))
    status, _, seconds = open_link(live_server.url)
    assert status == 303 and seconds < 5
    assert len(issued_addresses(app)) == 1
    assert count(app, AddressClaim) == 0 and count(app, DepositAddress) == 1


def test_an_address_stored_just_before_the_claim_serves_with_no_call_and_no_claim_commit(
        app: Flask, merchant: Merchant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another request stores the address and lets its claim go between this click's first
    look and its claim: the claim sees it, is rolled back, and the processor is not asked."""
    find = addresses.find
    looks: list[bool] = []

    def stored_meanwhile(session: Any, key: addresses.Key) -> DepositAddress | None:
        row = find(session, key)
        if not looks:  # the first look: the other request finishes right after it
            other = app.extensions[db.EXTENSION + ".factory"]()
            other.add(DepositAddress(merchant_id=11, foreign_id=LINK["foreign_id"],
                                     currency="BTC", convert_to="EUR", address="tb1qearlier",
                                     processor_id=1))
            other.commit()
            other.close()
        looks.append(row is not None)
        return row

    client = app.test_client()
    warming = terminal.encode_link({**LINK, "foreign_id": "someone-else"}, MERCHANT_SECRET)
    assert client.get("/terminal", query_string=warming).status_code == 303  # limits, rate
    monkeypatch.setattr(addresses, "find", stored_meanwhile)
    query = terminal.encode_link(LINK, MERCHANT_SECRET)
    with budgets.spent(app) as spent:
        response = client.get("/terminal", query_string=query)
    assert response.status_code == 303
    assert looks == [False, True]  # missed, then seen by the claim
    assert spent.processor_calls == [], spent
    # The claim was rolled back, never committed and released (no DELETE).
    claims = [s.split(" (")[0] for s in spent.writes if "address_claims" in s]
    assert claims == ["INSERT INTO address_claims"], spent
    assert count(app, AddressClaim) == 0
    location = str(response.headers["Location"])
    page = app.test_client().get(location + "/status").get_json()
    assert page["address"] == "tb1qearlier"
