"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via CHECKOUT_DATABASE_URL),
the app, its test client and CLI runner, a live HTTP server, and a merchant."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from hypothesis import HealthCheck, settings
from kit.callbacks import Shop, running_shop, use_shop
from kit.live import LiveServer, start_live_server
from kit.site import MERCHANT_KEY, MERCHANT_SECRET
from sqlalchemy import make_url, text

from checkout import create_app, db, merchants, migrate
from checkout.db import Base
from checkout.models import Merchant
from checkout.sandbox import loopback
from checkout.sandbox import store as sandbox_store
from checkout.web import pagerows

# Hypothesis measures each example against a deadline (200 ms) and its data generation
# against a health check: wall-clock bounds a loaded machine misses. Tests keep theirs off.
settings.register_profile("suite", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# Fixtures the kit defines for tests in more than one module (a deposit customer's address,
# a fresh rate, a shop selling invoices, the templates rendered): offered to every test, as
# if written here; a test module's own fixture of the same name wins.
pytest_plugins = ["kit.deposits", "kit.invoices", "kit.renderings"]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database per test process, built by the migrations themselves: SQLite in the
    process's own temp folder; on PostgreSQL a schema of its own (`tests_gw0`, ...), so that
    pytest-xdist's workers never see each other's rows, truncations or migrations."""
    url = os.environ.get("CHECKOUT_DATABASE_URL")
    if url:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")  # gw0, gw1, ...
        with own_schema(url, f"tests_{worker}") as url:
            migrate.upgrade(url, sandbox=True)
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'checkout.db'}"
    migrate.upgrade(url, sandbox=True)
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
        pagerows.stop(app)  # the listener of page notices, if a poll started it
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


@pytest.fixture
def webhook(app: Flask, merchant: Merchant) -> Iterator[Shop]:
    """Merchant 11's webhook, a real HTTP server that answers 200 and keeps what it got."""
    with running_shop() as shop:
        use_shop(app, shop)
        yield shop




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




