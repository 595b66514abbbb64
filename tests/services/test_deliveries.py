"""Forwarding callbacks to the shop: durable, at least once, on the processor's schedule,
signed with the merchant's secret, never twice at the same time."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from kit.callbacks import (
    EXAMPLES,
    Clock,
    callbacks_of,
    deposit_body,
    page_state,
    pay,
    post,
    running_shop,
    take_address,
    use_shop,
)
from kit.live import PATIENCE, LiveServer
from kit.site import MERCHANT_KEY, MERCHANT_SECRET
from sqlalchemy import select

from checkout import db, worker
from checkout.models import Delivery, DeliveryAttempt, Merchant
from checkout.services import deliveries


def run_worker(app: Flask) -> int:
    with app.app_context():
        return deliveries.run_due()


def delivery(app: Flask, delivery_id: int = 0) -> Delivery:
    with app.app_context():
        rows = db.session().query(Delivery).order_by(Delivery.id).all()
        return rows[delivery_id]


@pytest.fixture
def clock(app: Flask) -> Clock:
    app.config["CLOCK"] = the_clock = Clock()
    return the_clock


@pytest.mark.parametrize(("failures", "minutes"), [
    (1, 1), (2, 5), (3, 15), (4, 30), (5, 60), (6, 90), (7, 120), (8, 180), (9, 240),
    (10, 240), (11, 240), (12, 240), (40, 240),
])
def test_retries_follow_the_processors_schedule(failures: int, minutes: int) -> None:
    assert deliveries.retry_delay(failures) == timedelta(minutes=minutes)


def test_a_shop_that_fails_then_recovers_gets_the_callback_signed_with_its_secret(
        app: Flask, client: FlaskClient, merchant: Merchant, clock: Clock) -> None:
    with running_shop(script=[500, 503, 404]) as shop:
        use_shop(app, shop)
        body = EXAMPLES["deposit confirmed"]
        assert post(client, body).status_code == 200
        assert run_worker(app) == 1
        assert (delivery(app).state, delivery(app).attempts, delivery(app).last_status) == (
            "pending", 1, 500)
        assert delivery(app).next_attempt_at == clock.now + timedelta(minutes=1)
        assert run_worker(app) == 0  # not due yet
        for wait, status in ((1, 503), (5, 404)):
            clock.advance(timedelta(minutes=wait, seconds=1))
            assert run_worker(app) == 1
            assert delivery(app).last_status == status
        clock.advance(timedelta(minutes=15, seconds=1))
        assert run_worker(app) == 1
        assert run_worker(app) == 0
    done = delivery(app)
    assert (done.state, done.attempts, done.last_status, done.last_error) == (
        "delivered", 4, 200, None)
    assert done.delivered_at == clock.now and done.lease_until is None
    assert [r.body for r in shop.received] == [body] * 4
    last = shop.received[-1]
    assert last.headers["X-Processing-Key"] == MERCHANT_KEY
    assert last.headers["Content-Type"] == "application/json"
    assert shop.verifies(last, MERCHANT_SECRET)


def test_a_shop_that_never_answers_2xx_ends_failed_after_the_last_retry(
        app: Flask, client: FlaskClient, merchant: Merchant, clock: Clock) -> None:
    retries = app.config["DELIVERY_MAX_RETRIES"]
    with running_shop(script=[500] * 100) as shop:
        use_shop(app, shop)
        post(client, deposit_body(1, "confirmed"))
        for attempt in range(1, retries + 2):
            assert run_worker(app) == 1, attempt
            clock.advance(deliveries.retry_delay(attempt) + timedelta(seconds=1))
        assert run_worker(app) == 0
        clock.advance(timedelta(days=30))
        assert run_worker(app) == 0
    assert len(shop.received) == retries + 1 == 13
    assert (delivery(app).state, delivery(app).attempts) == ("failed", 13)


@pytest.mark.parametrize(("script", "error"), [
    ([302], "HTTP 302"), ([500], "HTTP 500"), ([100 + 99], "HTTP 199"),
])
def test_only_a_2xx_answer_counts_as_delivered(
        app: Flask, client: FlaskClient, merchant: Merchant, clock: Clock, script: list[int],
        error: str) -> None:
    with running_shop(script=script) as shop:
        use_shop(app, shop)
        post(client, deposit_body(1, "confirmed"))
        run_worker(app)
    assert (delivery(app).state, delivery(app).last_error) == ("pending", error)


def test_a_shop_that_hangs_is_given_up_on_after_the_timeout(
        app: Flask, client: FlaskClient, merchant: Merchant, clock: Clock) -> None:
    app.config["DELIVERY_TIMEOUT"] = 0.3
    with running_shop(hold=3) as shop:
        use_shop(app, shop)
        post(client, deposit_body(1, "confirmed"))
        run_worker(app)
    row = delivery(app)
    assert (row.state, row.last_status, row.last_error) == ("pending", None, "ReadTimeout")


def test_an_unreachable_shop_is_retried_and_the_error_names_no_secret(
        app: Flask, client: FlaskClient, merchant: Merchant, clock: Clock) -> None:
    with app.app_context(), db.transaction() as s:
        row = s.get(Merchant, 11)
        assert row is not None
        row.webhook_url = "http://127.0.0.1:9/hook?token=t0ps3cret"
    post(client, deposit_body(1, "confirmed"))
    run_worker(app)
    failed = delivery(app)
    assert (failed.state, failed.attempts, failed.last_error) == (
        "pending", 1, "ConnectionError")


def test_a_claim_whose_worker_died_is_taken_again_once_its_lease_runs_out(
        app: Flask, client: FlaskClient, merchant: Merchant, clock: Clock) -> None:
    with running_shop() as shop:
        use_shop(app, shop)
        post(client, deposit_body(1, "confirmed"))
        with app.app_context():
            lease = deliveries.settings().lease
            # A worker claims it and dies before sending: only its lease remains.
            assert deliveries.claim(db.session(), delivery(app).id, clock.now, lease)
        assert run_worker(app) == 0
        clock.advance(timedelta(seconds=lease - 1))
        assert run_worker(app) == 0
        clock.advance(timedelta(seconds=2))
        assert run_worker(app) == 1
    assert delivery(app).state == "delivered"
    assert len(shop.received) == 1


def test_a_lease_always_outlasts_the_post_timeout(app: Flask) -> None:
    app.config.update(DELIVERY_TIMEOUT=45, DELIVERY_LEASE=10)
    with app.app_context():
        assert deliveries.settings().lease == 90


def test_two_workers_never_send_the_same_delivery_at_the_same_time(
        make_app: Callable[..., Flask], merchant: Merchant, app: Flask,
        client: FlaskClient) -> None:
    with running_shop(hold=0.02) as shop:
        use_shop(app, shop)
        ids = list(range(1, 31))
        for ident in ids:
            assert post(client, deposit_body(ident, "confirmed")).status_code == 200
        # Two apps: two engines and connection pools, like two worker processes.
        workers = [make_app() for _ in range(2)]
        start = threading.Barrier(len(workers))
        errors: list[BaseException] = []

        def work(worker_app: Flask) -> None:
            try:
                start.wait()
                while run_worker(worker_app):
                    pass
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert errors == []
    sent = sorted(json.loads(r.body)["id"] for r in shop.received)
    assert sent == ids  # each exactly once
    assert max(shop.max_in_flight.values()) == 1
    with app.app_context():
        assert {d.state for d in db.session().query(Delivery)} == {"delivered"}


# ---------------------------------------------------------------------------------------------
# The `deliveries` CLI


def test_list_shows_what_is_pending_or_failed_and_never_a_secret(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner, merchant: Merchant,
        clock: Clock) -> None:
    app.config["DELIVERY_MAX_RETRIES"] = 0
    with running_shop(script=[500, 500]) as shop:
        use_shop(app, shop)
        post(client, deposit_body(1, "confirmed"))
        run_worker(app)  # failed at once: no retries allowed
        post(client, deposit_body(2, "confirmed"))
        output = runner.invoke(args=["deliveries", "list"]).output
    lines = output.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].split("\t")[:5] == ["1", "merchant 11", "failed", "attempts 1", "next -"]
    assert lines[0].endswith("last HTTP 500")
    assert lines[1].split("\t")[:4] == ["2", "merchant 11", "pending", "attempts 0"]
    assert MERCHANT_SECRET not in output and MERCHANT_KEY not in output


def test_list_says_so_when_nothing_is_pending(runner: FlaskCliRunner) -> None:
    assert runner.invoke(args=["deliveries", "list"]).output.strip() == \
        "no deliveries pending or failed"


def test_retry_reopens_a_failed_delivery_and_sends_it_now(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner, merchant: Merchant,
        clock: Clock) -> None:
    app.config["DELIVERY_MAX_RETRIES"] = 0
    with running_shop(script=[500]) as shop:
        use_shop(app, shop)
        post(client, deposit_body(1, "confirmed"))
        run_worker(app)
        assert delivery(app).state == "failed"
        result = runner.invoke(args=["deliveries", "retry", str(delivery(app).id)])
    assert result.exit_code == 0, result.output
    assert "delivered (HTTP 200)" in result.output
    assert (delivery(app).state, delivery(app).attempts) == ("delivered", 1)
    assert len(shop.received) == 2


def test_retry_of_a_delivery_in_flight_or_unknown_is_refused(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner, merchant: Merchant,
        clock: Clock) -> None:
    post(client, deposit_body(1, "confirmed"))
    with app.app_context():
        assert deliveries.claim(db.session(), delivery(app).id, clock.now, 60)
    busy = runner.invoke(args=["deliveries", "retry", str(delivery(app).id)])
    assert busy.exit_code != 0 and "being sent by a worker" in busy.output
    missing = runner.invoke(args=["deliveries", "retry", "999"])
    assert missing.exit_code != 0 and "no delivery 999" in missing.output


def test_the_worker_command_runs_the_delivery_task(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner, merchant: Merchant) -> None:
    with running_shop() as shop:
        use_shop(app, shop)
        post(client, deposit_body(1, "confirmed"))
        result = runner.invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert delivery(app).state == "delivered"


def test_the_whole_path_from_the_processor_to_the_shop(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    """Sandbox payment -> signed callback over HTTP -> page confirmed -> the shop gets the
    processor's exact bytes, signed with its own secret, by the worker."""
    with running_shop() as shop:
        use_shop(app, shop)
        address, page = take_address(app, "customer-e2e")
        pay(live_server.url, address, "confirmed")
        rounds = 0
        while not shop.received and rounds < 5:
            worker.run_once(app)
            rounds += 1
    assert page_state(app, page) == ("confirmed", None)
    [received] = shop.received
    [stored] = callbacks_of(app)
    assert (stored.source, stored.outcome) == ("processor", "applied")
    assert received.body == stored.body
    assert json.loads(received.body)["crypto_address"]["address"] == address
    assert shop.verifies(received)


