"""The sandbox's own clock: real time plus an offset kept in the database.

Every process (site, worker, tests) reads the same offset, so advancing the clock in a
test moves confirmations, invoice timers, rate limits and callback retries everywhere.
`app.config["SANDBOX_BASE_CLOCK"]` (a callable returning unix seconds) replaces real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy import update
from sqlalchemy.orm import Session

from . import store

_ROW = 1


def _base(app: Flask) -> int:
    base: Callable[[], float] | None = app.config.get("SANDBOX_BASE_CLOCK")
    return int((base or time.time)())


def _offset(session: Session) -> int:
    row = session.get(store.Clock, _ROW)
    return row.offset_seconds if row is not None else 0


def now(session: Session, app: Flask | None = None) -> int:
    """Unix seconds on the sandbox clock."""
    return _base(app or current_app) + _offset(session)


def advance(app: Flask, seconds: int) -> int:
    """Move the sandbox clock forward (never back); returns the new time."""
    if seconds < 0:
        raise ValueError("the sandbox clock only moves forward")
    with store.transaction(app) as session:
        changed = session.execute(
            update(store.Clock).where(store.Clock.id == _ROW)
            .values(offset_seconds=store.Clock.offset_seconds + seconds))
        if changed.rowcount == 0:  # type: ignore[attr-defined]
            session.add(store.Clock(id=_ROW, offset_seconds=seconds))
    with store.transaction(app) as session:
        return now(session, app)
