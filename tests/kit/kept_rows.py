"""Pages' rows kept per process on PostgreSQL (checkout/web/pagerows.py), for tests that
count reads: a process keeps rows only once its listener of page notices listens."""

from __future__ import annotations

from flask import Flask

from checkout.web import pagerows
from kit.live import wait_until


def listening(app: Flask) -> pagerows.PageRows | None:
    """The app's kept rows with their listener listening; None where none are kept
    (SQLite)."""
    rows = pagerows.rows(app)
    if rows is None:
        return None
    listener = rows.listening()
    assert listener is not None
    wait_until(lambda: listener.live, what="the page notices' listener listening")
    return rows
