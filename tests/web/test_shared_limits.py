"""Rate limits in a shared Redis (CHECKOUT_RATELIMIT_STORAGE_URL): every site process counts
one count; when Redis stops, the site goes on serving, counting in each process's memory,
and says so in its log; when Redis answers again, the count is shared again. The front layer
(front.py), which counts polls and page views before Flask runs, does the same.

A real redis-server of the tests' own (redis_kit.py), stopped and started again mid-test."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import deposit_body, post
from kit.gunicorn import serving
from kit.live import LiveServer, start_live_server, wait_until
from kit.polls import LINK, open_page
from kit.redis_server import RedisServer, redis_server
from kit.site import flask_requests

from checkout.models import Merchant
from checkout.web import front, ratelimit

LIMIT = 6
TIGHT = {name: f"{LIMIT} per minute"
         for name in ("RATELIMIT_STATUS", "RATELIMIT_PAGES", "RATELIMIT_BAD_CALLBACKS")}
FELL_BACK = "shared storage unreachable"
RECOVERED = "shared storage answers again"


@pytest.fixture(scope="session")
def redis_process() -> Iterator[RedisServer]:
    """One Redis for the test session (redis_kit.py: skipped or failed without one)."""
    with redis_server() as server:
        yield server


@pytest.fixture
def redis(redis_process: RedisServer) -> Iterator[RedisServer]:
    """The session's Redis, running and empty; running again after a test that stopped it."""
    if redis_process.process is None:
        redis_process.start()
    redis_process.flush()
    yield redis_process
    if redis_process.process is None:
        redis_process.start()


def poll(client: FlaskClient, page: str, address: str) -> int:
    return client.get(f"{page}/status", environ_base={"REMOTE_ADDR": address}).status_code


