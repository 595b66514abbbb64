"""Counting what a test made: rows of a model, in the app's own database; statements run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import event, func, select

from checkout import db
from kit import direct_reads


def count(app: Flask, model: type[Any]) -> int:
    """How many rows `model` has now."""
    with app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(model)) or 0)


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine runs inside the block, in order."""
    engine = app.extensions[db.EXTENSION + ".engine"]
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        with direct_reads.heard(engine, seen.append):
            yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)
