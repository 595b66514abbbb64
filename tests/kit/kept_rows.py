"""Pages' rows kept per process (checkout/web/pagerows.py), for tests that count reads: a
process keeps rows only once its listener of page notices listens (PostgreSQL) or it follows
the change log (SQLite)."""

from __future__ import annotations

from flask import Flask

from checkout import page_notices
from checkout.web import pagerows
from kit.live import wait_until


def listening(app: Flask) -> pagerows.PageRows | None:
    """The app's kept rows with their listener listening; None where none are kept."""
    rows = pagerows.rows(app)
    if rows is None:
        return None
    listener = rows.listening()
    assert listener is not None
    wait_until(lambda: listener.live, what="the page notices' listener listening")
    return rows


def forget_all(app: Flask) -> None:
    """Whatever the app's process keeps of pages is forgotten: their next request reads."""
    rows = pagerows.rows(app)
    if rows is not None:
        rows.forget(frozenset({page_notices.EVERY}))
