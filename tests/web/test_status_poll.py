"""The status poll is answered in front of Flask (front.py): the same bytes and headers the
Flask view gives, its own rate limit counted once per poll and per client address (also
behind a proxy), the hosts we serve, and every other answer left to Flask."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from kit.callbacks import deposit_body, post
from kit.live import LiveServer, start_live_server
from kit.polls import LINK, open_page
from kit.site import flask_requests
from werkzeug.test import Client

from checkout.models import Merchant
from checkout.web import front, ratelimit

# Each answer differs in these, whoever makes it.
OF_THE_MOMENT = {"Date", "Content-Length"}




@pytest.fixture
def site(make_app: Callable[..., Flask], merchant: Merchant) -> Any:
    """A site whose processor is the embedded sandbox of another app (`app`), over HTTP;
    the poll's limit tight enough to reach."""

    def build(**overrides: Any) -> tuple[Flask, str, LiveServer]:
        app = make_app(RATELIMIT_STATUS="4 per minute", **overrides)
        live = start_live_server(app)
        return app, open_page(app.test_client()), live

    servers: list[LiveServer] = []

    def made(**overrides: Any) -> tuple[Flask, str]:
        app, page, live = build(**overrides)
        servers.append(live)
        return app, page

    yield made
    for live in servers:
        live.server.shutdown()
        live.server.server_close()


def test_the_poll_never_reaches_flask_and_answers_what_the_flask_view_does(site: Any) -> None:
    app, page = site(RATELIMIT_ENABLED=False)
    handled = flask_requests(app)
    fast = app.test_client().get(f"{page}/status")
    assert fast.status_code == 200 and handled == []
    # The Flask view behind it, asked directly, gives the same bytes and headers.
    assert isinstance(app.wsgi_app, front.Front)
    slow = Client(app.wsgi_app.inner).get(f"{page}/status")
    assert handled == [f"{page}/status"]
    assert fast.get_data() == slow.get_data()
    assert fast.get_json()["address"] and fast.get_json()["status"] == "waiting"

    def headers(response: Any) -> set[tuple[str, str]]:
        return {(k, v) for k, v in response.headers.items() if k not in OF_THE_MOMENT}

    assert headers(fast) == headers(slow)
    assert fast.headers["Cache-Control"] == "no-store"


def test_an_unchanged_model_is_a_304_and_a_callback_changes_it(site: Any) -> None:
    app, page = site(RATELIMIT_ENABLED=False)
    client = app.test_client()
    first = client.get(f"{page}/status")
    tag = first.headers["ETag"]
    again = client.get(f"{page}/status", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == tag and again.headers["Cache-Control"] == "no-store"
    assert again.headers["X-Frame-Options"] == "DENY"

    address = first.get_json()["address"]
    body = deposit_body(4100, "not_confirmed", address=address, foreign_id=LINK["foreign_id"],
                        amount="0.00123")
    assert post(client, body).status_code == 200
    changed = client.get(f"{page}/status", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert changed.get_json()["status"] == "not_confirmed"


def test_a_head_poll_has_the_headers_and_no_body(site: Any) -> None:
    app, page = site(RATELIMIT_ENABLED=False)
    client = app.test_client()
    got, head = client.get(f"{page}/status"), client.head(f"{page}/status")
    assert head.status_code == 200 and head.get_data() == b""
    assert head.headers["Content-Length"] == str(len(got.get_data()))
    assert head.headers["ETag"] == got.headers["ETag"]


def test_the_poll_limit_counts_each_poll_once_and_refuses_with_retry_after(site: Any) -> None:
    app, page = site()
    client = app.test_client()
    tag = client.get(f"{page}/status").headers["ETag"]
    codes = [client.get(f"{page}/status", headers={"If-None-Match": tag}).status_code
             for _ in range(3)]
    refused = client.get(f"{page}/status")
    assert codes == [304, 304, 304] and refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Cache-Control"] == "no-store"
    assert refused.headers["X-Content-Type-Options"] == "nosniff"


def test_behind_a_proxy_each_customer_address_has_its_own_poll_limit(site: Any) -> None:
    app, page = site(TRUSTED_PROXIES=1)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.2"  # every request comes through the proxy

    def polls(address: str, times: int) -> list[int]:
        return [client.get(f"{page}/status", headers={"X-Forwarded-For": address}).status_code
                for _ in range(times)]

    assert polls("203.0.113.7", 5) == [200, 200, 200, 200, 429]
    assert polls("198.51.100.9", 1) == [200]  # another customer, not the proxy's quota


def test_a_poll_for_a_host_we_do_not_serve_is_refused(
        site: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_TRUSTED_HOSTS", "checkout.example, localhost, 127.0.0.1")
    app, page = site(RATELIMIT_ENABLED=False)
    client = app.test_client()
    assert client.get(f"{page}/status", headers={"Host": "checkout.example"}).status_code == 200
    refused = client.get(f"{page}/status", headers={"Host": "evil.example"})
    assert refused.status_code == 400 and b"address" not in refused.get_data()


def test_what_the_poll_cannot_answer_goes_to_flask(site: Any) -> None:
    app, page = site(RATELIMIT_ENABLED=False)
    handled = flask_requests(app)
    client = app.test_client()
    assert client.get("/p/" + "z" * 32 + "/status").status_code == 404  # no such page
    assert client.get("/p/bad!id/status").status_code == 404
    assert client.post(f"{page}/status").status_code == 405
    assert len(handled) == 3


# ---------------------------------------------------------------- the in-memory counters


def test_process_memory_counts_in_a_window_and_starts_over_after_it() -> None:
    storage = ratelimit.ProcessMemory(ratelimit.IN_MEMORY)
    assert [storage.incr("a", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get("a") == 3 and storage.get("b") == 0
    assert storage.incr("gone", 0) == 1 and storage.incr("gone", 0) == 1  # window over
    assert storage.get("gone") == 0
    assert storage.decr("a") == 2


def test_process_memory_sweeps_windows_that_ended() -> None:
    storage = ratelimit.ProcessMemory(ratelimit.IN_MEMORY)
    storage.SWEEP_EVERY = -1  # sweep at every count
    for key in ("x", "y", "z"):
        storage.incr(key, 0)
    assert set(storage.counters) == {"z"}  # each count swept the windows before it
    storage.incr("kept", 60)
    assert set(storage.counters) == {"kept"}
