"""Merchant 11's credentials, and what the site did meanwhile: the SQL it sent, the requests
Flask itself handled; the benchmark's harness."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from flask import Flask, request, request_started
from sqlalchemy import event

from checkout import db
from kit import direct_reads

MERCHANT_KEY = "test-key-11"


MERCHANT_SECRET = "test-secret-11"


BENCH = Path(__file__).resolve().parents[2] / "bench"


def bench_harness() -> ModuleType:
    """bench/bench.py as a module (it is a script, not a package), loaded once."""
    loaded = sys.modules.get("bench_harness")
    return loaded if loaded is not None else script_module(BENCH / "bench.py", "bench_harness")


def script_module(path: Path, name: str) -> ModuleType:
    """The script at `path` run as a new module `name` (registered in `sys.modules`, where
    dataclasses look their module up; a test that loads one again pops it)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def sql_statements(app: Flask, ask: Callable[[], Any]) -> tuple[Any, list[str]]:
    """What `ask()` answers, and the kind of each SQL statement the app sent meanwhile
    (SELECT, INSERT, ...): what a hot route does, not only what it answers."""
    sent: list[str] = []
    engine = app.extensions[db.EXTENSION + ".engine"]

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    try:
        with direct_reads.heard(engine, lambda sql: record(None, None, sql)):
            return ask(), sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


Layer = TypeVar("Layer")


def layer_of(app: Flask, kind: type[Layer]) -> Layer:
    """The app's WSGI layer of `kind`: one of the fronts that answer before Flask (each
    holds the next as `inner`; a proxy fix outside them, as `app`)."""
    layer: Any = app.wsgi_app
    while not isinstance(layer, kind):
        layer = layer.inner if hasattr(layer, "inner") else layer.app
    return layer


def flask_requests(app: Flask) -> list[str]:
    """The paths Flask itself handles from now on (front.py answers some before it runs)."""
    seen: list[str] = []

    def count(_sender: Flask, **_extra: Any) -> None:
        seen.append(request.path)

    request_started.connect(count, app, weak=False)
    return seen
