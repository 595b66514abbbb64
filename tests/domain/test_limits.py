"""Minimum deposits: the processor's `currencies/list` is cached in `currency_limits`, and a
terminal link asking for less than the network accepts is refused before any address is
taken. Real HTTP to the embedded sandbox (live server) or to a scripted local processor."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from kit.callbacks import Clock
from kit.catalogues import PSEUDO, pseudo_catalogue, untranslated
from kit.counters import count
from kit.live import PATIENCE, LiveServer, start_live_server
from kit.processor import ScriptedServer
from kit.site import MERCHANT_KEY, MERCHANT_SECRET
from sqlalchemy import func, select

from checkout import clock, db, limits, merchants, processor, terminal, worker
from checkout.models import CurrencyLimit, DepositAddress, Merchant, Page
from checkout.sandbox import currencies as sandbox_currencies
from checkout.sandbox import store as sandbox_store

LTC_LINK = {"client_id": 11, "currency": "LTC", "foreign_id": "user-7", "amount": "0.005",
            "url_back": "https://shop.example/back"}
SANDBOX_LTC_MINIMUM = Decimal("0.01")


# ---------------------------------------------------------------- helpers


@dataclass
class Outbound:
    """Counts the requests reaching the live server's app, by path; may fail chosen paths.

    A WSGI wrapper around the real app: our client, its signatures and the sandbox all run.
    """

    inner: Any
    seen: list[tuple[str, str]] = field(default_factory=list)
    # path suffix -> "down" (503) or seconds to stall before answering
    faults: dict[str, str | float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set when the test is done: a stalled request stops stalling, its thread ends.
    released: threading.Event = field(default_factory=threading.Event)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        with self.lock:
            self.seen.append((path, environ.get("HTTP_X_PROCESSING_KEY", "")))
        for suffix, fault in self.faults.items():
            if path.endswith(suffix):
                if fault == "down":
                    start_response("503 Service Unavailable", [("Content-Length", "0")])
                    return [b""]
                assert isinstance(fault, float)
                self.released.wait(fault)
        return self.inner(environ, start_response)

    def count(self, suffix: str) -> int:
        with self.lock:
            return sum(1 for path, _ in self.seen if path.endswith(suffix))

    def keys(self, suffix: str) -> list[str]:
        with self.lock:
            return [key for path, key in self.seen if path.endswith(suffix)]


@pytest.fixture
def outbound(app: Flask) -> Outbound:
    counting = Outbound(app.wsgi_app)
    app.wsgi_app = counting  # type: ignore[method-assign]
    return counting


def get_link(live: LiveServer, payload: dict[str, Any], **params: str) -> requests.Response:
    query = {**terminal.encode_link(payload, MERCHANT_SECRET), **params}
    return requests.get(f"{live.url}/terminal", params=query, allow_redirects=False,
                        timeout=30)


def rows(app: Flask) -> dict[str, tuple[str, int | None]]:
    with app.app_context():
        return {r.currency: (r.minimum_amount, r.precision)
                for r in db.session().scalars(select(CurrencyLimit))}




def refresh_from(app: Flask, url: str) -> int:
    with app.app_context():
        client = processor.ProcessorClient(url, "k", "s", timeout=5, retry_delays=())
        return limits.refresh(db.session(), client)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v2"


# ---------------------------------------------------------------- the cache


def test_a_refresh_stores_the_sandboxs_table(app: Flask, live_server: LiveServer,
                                            merchant: Merchant) -> None:
    with app.app_context():
        stored = limits.refresh(db.session(), processor.client_for(merchant))
    expected = {c.code: c.minimum_amount for c in sandbox_currencies.CURRENCIES}
    table = rows(app)
    assert stored == len(expected) == len(table)
    assert {code: Decimal(amount) for code, (amount, _) in table.items()} == expected
    assert table["LTC"] == ("0.01", 8)  # canonical text, never "0.01000000" or "1E-2"
    with app.app_context():
        session = db.session()
        assert limits.minimum(session, "LTC") == SANDBOX_LTC_MINIMUM
        assert limits.minimum(session, "EUR") == Decimal(0)
        assert limits.minimum(session, "NOPE") is None


def test_minimum_reads_the_cache_only(app: Flask, merchant: Merchant, outbound: Outbound,
                                      live_server: LiveServer) -> None:
    with app.app_context():
        assert limits.minimum(db.session(), "LTC") is None
    assert outbound.seen == []


def test_a_refresh_replaces_the_table_and_drops_what_is_no_longer_listed(
        app: Flask) -> None:
    server = ScriptedServer()
    try:
        server.script((200, wrapped([entry("BTC", "0.0001"), entry("LTC", "0.01")])),
                      (200, wrapped([entry("LTC", "0.02")])))
        assert refresh_from(app, server.url) == 2
        assert refresh_from(app, server.url) == 1
    finally:
        server.close()
    assert rows(app) == {"LTC": ("0.02", 8)}


def test_a_refresh_never_calls_out_inside_an_open_transaction(app: Flask) -> None:
    server = ScriptedServer()
    try:
        with app.app_context():
            session = db.session()
            session.scalar(select(func.count()).select_from(Page))  # begins a transaction
            client = processor.ProcessorClient(server.url, "k", "s", retry_delays=())
            with pytest.raises(RuntimeError):
                limits.refresh(session, client)
        assert server.seen == []
    finally:
        server.close()


def test_refreshes_at_the_same_moment_leave_one_table_and_no_error(app: Flask) -> None:
    server = ScriptedServer()
    server.script((200, wrapped([entry(f"C{i}X", "1") for i in range(50)] + [GOOD])))
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def refresh_now() -> None:
        try:
            start.wait(10)
            refresh_from(app, server.url)
        except BaseException as exc:  # noqa: B036 (collected for the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=refresh_now) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        server.close()
    assert errors == []
    assert len(rows(app)) == 51 and rows(app)["LTC"] == ("0.01", 8)


# ---------------------------------------------------------------- hostile processor answers


def entry(code: Any, minimum: Any, precision: Any = 8, **extra: Any) -> dict[str, Any]:
    return {"id": 1, "type": "crypto", "currency": code, "minimum_amount": minimum,
            "deposit_fee_percent": "0.5", "withdrawal_fee_percent": "0",
            "precision": precision, **extra}


def wrapped(entries: Any) -> str:
    return json.dumps({"data": entries})


GOOD = entry("LTC", "0.01000000")
HOSTILE: list[tuple[str, list[Any], dict[str, tuple[str, int | None]]]] = [
    ("huge exponent", [entry("BTC", "1E+999999999"), GOOD], {"LTC": ("0.01", 8)}),
    ("tiny exponent", [entry("BTC", "1E-999999999"), GOOD], {"LTC": ("0.01", 8)}),
    ("NaN text", [entry("BTC", "NaN"), GOOD], {"LTC": ("0.01", 8)}),
    ("Infinity text", [entry("BTC", "Infinity"), GOOD], {"LTC": ("0.01", 8)}),
    ("negative", [entry("BTC", "-0.01"), GOOD], {"LTC": ("0.01", 8)}),
    ("absurdly large", [entry("BTC", "9" * 19), GOOD], {"LTC": ("0.01", 8)}),
    ("too many places", [entry("BTC", "0." + "0" * 30 + "1"), GOOD], {"LTC": ("0.01", 8)}),
    ("a bare JSON number is read exactly", [entry("BTC", 0.0001), GOOD],
     {"BTC": ("0.0001", 8), "LTC": ("0.01", 8)}),
    ("missing minimum", [entry("BTC", None), GOOD], {"LTC": ("0.01", 8)}),
    ("a minimum that is a list", [entry("BTC", ["1"]), GOOD], {"LTC": ("0.01", 8)}),
    ("code longer than 16", [entry("X" * 17, "1"), GOOD], {"LTC": ("0.01", 8)}),
    ("code of a megabyte", [entry("X" * 1_000_000, "1"), GOOD], {"LTC": ("0.01", 8)}),
    ("code with markup", [entry("<b>BTC</b>", "1"), GOOD], {"LTC": ("0.01", 8)}),
    ("code with a NUL", [entry("BT\x00C", "1"), GOOD], {"LTC": ("0.01", 8)}),
    ("empty code", [entry("", "1"), GOOD], {"LTC": ("0.01", 8)}),
    ("code that is a number", [entry(5, "1"), GOOD], {"LTC": ("0.01", 8)}),
    ("entry that is not an object", ["BTC", 7, None, GOOD], {"LTC": ("0.01", 8)}),
    ("absurd precision is dropped, not the minimum", [entry("LTC", "0.01", 10**30)],
     {"LTC": ("0.01", None)}),
    ("negative precision", [entry("LTC", "0.01", -3)], {"LTC": ("0.01", None)}),
    ("a lower-case code is the same currency", [entry("ltc", "0.01")], {"LTC": ("0.01", 8)}),
    ("a repeated code keeps the higher minimum",
     [entry("LTC", "0.01"), entry("LTC", "0.5"), entry("LTC", "0.02")], {"LTC": ("0.5", 8)}),
    ("a zero minimum (fiat)", [entry("EUR", "0.00000000", type="fiat")], {"EUR": ("0", 8)}),
]


@pytest.mark.parametrize(("entries", "stored"), [case[1:] for case in HOSTILE],
                         ids=[case[0] for case in HOSTILE])
def test_hostile_entries_are_skipped_one_by_one(app: Flask, entries: list[Any],
                                                stored: dict[str, Any]) -> None:
    server = ScriptedServer()
    try:
        server.script((200, wrapped(entries)))
        assert refresh_from(app, server.url) == len(stored)
    finally:
        server.close()
    assert rows(app) == stored


WHOLE_ANSWER_REFUSED = [
    ("10k entries", wrapped([entry(f"C{i}", "1") for i in range(10_000)])),
    ("bare NaN", '{"data":[{"id":1,"type":"crypto","currency":"BTC","minimum_amount":NaN,'
                 '"deposit_fee_percent":"0","withdrawal_fee_percent":"0","precision":8}]}'),
    ("nothing readable", wrapped([entry("BTC", "NaN")])),
    ("empty list", wrapped([])),
    ("data is an object", wrapped({"BTC": "1"})),
    ("not JSON", "<html>maintenance</html>"),
    ("deeply nested", '{"data":' + "[" * 100_000 + "]" * 100_000 + "}"),
]


@pytest.mark.parametrize("body", [case[1] for case in WHOLE_ANSWER_REFUSED],
                         ids=[case[0] for case in WHOLE_ANSWER_REFUSED])
def test_an_unusable_answer_keeps_the_last_good_table(app: Flask, body: str) -> None:
    server = ScriptedServer()
    try:
        server.script((200, wrapped([GOOD])), (200, body))
        assert refresh_from(app, server.url) == 1
        with pytest.raises(processor.ProcessorError):
            refresh_from(app, server.url)
    finally:
        server.close()
    assert rows(app) == {"LTC": ("0.01", 8)}


# ---------------------------------------------------------------- terminal links


def test_a_link_below_the_minimum_is_refused_and_takes_no_address(
        app: Flask, live_server: LiveServer, merchant: Merchant, outbound: Outbound) -> None:
    # A fresh install: the cache is empty, so the link itself fetches it once.
    response = get_link(live_server, LTC_LINK)
    assert response.status_code == 422
    assert response.headers["Cache-Control"] == "no-store"
    html = response.text
    assert "below the smallest payment the network accepts for LTC (0.01)" in html
    assert 'href="https://shop.example/back"' in html and "Shop" in html
    assert outbound.count("/currencies/list") == 1
    assert outbound.count("/addresses/take") == 0
    with app.app_context():
        assert db.session().scalar(
            select(func.count()).select_from(sandbox_store.Address)) == 0
    assert count(app, DepositAddress) == 0 and count(app, Page) == 0
    # Once cached, the next link reads the table and asks the processor nothing.
    assert get_link(live_server, {**LTC_LINK, "amount": "0.009"}).status_code == 422
    assert outbound.count("/currencies/list") == 1


def test_a_refusal_is_a_value_that_the_route_renders(app: Flask, merchant: Merchant) -> None:
    # Outside any request: deciding a refusal needs no HTTP, only the link and the table.
    with app.app_context():
        session = db.session()
        session.add(CurrencyLimit(currency="LTC", minimum_amount="0.01", precision=8,
                                  fetched_at=clock.now()))
        session.commit()
        owner = session.get(Merchant, merchant.client_id)
        assert owner is not None

        def link(amount: str | None) -> terminal.TerminalLink:
            return terminal.TerminalLink(owner, "LTC", "user-7", amount and Decimal(amount),
                                         None, False, None, "digest")

        assert limits.refuse_link(session, link("0.005")) == limits.BelowMinimum(
            "LTC", Decimal("0.01"))
        assert limits.refuse_link(session, link("0.01")) is None
        assert limits.refuse_link(session, link(None)) is None


def test_a_link_exactly_at_the_minimum_opens(app: Flask, live_server: LiveServer,
                                            merchant: Merchant, outbound: Outbound) -> None:
    response = get_link(live_server, {**LTC_LINK, "amount": "0.01"})
    assert response.status_code == 303
    assert outbound.count("/addresses/take") == 1
    assert count(app, DepositAddress) == 1 and count(app, Page) == 1


def test_a_link_without_an_amount_is_not_checked(app: Flask, live_server: LiveServer,
                                                 merchant: Merchant) -> None:
    assert get_link(live_server, {**LTC_LINK, "amount": None}).status_code == 303


def test_the_refusal_without_a_way_back_still_names_the_shop(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    response = get_link(live_server, {**LTC_LINK, "url_back": None})
    assert response.status_code == 422
    assert "Shop" in response.text and "href=\"https://shop" not in response.text


def test_an_iframe_link_shows_the_refusal_in_the_shops_frame(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    response = get_link(live_server, {**LTC_LINK, "is_iframe": True})
    assert response.status_code == 422
    assert "frame-ancestors https://shop.example" in response.headers[
        "Content-Security-Policy"]
    assert 'target="_top"' in response.text


# The processor's timeout is long enough for a loaded machine's honest calls; the stall is far
# longer, so only a link that waited for it out (the bug) comes close to it.
TIMEOUT = 5.0


@pytest.mark.parametrize("fault", ["down", PATIENCE], ids=["503", "stalls past the timeout"])
def test_a_failing_currencies_list_does_not_block_links(
        make_app: Callable[..., Flask], fault: str | float,
        caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(PROCESSOR_TIMEOUT=TIMEOUT)
    counting = Outbound(app.wsgi_app, faults={"/currencies/list": fault})
    app.wsgi_app = counting  # type: ignore[method-assign]
    live = start_live_server(app)
    try:
        add_merchant(app, 11, MERCHANT_KEY, MERCHANT_SECRET)
        started = time.monotonic()
        response = get_link(live, LTC_LINK)
        elapsed = time.monotonic() - started
        # No check is made: the link opens; the sandbox cancels the deposit if too small.
        assert response.status_code == 303
        assert elapsed < PATIENCE / 2, f"the link took {elapsed:.1f} s"
        assert counting.count("/currencies/list") == 1  # one quick try, no retries
        assert any("minimum" in r.getMessage() and r.levelno == logging.WARNING
                   for r in caplog.records)
        # The next link within a minute does not wait on the processor again.
        assert get_link(live, {**LTC_LINK, "foreign_id": "user-8"}).status_code == 303
        assert counting.count("/currencies/list") == 1
    finally:
        counting.released.set()
        live.stop()


def test_a_processor_that_is_down_leaves_links_as_they_were(
        make_app: Callable[..., Flask]) -> None:
    app = make_app(PROCESSOR_URL=closed_port_url(), SANDBOX=False)
    add_merchant(app, 11, MERCHANT_KEY, MERCHANT_SECRET)
    started = time.monotonic()
    response = app.test_client().get("/terminal",
                                     query_string=terminal.encode_link(LTC_LINK,
                                                                       MERCHANT_SECRET))
    # The usual retry page of a processor that cannot be reached, quickly, not a limits error.
    assert response.status_code == 503
    assert time.monotonic() - started < PATIENCE / 4  # a safety bound: no wait on the limits
    assert count(app, Page) == 0 and rows(app) == {}


# ---------------------------------------------------------------- the worker and the CLI


def add_merchant(app: Flask, client_id: int, key: str, secret: str) -> None:
    with app.app_context():
        merchants.add(merchants.NewMerchant(client_id, "Shop", key, secret, ("shop.example",),
                                            ("https://shop.example",)))


def test_the_worker_refreshes_only_when_the_cache_is_stale(
        make_app: Callable[..., Flask]) -> None:
    clock = Clock()
    app = make_app(CLOCK=clock, LIMITS_MAX_AGE=3600)
    counting = Outbound(app.wsgi_app)
    app.wsgi_app = counting  # type: ignore[method-assign]
    live = start_live_server(app)
    try:
        worker.run_once(app)
        assert counting.count("/currencies/list") == 0  # no merchant: nothing to ask with
        add_merchant(app, 11, MERCHANT_KEY, MERCHANT_SECRET)
        add_merchant(app, 5, "key-5", "secret-5")
        worker.run_once(app)
        assert counting.count("/currencies/list") == 1
        assert counting.keys("/currencies/list") == ["key-5"]  # the lowest client id
        assert rows(app)["LTC"] == ("0.01", 8)
        clock.advance(timedelta(seconds=3599))
        worker.run_once(app)
        worker.run_once(app)
        assert counting.count("/currencies/list") == 1
        clock.advance(timedelta(seconds=2))
        worker.run_once(app)
        assert counting.count("/currencies/list") == 2
    finally:
        live.server.shutdown()
        live.server.server_close()


def test_the_worker_asks_a_failing_processor_once_a_minute_not_every_loop(
        make_app: Callable[..., Flask]) -> None:
    clock = Clock()
    app = make_app(CLOCK=clock)
    counting = Outbound(app.wsgi_app, faults={"/currencies/list": "down"})
    app.wsgi_app = counting  # type: ignore[method-assign]
    live = start_live_server(app)
    try:
        add_merchant(app, 11, MERCHANT_KEY, MERCHANT_SECRET)
        worker.run_once(app)
        tries = counting.count("/currencies/list")
        assert tries >= 1  # the worker may retry a read: no customer is waiting
        worker.run_once(app)
        assert counting.count("/currencies/list") == tries
        clock.advance(timedelta(seconds=61))
        counting.faults.clear()
        worker.run_once(app)
        assert counting.count("/currencies/list") == tries + 1
        assert "LTC" in rows(app)
    finally:
        live.server.shutdown()
        live.server.server_close()


def test_the_cli_refreshes_and_prints_the_table_without_secrets(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    result = app.test_cli_runner().invoke(args=["limits", "refresh"])
    assert result.exit_code == 0, result.output
    assert any(line.split() == ["LTC", "0.01", "8"] for line in result.output.splitlines())
    assert MERCHANT_KEY not in result.output and MERCHANT_SECRET not in result.output


def test_the_cli_without_a_merchant_says_so(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["limits", "refresh"])
    assert result.exit_code != 0
    assert "merchant" in result.output


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    from checkout.config import from_environment

    assert from_environment(tmp_path)["LIMITS_MAX_AGE"] == 3600
    monkeypatch.setenv("CHECKOUT_LIMITS_MAX_AGE", "120")
    assert from_environment(tmp_path)["LIMITS_MAX_AGE"] == 120


# ---------------------------------------------------------------- languages


@pytest.fixture
def pseudo_live(make_app: Callable[..., Flask], tmp_path: Path) -> Iterator[LiveServer]:
    pseudo_catalogue(tmp_path / "translations")
    app = make_app(LANGUAGES=["en", PSEUDO],
                   BABEL_TRANSLATION_DIRECTORIES=str(tmp_path / "translations"))
    live = start_live_server(app)
    yield live
    live.server.shutdown()
    live.server.server_close()


def test_the_refusal_has_no_unwrapped_text(pseudo_live: LiveServer) -> None:
    add_merchant(pseudo_live.app, 11, MERCHANT_KEY, MERCHANT_SECRET)
    response = get_link(pseudo_live, LTC_LINK, lang=PSEUDO)
    assert response.status_code == 422
    assert "⟦" in response.text
    assert untranslated(response.text, ["Shop", "LTC", "0.01"]) == []
