"""Processor callbacks in: `POST /callbacks/coinspaid` reads the raw bytes, authenticates them,
hands them to the news engine (services/news.py) and answers.

It answers 200 only once the callback and its outbox delivery are committed, so the processor
keeps retrying until we really hold it. A signed callback that is plainly well formed is
taken in front of Flask with the same work (`keep`; callback_front.py); this route answers
the rest, and a failure of the front's, as its own (`FRONT_FAILED`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Flask, jsonify, request
from flask.typing import ResponseReturnValue

from .. import auth, db, text
from ..auth import BAD_CONTENT, Refusal
from ..models import Callback, Merchant
from ..services import news
from ..text import NotText
from . import request_auth
from .request_auth import refuse

log = logging.getLogger(__name__)
bp = Blueprint("callbacks", __name__)

# The largest callbacks (many invoice instalments) stay far below this; a bound keeps a
# hostile sender from making us buffer and hash megabytes before the signature check.
MAX_BODY = 256 * 1024


# SQLite has one writer at a time, and a connection that finds the write lock taken sleeps
# in its busy handler, in steps of up to 100 ms, whether or not the lock is free again
# meanwhile: sixteen threads of a process racing for it spent most of their time asleep
# with the lock idle. Taking turns on a lock of the process first, each callback's
# transaction starts as the one before it commits. PostgreSQL locks rows, not the database:
# there callbacks about different payments are applied side by side.
_SQLITE_WRITER = threading.Lock()


@contextmanager
def writers_turn() -> Iterator[None]:
    """This process's turn to write, on SQLite (held until the caller's commit returns)."""
    if db.engine().dialect.name != "sqlite":
        yield
        return
    with _SQLITE_WRITER:
        yield


# In the environ of a callback whose taking failed in front of Flask before it was kept: the
# error, raised again here as if this view had met it (the same answer, logged once), not
# a second try that would wait out a lost database's timeout twice.
FRONT_FAILED = "checkout.callback_front.failed"


@bp.post("/callbacks/coinspaid")
def receive() -> ResponseReturnValue:
    failed: Exception | None = request.environ.pop(FRONT_FAILED, None)
    if failed is not None:
        raise failed
    # Set before the body is read: Werkzeug then refuses a longer body with 413.
    request.max_content_length = MAX_BODY
    # Raw bytes whatever the Content-Type says: the signature covers exactly these.
    raw = request.get_data(cache=False, parse_form_data=False)
    merchant = request_auth.authenticate_request(raw)  # once per request: the limiter asks it too
    if isinstance(merchant, Refusal):
        log.warning("callback refused: %s", merchant.code)
        return refuse(merchant)
    try:
        payload = auth.parse_object(raw)
    except NotText as exc:
        log.warning("signed callback for merchant %s has no text in %s", merchant.client_id,
                    exc.field)
        return jsonify(errors={exc.field: text.message(exc.field)}), 400
    if payload is None:
        log.warning("signed callback for merchant %s is not a JSON object", merchant.client_id)
        return refuse(BAD_CONTENT)
    log_kept(keep(merchant, raw, payload), merchant)
    return jsonify(status="ok")


def keep(merchant: Merchant, raw: bytes, payload: dict[str, Any]) -> Callback:
    """Keep, apply and queue a signed callback: committed when this returns, before the
    caller answers 200. The route's work, and callback_front.py's for the callbacks it
    answers before Flask."""
    with writers_turn(), db.transaction() as session:
        return news.absorb(session, merchant, raw, payload, source="processor")


def log_kept(callback: Callback, merchant: Merchant) -> None:
    log.info("callback %s for merchant %s: %s", callback.id, merchant.client_id,
             callback.outcome)


def init_app(app: Flask) -> None:
    """Register the processor-callback blueprint (exempt from CSRF: it is signed instead)."""
    app.register_blueprint(bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(bp)
