"""Reconciliation: a page left waiting by a lost callback asks the processor (the embedded
sandbox, over real HTTP) and applies the answer once, through the callbacks' own path."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import requests
from flask import Flask
from kit.callbacks import (
    Clock,
    callbacks_of,
    count,
    deposits_of,
    issue_address,
    page_state,
    pay,
    take_address,
)
from kit.live import LiveServer
from sqlalchemy import select

from checkout import db, money
from checkout.models import AppliedCallback, Delivery, Merchant, Page
from checkout.sandbox import operations, outbox
from checkout.services import reconcile

AFTER = 600


@pytest.fixture
def clock(app: Flask) -> Clock:
    app.config["RECONCILE_AFTER"] = AFTER
    app.config["CLOCK"] = the_clock = Clock()
    return the_clock


def reconcile_now(app: Flask) -> int:
    with app.app_context():
        return reconcile.run_due()


def checked_at(app: Flask, page_id: str) -> object:
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None
        return page.checked_at


def test_a_lost_callback_is_made_good_by_asking_the_processor(
        app: Flask, live_server: LiveServer, merchant: Merchant, clock: Clock) -> None:
    address, page = take_address(app, "customer-1")
    pay(live_server.url, address, "confirmed")
    assert reconcile_now(app) == 0  # news may still come: not asked before RECONCILE_AFTER
    clock.advance(timedelta(seconds=AFTER + 1))
    assert reconcile_now(app) == 1
    assert page_state(app, page) == ("confirmed", None)
    assert checked_at(app, page) == clock.now
    [learned] = callbacks_of(app)
    assert (learned.source, learned.outcome, learned.status) == (
        "reconcile", "applied", "confirmed")
    # The shop hears what we learned, in the callback's shape: its own may never come.
    assert count(app, Delivery) == 1
    with app.app_context():
        [told] = db.session().scalars(select(Delivery)).all()
        assert told.callback_id == learned.id and told.body == learned.body
        assert money.loads(told.body)["status"] == "confirmed"

    # The processor's own callback, late: kept and forwarded, never applied a second time.
    assert outbox.send_due(app) >= 1
    late = callbacks_of(app)[-1]
    assert (late.source, late.outcome) == ("processor", "duplicate")
    assert count(app, AppliedCallback) == 1 and len(deposits_of(app)) == 1
    # The shop heard it from reconciliation; the processor's late copy is no news to it.
    assert count(app, Delivery) == 1


def test_a_payment_in_flight_is_followed_by_id_until_it_is_final(
        app: Flask, live_server: LiveServer, merchant: Merchant, clock: Clock) -> None:
    address, page = take_address(app, "customer-2")
    pay(live_server.url, address, "not_confirmed")
    clock.advance(timedelta(seconds=AFTER + 1))
    assert reconcile_now(app) == 1
    assert page_state(app, page)[0] == "not_confirmed"
    [deposit] = deposits_of(app)
    # The chain confirms it; the processor's callbacks stay lost.
    requests.post(f"{live_server.url}/sandbox/clock", json={"advance_seconds": 7200},
                  timeout=30).raise_for_status()
    assert operations.confirm_due(app) >= 1
    clock.advance(timedelta(seconds=AFTER + 1))
    assert reconcile_now(app) == 1
    assert page_state(app, page) == ("confirmed", None)
    assert [(d.processor_id, d.status) for d in deposits_of(app)] == [
        (deposit.processor_id, "confirmed")]
    clock.advance(timedelta(days=1))
    assert reconcile_now(app) == 0  # final pages are never asked about


def test_a_page_is_asked_about_at_most_once_per_period(
        app: Flask, live_server: LiveServer, merchant: Merchant, clock: Clock) -> None:
    take_address(app, "customer-3")
    clock.advance(timedelta(seconds=AFTER + 1))
    assert reconcile_now(app) == 1  # nothing paid yet: the processor says so
    assert reconcile_now(app) == 0
    clock.advance(timedelta(seconds=AFTER - 10))
    assert reconcile_now(app) == 0
    clock.advance(timedelta(seconds=11))
    assert reconcile_now(app) == 1
    assert callbacks_of(app) == []


def test_pages_too_old_to_matter_are_left_to_the_callbacks(
        app: Flask, live_server: LiveServer, merchant: Merchant, clock: Clock) -> None:
    take_address(app, "customer-4")
    clock.advance(timedelta(seconds=app.config["RECONCILE_HORIZON"] + 1))
    assert reconcile_now(app) == 0


def test_processor_errors_are_logged_and_asked_again_later(
        app: Flask, merchant: Merchant, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    _, page = issue_address(app, address="1Unreachable", foreign_id="customer-5")
    app.config.update(PROCESSOR_URL="http://127.0.0.1:9/api/v2", PROCESSOR_TIMEOUT=0.5)
    clock.advance(timedelta(seconds=AFTER + 1))
    with caplog.at_level(logging.WARNING, logger="checkout.services.reconcile"):
        assert reconcile_now(app) == 1
    assert "processor error (Unavailable)" in caplog.text
    assert page_state(app, page) == ("waiting", None)
    assert checked_at(app, page) == clock.now
    clock.advance(timedelta(seconds=AFTER + 1))
    assert reconcile_now(app) == 1


def test_an_answer_that_contradicts_our_address_is_flagged_not_applied(
        app: Flask, live_server: LiveServer, merchant: Merchant, clock: Clock) -> None:
    address, page = take_address(app, "customer-6")
    with app.app_context(), db.transaction() as s:
        # Our record says this address was issued for ETH: the processor's BTC answer
        # cannot be the payment we asked for.
        row = s.get(Page, page)
        assert row is not None and row.deposit_address is not None
        row.deposit_address.currency = "ETH"
    pay(live_server.url, address, "confirmed")
    clock.advance(timedelta(seconds=AFTER + 1))
    assert reconcile_now(app) == 1
    [learned] = callbacks_of(app)
    assert learned.outcome == "flagged" and "currency" in (learned.flag or "")
    assert page_state(app, page) == ("waiting", None)
