"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via CHECKOUT_DATABASE_URL),
the app, its test client and CLI runner, a live HTTP server, and a merchant."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask, request, request_started
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import event, text
from werkzeug.serving import BaseWSGIServer, make_server

from checkout import create_app, db, merchants, migrate
from checkout.db import Base
from checkout.models import Merchant
from checkout.sandbox import loopback
from checkout.sandbox import store as sandbox_store

MERCHANT_KEY = "test-key-11"
MERCHANT_SECRET = "test-secret-11"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One schema per test session, built by the migrations themselves."""
    url = os.environ.get("CHECKOUT_DATABASE_URL")
    if url:
        engine = db.make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'checkout.db'}"
    migrate.upgrade(url, sandbox=True)
    yield url


def wait_until(condition: Callable[[], bool], seconds: float = 10, *, what: str = "",
               tick: Callable[[], None] | None = None) -> None:
    """Return as soon as `condition()` holds; fail after `seconds`. A fixed sleep is too short
    on a loaded machine and time lost on an idle one. `tick` pauses between checks: browser
    tests pass the page's own wait, since Playwright hands page events (requests) to Python
    only while it is called."""
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


@dataclass
class LiveServer:
    url: str
    app: Flask
    server: BaseWSGIServer


def start_live_server(app: Flask, host: str = "127.0.0.1") -> LiveServer:
    """Serve `app` over real HTTP on a free port, in a thread; PUBLIC_URL points at it."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        return app(environ, start_response)

    server = make_server(host, 0, wsgi, threaded=True)
    url = f"http://{host}:{server.server_port}"
    app.config["PUBLIC_URL"] = url
    # A short poll interval: shutdown() waits for it at every test teardown.
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return LiveServer(url=url, app=app, server=server)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    live = start_live_server(app)
    yield live
    live.server.shutdown()
    live.server.server_close()


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
# CI log shows what ran, not only that it passed.
SUMMARY = pytest.StashKey[list[str]]()


def summary_line(config: pytest.Config, line: str) -> None:
    config.stash.setdefault(SUMMARY, []).append(line)


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
