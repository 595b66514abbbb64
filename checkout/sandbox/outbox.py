"""Callbacks out: an outbox table, signed at send time, retried on the processor's schedule.

A worker claims a due row with a conditional UPDATE before posting it, so two workers
never send the same callback at the same moment; a claim lapses if its worker dies.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from flask import Flask, current_app, has_request_context, request
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from checkout.wire import phpjson, signing

from . import clock, payloads, store

log = logging.getLogger(__name__)
CALLBACK_PATH = "/callbacks/coinspaid"
# Minutes after each failed attempt (CoinsPaid, 2026): 12 retries after the first try.
RETRY_MINUTES = (1, 5, 15, 30, 60, 90, 120, 180, 240, 240, 240, 240)
CLAIM_SECONDS = 60
BATCH = 50


def notify_url() -> str | None:
    """The site's callback endpoint, as seen now: PUBLIC_URL, else the calling request's host."""
    base: str | None = current_app.config.get("PUBLIC_URL")
    if not base and has_request_context():
        base = request.host_url
    return base.rstrip("/") + CALLBACK_PATH if base else None


def queue(session: Session, op: store.Operation, now: int) -> store.Callback | None:
    """Queue the callback for the operation's current state, due at once.

    Written as PHP's json_encode writes it: the processor's merchants' PHP plugins re-encode
    a callback before checking its signature.
    """
    account = session.get(store.Account, op.client_id)
    assert account is not None
    url = account.callback_url or op.notify_url
    if not url:
        log.warning("sandbox: no callback URL for operation %s; callback dropped", op.id)
        return None
    callback = store.Callback(
        client_id=op.client_id, operation_id=op.id, status=op.status, url=url,
        body=phpjson.dumps(payloads.build(session, op)).decode("ascii"), attempts=0,
        next_attempt_at=now, created_at=now)
    session.add(callback)
    return callback


def _claim(app: Flask, callback_id: int) -> store.Callback | None:
    with store.transaction(app) as session:
        now = clock.now(session, app)
        claimed = session.execute(
            update(store.Callback)
            .where(store.Callback.id == callback_id, store.Callback.delivered_at.is_(None),
                   store.Callback.next_attempt_at <= now,
                   or_(store.Callback.claimed_until.is_(None),
                       store.Callback.claimed_until < now))
            .values(claimed_until=now + CLAIM_SECONDS))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return session.get(store.Callback, callback_id)


def _post(app: Flask, callback: store.Callback, key: str, secret: str) -> str | None:
    """Send one callback; None when the site answered 200, else why not."""
    body = callback.body.encode("utf-8")
    headers = {"Content-Type": "application/json", "X-Processing-Key": key,
               "X-Processing-Signature": signing.sign(body, secret),
               "User-Agent": "checkout-sandbox/1"}
    timeout = float(app.config.get("SANDBOX_CALLBACK_TIMEOUT", 5))
    try:
        response = requests.post(callback.url, data=body, headers=headers, timeout=timeout,
                                 allow_redirects=False)
    except requests.RequestException as exc:
        return f"{type(exc).__name__}"
    return None if response.status_code == 200 else f"HTTP {response.status_code}"


def _record(app: Flask, callback_id: int, failure: str | None) -> None:
    with store.transaction(app) as session:
        now = clock.now(session, app)
        callback = session.get(store.Callback, callback_id, with_for_update=True)
        assert callback is not None
        callback.attempts += 1
        callback.claimed_until = None
        callback.last_error = failure
        if failure is None:
            callback.delivered_at = now
        elif callback.attempts > len(RETRY_MINUTES):
            callback.next_attempt_at = None  # given up, as the processor does
        else:
            callback.next_attempt_at = now + 60 * RETRY_MINUTES[callback.attempts - 1]


def send_due(app: Flask) -> int:
    """Worker task: post every due callback once; returns how many were attempted."""
    with store.transaction(app) as session:
        now = clock.now(session, app)
        due = session.scalars(
            select(store.Callback.id)
            .where(store.Callback.delivered_at.is_(None),
                   store.Callback.next_attempt_at <= now,
                   or_(store.Callback.claimed_until.is_(None),
                       store.Callback.claimed_until < now))
            .order_by(store.Callback.id).limit(BATCH)).all()
    sent = 0
    for callback_id in due:
        callback = _claim(app, callback_id)
        if callback is None:
            continue
        with store.transaction(app) as session:
            account = session.get(store.Account, callback.client_id)
            assert account is not None
            key, secret = account.api_key, account.api_secret
        _record(app, callback_id, _post(app, callback, key, secret))
        sent += 1
    return sent


def pending(app: Flask) -> list[dict[str, Any]]:
    """Undelivered callbacks (for tests and the demo)."""
    with store.transaction(app) as session:
        rows = session.scalars(select(store.Callback).where(store.Callback.delivered_at.is_(None))
                               .order_by(store.Callback.id)).all()
        return [{"id": r.id, "operation_id": r.operation_id, "status": r.status, "url": r.url,
                 "attempts": r.attempts, "next_attempt_at": r.next_attempt_at,
                 "last_error": r.last_error} for r in rows]