def test_no_secret_reaches_the_logs(
        app: Flask, client: FlaskClient, merchant: Merchant, clock: Clock,
        caplog: pytest.LogCaptureFixture) -> None:
    body = deposit_body(1, "confirmed")
    with caplog.at_level(logging.DEBUG), running_shop(script=[500]) as shop:
        use_shop(app, shop)
        post(client, body)
        post(client, body, {"X-Processing-Key": MERCHANT_KEY,
                            "X-Processing-Signature": "0" * 128})
        run_worker(app)
        clock.advance(timedelta(minutes=2))
        run_worker(app)
    assert delivery(app).state == "delivered"
    signature = shop.received[0].headers["X-Processing-Signature"]
    for secret in (MERCHANT_SECRET, MERCHANT_KEY, signature):
        assert secret not in caplog.text


@dataclass
class DripShop:
    """Answers the status line at once, then one header byte every `every` seconds."""

    seconds: float
    every: float = 0.05
    requests: list[bytes] = field(default_factory=list)
    url: str = ""


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return body


@contextmanager
def dripping_shop(seconds: float) -> Iterator[DripShop]:
    shop = DripShop(seconds)
    server = socket.create_server(("127.0.0.1", 0))
    shop.url = f"http://127.0.0.1:{server.getsockname()[1]}/coinspaid/callback"
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            shop.requests.append(_read_request(conn))
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                ends = time.monotonic() + shop.seconds
                while time.monotonic() < ends and not stop.is_set():
                    conn.sendall(b"z")
                    stop.wait(shop.every)
                conn.sendall(b"\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass  # the worker hung up: that is the point

    def serve() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        stop.set()
        thread.join(5)
        server.close()


def only_delivery(app: Flask) -> Delivery:
    with app.app_context():
        [row] = db.session().query(Delivery).all()
        return row


def set_webhook(app: Flask, url: str | None) -> None:
    with app.app_context(), db.transaction() as s:
        row = s.get(Merchant, 11)
        assert row is not None
        row.webhook_url = url


def test_a_shop_that_drips_its_answer_is_cut_off_at_the_timeout(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    """The timeout bounds the whole POST, not each read: a shop trickling bytes must not
    hold the worker past its lease, or a second worker would send the same delivery."""
    app.config.update(CLOCK=Clock(), DELIVERY_TIMEOUT=0.3, DELIVERY_LEASE=0.6)
    # The shop drips for longer than any loaded machine needs for a cut-off POST: only a
    # timeout per read (the bug) lets the worker wait for all of it.
    with dripping_shop(seconds=PATIENCE) as shop:
        set_webhook(app, shop.url)
        body = deposit_body(1, "confirmed")
        assert post(client, body).status_code == 200
        started = time.monotonic()
        assert run_worker(app) == 1
        took = time.monotonic() - started
    assert took < PATIENCE / 2, f"the POST took {took:.1f}s with a 0.3s timeout"
    row = only_delivery(app)
    assert (row.state, row.attempts, row.last_status, row.last_error) == (
        "pending", 1, None, "ReadTimeout")
    assert shop.requests == [body]


def test_a_quick_shop_is_still_delivered_under_the_deadline(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    app.config.update(CLOCK=Clock(), DELIVERY_TIMEOUT=5)
    with dripping_shop(seconds=0.2) as shop:
        set_webhook(app, shop.url)
        post(client, deposit_body(1, "confirmed"))
        assert run_worker(app) == 1
    row = only_delivery(app)
    assert (row.state, row.last_status, row.last_error) == ("delivered", 200, None)


def test_queued_callbacks_follow_the_merchants_new_webhook_url(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    app.config["CLOCK"] = Clock()
    with running_shop() as old, running_shop() as new:
        use_shop(app, old)
        body = deposit_body(1, "confirmed")
        assert post(client, body).status_code == 200
        use_shop(app, new)  # the merchant moved its handler before the worker ran
        assert run_worker(app) == 1
    assert old.received == []
    assert [r.body for r in new.received] == [body]
    assert new.verifies(new.received[0])
    row = only_delivery(app)
    assert (row.state, row.url) == ("delivered", new.url)


def test_a_webhook_removed_after_queueing_is_not_sent_to_the_old_url(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    app.config["CLOCK"] = clock = Clock()
    with running_shop() as old:
        use_shop(app, old)
        post(client, deposit_body(1, "confirmed"))
        set_webhook(app, None)
        assert run_worker(app) == 1
        row = only_delivery(app)
        assert (row.state, row.attempts, row.last_error) == ("pending", 1, "no webhook URL")
        # Set again, the merchant gets what waited, on the usual retry schedule.
        use_shop(app, old)
        clock.advance(deliveries.retry_delay(1))
        assert run_worker(app) == 1
    assert len(old.received) == 1
    assert only_delivery(app).state == "delivered"


# ---------------------------------------------------------------------------------------------
# Every attempt is kept (a payment's story shows them all)


def attempts_of(app: Flask) -> list[DeliveryAttempt]:
    with app.app_context():
        return list(db.session().scalars(
            select(DeliveryAttempt).order_by(DeliveryAttempt.id)).all())


def test_every_attempt_is_kept_with_its_answer_duration_and_next_try(
        app: Flask, client: FlaskClient, merchant: Merchant, clock: Clock) -> None:
    answer = b"<h1>Oops & " + b"x" * 500
    with running_shop(script=[500], answer=answer) as shop:
        use_shop(app, shop)
        post(client, deposit_body(1, "confirmed"))
        run_worker(app)
        failed_at = clock.now
        clock.advance(timedelta(minutes=1, seconds=1))
        run_worker(app)
    first, second = attempts_of(app)
    row = delivery(app)
    assert first.delivery_id == second.delivery_id == row.id
    assert (first.status, first.error, first.at) == (500, "HTTP 500", failed_at)
    assert first.next_attempt_at == failed_at + timedelta(minutes=1)
    # The first bytes of the shop's answer, as sent, never all of it.
    assert first.excerpt == answer[:deliveries.EXCERPT]
    assert (second.status, second.error, second.next_attempt_at) == (200, None, None)
    assert row.state == "delivered"
    assert 0 <= first.duration_ms < 5000 and 0 <= second.duration_ms < 5000


def test_an_attempt_that_timed_out_is_kept_with_how_long_it_waited(
        app: Flask, client: FlaskClient, merchant: Merchant, clock: Clock) -> None:
    app.config["DELIVERY_TIMEOUT"] = 0.3
    with running_shop(hold=3) as shop:
        use_shop(app, shop)
        post(client, deposit_body(1, "confirmed"))
        run_worker(app)
    [attempt] = attempts_of(app)
    assert (attempt.status, attempt.error, attempt.excerpt) == (None, "ReadTimeout", None)
    assert 250 <= attempt.duration_ms < 3000
    assert attempt.next_attempt_at == clock.now + timedelta(minutes=1)


def test_an_unreachable_shop_and_the_last_attempt_are_kept_too(
        app: Flask, client: FlaskClient, merchant: Merchant, clock: Clock) -> None:
    app.config["DELIVERY_MAX_RETRIES"] = 1
    with app.app_context(), db.transaction() as s:
        row = s.get(Merchant, 11)
        assert row is not None
        row.webhook_url = "http://127.0.0.1:9/hook?token=t0ps3cret"
    post(client, deposit_body(1, "confirmed"))
    run_worker(app)
    clock.advance(timedelta(minutes=1, seconds=1))
    run_worker(app)
    assert delivery(app).state == "failed"
    assert [(a.status, a.error, a.next_attempt_at is None) for a in attempts_of(app)] == [
        (None, "ConnectionError", False), (None, "ConnectionError", True)]