def test_two_gunicorn_instances_on_one_redis_count_one_count(
        app: Flask, merchant: Merchant, live_server: LiveServer, database_url: str,
        tmp_path: Path, redis: RedisServer) -> None:
    page = open_page(app.test_client())
    settings = {"CHECKOUT_RATELIMIT_STORAGE_URL": redis.url,
                **{f"CHECKOUT_{name}": value for name, value in TIGHT.items()}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with serving(database_url, tmp_path / "a", env=settings) as a, \
            serving(database_url, tmp_path / "b", env=settings) as b:
        with requests.Session() as session:
            codes = [session.get(f"{(a, b)[n % 2]}{page}/status", timeout=30).status_code
                     for n in range(LIMIT + 2)]
            views = [session.get(f"{(b, a)[n % 2]}{page}", timeout=30).status_code
                     for n in range(LIMIT + 1)]
    # Each instance saw at most LIMIT / 2 + 1 polls: only a shared count refuses any.
    assert codes == [200] * LIMIT + [429, 429]
    assert views == [200] * LIMIT + [429]


@pytest.fixture
def two_sites(make_app: Callable[..., Flask], merchant: Merchant,
              redis: RedisServer) -> Iterator[tuple[Flask, Flask, str]]:
    """Two apps (two instances, as far as limits go) on the session's Redis, one page."""
    first = make_app(RATELIMIT_STORAGE_URI=redis.url, **TIGHT)
    second = make_app(RATELIMIT_STORAGE_URI=redis.url, **TIGHT)
    live = start_live_server(first)  # the embedded processor hands the page its address
    try:
        yield first, second, open_page(first.test_client())
    finally:
        live.server.shutdown()
        live.server.server_close()


def test_when_redis_stops_the_site_serves_on_counting_in_memory_and_shares_again_after(
        two_sites: tuple[Flask, Flask, str], redis: RedisServer,
        caplog: pytest.LogCaptureFixture) -> None:
    first, second, page = two_sites
    a, b = first.test_client(), second.test_client()
    shared = [poll((a, b)[n % 2], page, "127.0.0.2") for n in range(LIMIT + 1)]
    assert shared == [200] * LIMIT + [429]

    caplog.set_level(logging.INFO)
    redis.stop()
    handled = flask_requests(first)
    # Polls are still answered in front of Flask, and still limited, in this process's memory.
    polls = [poll(a, page, "127.0.0.3") for _ in range(LIMIT + 1)]
    assert polls == [200] * LIMIT + [429]
    assert handled == [f"{page}/status"]  # the refusal alone: Flask writes the 429 page
    views = [a.get(page, environ_base={"REMOTE_ADDR": "127.0.0.4"}) for _ in range(LIMIT + 1)]
    assert [v.status_code for v in views] == [200] * LIMIT + [429]
    assert "Too many requests" in views[-1].get_data(as_text=True)
    # The processor's callbacks are heard: the payment shows on the page.
    address = a.get(f"{page}/status").get_json()["address"]
    body = deposit_body(5100, "not_confirmed", address=address, foreign_id=LINK["foreign_id"],
                        amount="0.00123")
    assert post(a, body).status_code == 200
    assert a.get(f"{page}/status").get_json()["status"] == "not_confirmed"
    # A refused callback is still counted (Flask-Limiter's own check, same storage).
    forged = {"X-Processing-Key": "test-key-11", "X-Processing-Signature": "0" * 128}
    refused = [post(b, b"{}", forged).status_code for _ in range(LIMIT + 1)]
    assert refused == [403] * LIMIT + [429]
    # Said once per process, not per request; the storage's address is no part of it.
    warnings = [r for r in caplog.records if FELL_BACK in r.getMessage()]
    assert len(warnings) == 2 and all(r.levelno == logging.WARNING for r in warnings)
    assert not any(str(redis.port) in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    redis.start()
    # Each process asks Redis again every few seconds, and counts there again once it answers.
    wait_until(lambda: (poll(a, page, "127.0.0.9"), poll(b, page, "127.0.0.9")) and
               sum(RECOVERED in r.getMessage() for r in caplog.records) == 2, 30,
               what="both instances counting in Redis again")
    again = [poll((a, b)[n % 2], page, "127.0.0.5") for n in range(LIMIT + 1)]
    assert again == [200] * LIMIT + [429]


def test_a_site_started_while_redis_is_down_serves_and_limits_in_memory(
        make_app: Callable[..., Flask], merchant: Merchant, redis: RedisServer,
        caplog: pytest.LogCaptureFixture) -> None:
    redis.stop()
    app = make_app(RATELIMIT_STORAGE_URI=redis.url, **TIGHT)
    client = app.test_client()
    codes = [poll(client, "/p/" + "c" * 32, "127.0.0.6") for _ in range(LIMIT + 1)]
    assert codes == [404] * LIMIT + [429]
    assert sum(FELL_BACK in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(("env", "outcome"), [
    ({}, pytest.skip.Exception), ({"CI": "true"}, pytest.fail.Exception),
    ({"CHECKOUT_REQUIRE_REDIS": "1"}, pytest.fail.Exception)])
def test_without_redis_server_the_tests_skip_except_where_they_are_required(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str],
        outcome: type[BaseException]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without redis-server
    for name in ("CI", "CHECKOUT_REQUIRE_REDIS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(outcome, match="apt-get install redis-server"), redis_server():
        raise AssertionError("no server can have started")


def counted_in_redis(redis: RedisServer, address: str) -> int:
    client = redis.client()
    try:
        return sum(int(client.get(key) or 0)
                   for key in client.keys(f"*checkout/poll/{address}/*"))
    finally:
        client.close()


def test_polls_are_counted_in_redis_a_block_at_a_time_and_never_past_the_limit(
        make_app: Callable[..., Flask], merchant: Merchant, redis: RedisServer) -> None:
    """One round trip to Redis for a hundredth of the limit (ratelimit.FrontLimit); two
    processes together let through no more than the limit, and refuse at most one block
    early each."""
    limit = 402  # blocks of 4, and a last one of 2
    first, second = (make_app(RATELIMIT_STORAGE_URI=redis.url,
                              RATELIMIT_STATUS=f"{limit} per minute") for _ in range(2))
    page = open_page(first.test_client())
    a, b = first.test_client(), second.test_client()
    address = "203.0.113.7"
    assert poll(a, page, address) == 200
    assert counted_in_redis(redis, address) == 4
    assert [poll(a, page, address) for _ in range(3)] == [200] * 3
    assert counted_in_redis(redis, address) == 4  # from the block, without asking Redis
    assert poll(a, page, address) == 200
    assert counted_in_redis(redis, address) == 8
    allowed = 5 + sum(poll((a, b)[n % 2], page, address) == 200 for n in range(2 * limit))
    assert limit - 4 <= allowed <= limit
    assert poll(a, page, address) == poll(b, page, address) == 429


def test_a_process_holds_blocks_for_a_bounded_number_of_addresses(
        make_app: Callable[..., Flask], merchant: Merchant, redis: RedisServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Any client can send from new addresses (IPv6): the oldest blocks go first, and a block
    dropped only leaves its counts unused."""
    monkeypatch.setattr(ratelimit, "BLOCKS_KEPT", 3)
    app = make_app(RATELIMIT_STORAGE_URI=redis.url, RATELIMIT_STATUS="400 per minute")
    page = open_page(app.test_client())
    client = app.test_client()
    for n in range(10):
        assert poll(client, page, f"2001:db8::{n}") == 200
    layer: Any = app.wsgi_app
    while not isinstance(layer, front.Front):
        layer = layer.inner
    assert layer.poll_limit is not None
    assert list(layer.poll_limit.blocks.entries) == [f"2001:db8::{n}" for n in (7, 8, 9)]
    assert poll(client, page, "2001:db8::0") == 200  # a new block for it, from Redis
    assert counted_in_redis(redis, "2001:db8::0") == 8
