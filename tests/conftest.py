"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via CHECKOUT_DATABASE_URL),
the app, its test client and CLI runner, a live HTTP server, and a merchant."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask, request, request_started
from flask.testing import FlaskClient, FlaskCliRunner
from hypothesis import HealthCheck, settings
from sqlalchemy import event, make_url, text
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from checkout import create_app, db, merchants, migrate
from checkout.db import Base
from checkout.models import Merchant
from checkout.sandbox import loopback
from checkout.sandbox import store as sandbox_store

# Hypothesis measures each example against a deadline (200 ms) and its data generation
# against a health check: wall-clock bounds a loaded machine misses. Tests keep theirs off.
settings.register_profile("suite", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# Fixtures the kit defines for tests in more than one folder (a deposit customer's address,
# a fresh rate, a shop selling invoices): offered to every test, as if written here; a test
# module's own fixture of the same name wins.
pytest_plugins = ["kit.deposits", "kit.invoices"]

MERCHANT_KEY = "test-key-11"
MERCHANT_SECRET = "test-secret-11"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database per test process, built by the migrations themselves: SQLite in the
    process's own temp folder; on PostgreSQL a schema of its own (`tests_gw0`, ...), so that
    pytest-xdist's workers never see each other's rows, truncations or migrations."""
    url = os.environ.get("CHECKOUT_DATABASE_URL")
    if url:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")  # gw0, gw1, ...
        with own_schema(url, f"tests_{worker}") as url:
            migrate.upgrade(url)
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'checkout.db'}"
    migrate.upgrade(url)
    yield url


@contextmanager
def own_schema(base: str, schema: str) -> Iterator[str]:
    """A fresh schema in `base`'s PostgreSQL database (left over from a killed run: dropped
    first), the URL that works inside it, and the schema dropped afterwards."""
    engine = db.make_engine(base)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        engine.dispose()


# How long a test waits for something that takes well under a second on an idle machine
# before it calls it lost. It only turns a hang into a failure: a loaded machine (2 cores,
# pytest-xdist, other builds) may be 50 times slower, and that must not fail a test.
PATIENCE = 120.0


def wait_until(condition: Callable[[], bool], seconds: float = PATIENCE, *, what: str = "",
               tick: Callable[[], None] | None = None) -> None:
    """Return as soon as `condition()` holds; fail after `seconds` (a safety bound, never a
    measure of speed). A fixed sleep is too short on a loaded machine and time lost on an
    idle one. `tick` pauses between checks: browser tests pass the page's own wait, since
    Playwright hands page events (requests) to Python only while it is called."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what or condition}"
        if tick is None:
            time.sleep(0.02)
        else:
            tick()


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def _truncate(app: Flask) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    tables += [t.name for t in reversed(sandbox_store.Base.metadata.sorted_tables)]
    engine = app.extensions[db.EXTENSION + ".engine"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps on the test database; everything they wrote is wiped afterwards."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SECRET_KEY": "test-secret-key",
            "SANDBOX": True,
            "PROCESSOR_URL": None,
            "PUBLIC_URL": None,
        }
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        loopback.stop(app)  # the embedded processor's own server, if a call started it
        app.extensions[db.EXTENSION].remove()
    if apps:
        _truncate(apps[0])
    for app in apps:
        app.extensions[db.EXTENSION + ".engine"].dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


class _TrackedHandler(WSGIRequestHandler):
    """Notes its connection on the server while it serves it (see LiveWSGIServer)."""

    server: LiveWSGIServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.lock:
            self.server.connections.discard(self.connection)
        super().finish()


class LiveWSGIServer(ThreadedWSGIServer):
    """A threaded werkzeug server that closes the connections it still reads when it is
    closed. A browser opens connections ahead of need (werkzeug closes each after one
    answer, the browser keeps the spares): each kept a request thread reading it, holding a
    finished test's app, for as long as the browser lived."""

    def __init__(self, host: str, app: Any) -> None:
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        super().__init__(host, 0, app, handler=_TrackedHandler)

    def server_close(self) -> None:
        with self.lock:
            held = list(self.connections)
        for connection in held:
            with contextlib.suppress(OSError):  # the client closed it meanwhile
                connection.shutdown(socket.SHUT_RDWR)
        super().server_close()


@dataclass
class LiveServer:
    url: str
    app: Flask
    server: LiveWSGIServer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_live_server(app: Flask, host: str = "127.0.0.1") -> LiveServer:
    """Serve `app` over real HTTP on a free port, in a thread; PUBLIC_URL points at it.
    Stop it with `stop()` (or shutdown() and server_close()) on every path."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        return app(environ, start_response)

    server = LiveWSGIServer(host, wsgi)
    url = f"http://{host}:{server.server_port}"
    app.config["PUBLIC_URL"] = url
    # A short poll interval: shutdown() waits for it at every test teardown.
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return LiveServer(url=url, app=app, server=server)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    live = start_live_server(app)
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def merchant(app: Flask) -> Merchant:
    """Merchant 11: returns to shop.example, framed by https://shop.example."""
    with app.app_context():
        return merchants.add(merchants.NewMerchant(
            client_id=11,
            name="Shop",
            key=MERCHANT_KEY,
            secret=MERCHANT_SECRET,
            return_hosts=("shop.example",),
            frame_origins=("https://shop.example",),
            webhook_url="https://shop.example/coinspaid/callback",
        ))


def bench_harness() -> ModuleType:
    """bench/bench.py as a module (it is a script, not a package), loaded once."""
    loaded = sys.modules.get("bench_harness")
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(
        "bench_harness", Path(__file__).resolve().parent.parent / "bench" / "bench.py")
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = harness  # dataclasses look their module up there
    spec.loader.exec_module(harness)
    return harness


# Lines a test leaves for the end of the run (e.g. what the scale-out run counted), so that a
# CI log shows what ran, not only that it passed. Under pytest-xdist the test runs in a worker
# whose output nobody sees: the worker hands its lines to the controller when it ends
# (`workeroutput`), and the controller prints them with its own.
SUMMARY = pytest.StashKey[list[str]]()
WORKER_SUMMARY = "checkout_summary_lines"


def summary_line(config: pytest.Config, line: str) -> None:
    workeroutput: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput.setdefault(WORKER_SUMMARY, []).append(line)
    else:
        config.stash.setdefault(SUMMARY, []).append(line)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist, in the controller: a worker ended; keep the lines it left."""
    lines = getattr(node, "workeroutput", {}).get(WORKER_SUMMARY, [])
    node.config.stash.setdefault(SUMMARY, []).extend(lines)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    for line in config.stash.get(SUMMARY, []):
        terminalreporter.write_line(line)


def sql_statements(app: Flask, ask: Callable[[], Any]) -> tuple[Any, list[str]]:
    """What `ask()` answers, and the kind of each SQL statement the app sent meanwhile
    (SELECT, INSERT, ...): what a hot route does, not only what it answers."""
    sent: list[str] = []
    engine = app.extensions[db.EXTENSION + ".engine"]

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        return ask(), sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def flask_requests(app: Flask) -> list[str]:
    """The paths Flask itself handles from now on (front.py answers some before it runs)."""
    seen: list[str] = []

    def count(_sender: Flask, **_extra: Any) -> None:
        seen.append(request.path)

    request_started.connect(count, app, weak=False)
    return seen
