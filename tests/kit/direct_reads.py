"""The reads in front of Flask go to the driver directly (db.DirectRead), past the engine's
events: a test that counts an engine's statements hears them here as well."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from checkout import db


@contextmanager
def heard(engine: Engine, note: Callable[[str], None]) -> Iterator[None]:
    """`note(sql)` for each direct read on `engine` inside the block, as it is sent."""
    real = db.DirectRead.execute

    def noted(read: db.DirectRead, params: dict[str, Any]) -> Any:
        if read.engine is engine:
            note(read.sql)
        return real(read, params)

    db.DirectRead.execute = noted  # type: ignore[method-assign]
    try:
        yield
    finally:
        db.DirectRead.execute = real  # type: ignore[method-assign]
