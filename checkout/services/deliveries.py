"""Callbacks out to merchants: a durable outbox, sent at least once, on the processor's schedule.

A `Delivery` is written in the same transaction as the `Callback` it forwards. Workers
claim one with a conditional UPDATE that sets a lease (checked by rowcount), so several
workers never send the same delivery at the same time, and a worker that dies mid-send
only delays it until its lease runs out. The shop receives CoinsPaid's own bytes and
headers, signed with the merchant's secret, so its existing callback handler just works.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, cast

import click
import requests
from flask import Flask, current_app
from flask.cli import AppGroup
from requests.adapters import HTTPAdapter
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError

from .. import clock, db
from ..models import Callback, Delivery, DeliveryAttempt, Merchant
from ..wire import phpjson, signing

log = logging.getLogger(__name__)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

# Minutes to wait after the 1st, 2nd, ... failed attempt (CoinsPaid's own schedule);
# every later retry waits as long as the last entry.
RETRY_MINUTES = (1, 5, 15, 30, 60, 90, 120, 180, 240)
BATCH = 20
# Bytes of the shop's answer kept with each attempt: enough to read its error, never its page.
EXCERPT = 200


@dataclass(frozen=True)
class Settings:
    timeout: float  # seconds for one POST to the shop
    lease: float  # seconds a claim holds; longer than any POST can take
    max_retries: int  # retries after the first attempt before the delivery is `failed`


@dataclass(frozen=True)
class Attempt:
    """How one POST went; `error` never holds the body, URL or secret."""

    status: int | None
    error: str | None
    excerpt: bytes | None = None  # the first EXCERPT bytes of the shop's answer
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


# The merchant has no webhook now: nothing is sent; the delivery waits on its schedule.
NO_WEBHOOK = Attempt(None, "no webhook URL")


def settings(app: Flask | None = None) -> Settings:
    config = (app or current_app).config
    timeout = float(config["DELIVERY_TIMEOUT"])
    # A lease shorter than the POST timeout would let a second worker send while the
    # first still waits for the shop's answer.
    lease = max(float(config["DELIVERY_LEASE"]), 2 * timeout)
    return Settings(timeout=timeout, lease=lease, max_retries=int(config["DELIVERY_MAX_RETRIES"]))


def retry_delay(failures: int) -> timedelta:
    """Wait after the `failures`-th failed attempt (1-based)."""
    index = min(max(failures, 1), len(RETRY_MINUTES)) - 1
    return timedelta(minutes=RETRY_MINUTES[index])


# ---------------------------------------------------------------------------------------------
# The outbox


def encode(value: Any) -> bytes:
    """The bytes of a callback body we compose ourselves (the shop's invoice events).

    A processor callback is forwarded byte for byte; what the site says itself is PHP's
    `json_encode` exactly (`phpjson`), never another encoder: the shop's PHP plugin
    re-encodes what it receives with json_encode before checking our signature, so only
    PHP's exact bytes pass.
    """
    return phpjson.dumps(value)


# A processor callback's delivery, the one every callback queues: inserted by a statement
# built once, on the session's connection, not by a unit of work of the ORM's.
_DELIVERIES = db.table_of(Delivery)
_QUEUED = ("merchant_id", "callback_id", "url", "body", "state", "attempts", "next_attempt_at",
           "created_at")
QUEUE = insert(_DELIVERIES).values({name: bindparam(name) for name in _QUEUED})


def queued(merchant: Merchant, body: bytes, callback_id: int | None) -> dict[str, Any]:
    """What a delivery holds as it is queued (both ways in share it)."""
    now = clock.now()
    return {"merchant_id": merchant.client_id, "callback_id": callback_id,
            "url": merchant.webhook_url, "body": body, "state": PENDING, "attempts": 0,
            "next_attempt_at": now, "created_at": now}


def enqueue(session: Session, merchant: Merchant, callback: Callback) -> None:
    """Queue a processor callback for the merchant's webhook, byte for byte, in the caller's
    transaction."""
    if not merchant.webhook_url:
        return
    session.connection().execute(QUEUE, queued(merchant, callback.body, callback.id))


def enqueue_body(session: Session, merchant: Merchant, body: bytes, *,
                 callback_id: int | None = None, page_id: str | None = None) -> Delivery | None:
    """Queue `body` for the merchant's webhook (signed when sent), in the caller's transaction.
    `page_id`: the page an event we composed is about (a payment's story lists it)."""
    if not merchant.webhook_url:
        return None
    delivery = Delivery(page_id=page_id, **queued(merchant, body, callback_id))
    session.add(delivery)
    session.flush()
    return delivery


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Pending, due, and held by no worker (or by one whose lease ran out)."""
    return and_(Delivery.state == PENDING, Delivery.next_attempt_at <= now,
                _lease_free(now))


def _lease_free(now: datetime) -> ColumnElement[bool]:
    return or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)


def _not_paused() -> ColumnElement[bool]:
    """The merchant's deliveries are not held (the back office pauses a merchant's)."""
    return Delivery.merchant_id.not_in(
        select(Merchant.client_id).where(Merchant.deliveries_paused_at.is_not(None)))


def due_ids(session: Session, now: datetime, limit: int = BATCH) -> list[int]:
    """The next deliveries to send, taking merchants in turns.

    Each merchant's earliest due delivery comes first, then each one's second, and so on:
    a merchant with a backlog (a shop that was down for a day) fills no batch on its own,
    so one merchant's trouble never holds back another's callbacks. Paused merchants'
    deliveries are not due.
    """
    turn = func.row_number().over(partition_by=Delivery.merchant_id,
                                  order_by=(Delivery.next_attempt_at, Delivery.id))
    due = (select(Delivery.id, Delivery.next_attempt_at, turn.label("turn"))
           .where(_claimable(now), _not_paused())
           .subquery())
    return list(session.scalars(
        select(due.c.id).order_by(due.c.turn, due.c.next_attempt_at, due.c.id)
        .limit(limit)).all())


def claim(session: Session, delivery_id: int, now: datetime, lease: float) -> str | None:
    """Take a due delivery for `lease` seconds; the owner token, or None if another has it.

    The conditional UPDATE is the lock: of several workers only one sees rowcount 1.
    """
    owner = secrets.token_hex(16)
    result = cast(CursorResult[Any], session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, _claimable(now), _not_paused())
        .values(lease_until=now + timedelta(seconds=lease), lease_owner=owner)))
    session.commit()
    return owner if result.rowcount == 1 else None


def reopen_and_claim(session: Session, delivery_id: int, now: datetime,
                     lease: float) -> str | None:
    """Open one delivery for sending now and take it, in one conditional UPDATE (in the
    caller's transaction); the owner token, or None while a worker holds it.

    Re-opening and claiming separately would let a worker take it in between; holding the
    lease from the start means a worker mid-send and this retry never send it together.
    An explicit retry goes out even while the merchant's deliveries are paused: it is how
    a developer tries their fixed webhook before resuming.
    """
    owner = secrets.token_hex(16)
    result = cast(CursorResult[Any], session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, _lease_free(now))
        .values(state=PENDING, next_attempt_at=now,
                # A fresh schedule after a given-up delivery is retried by hand.
                attempts=case((Delivery.state == FAILED, 0), else_=Delivery.attempts),
                lease_until=now + timedelta(seconds=lease), lease_owner=owner)
        .execution_options(synchronize_session=False)))
    return owner if result.rowcount == 1 else None


# ---------------------------------------------------------------------------------------------
# Sending


# The deadline of the POST under way in this thread, for the sockets it opens.
_current = threading.local()


class Deadline:
    """Shuts the sockets of one POST when its time is up, whatever the shop still sends.

    requests' timeout bounds each read, not the answer: a shop trickling a header byte at a
    time would hold the worker past its lease, and a second worker would send the same
    delivery while the first still waits.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _hang_up(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _hang_up(sock)

    def __enter__(self) -> Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._timer.cancel()
        _current.deadline = None


def _hang_up(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv; close() alone would not
    except OSError:
        pass  # already closed


def _watched(sock: socket.socket) -> socket.socket:
    deadline: Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)
    return sock


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _watched(super()._new_conn())


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        # The raw socket, before TLS: a handshake dripped byte by byte is cut off too.
        return _watched(super()._new_conn())


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    """requests as usual (proxies, certificates), with every socket under the deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool,
                                                   "https": _WatchedHTTPSPool}


def post(url: str, body: bytes, merchant: Merchant, timeout: float) -> Attempt:
    """One signed POST, exactly as CoinsPaid sends callbacks, over within `timeout` seconds."""
    headers = {
        "Content-Type": "application/json",
        "X-Processing-Key": merchant.api_key,
        "X-Processing-Signature": signing.sign(body, merchant.api_secret),
    }
    started = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - started) * 1000)

    with requests.Session() as http, Deadline(timeout) as deadline:
        adapter = _DeadlineAdapter()
        http.mount("http://", adapter)
        http.mount("https://", adapter)
        try:
            # stream=True: only the status and the answer's first bytes matter; the rest is
            # never read, so a huge or endless answer cannot hold the worker.
            response = http.post(url, data=body, headers=headers, timeout=timeout,
                                 allow_redirects=False, stream=True)
        except requests.RequestException as exc:
            # The class name says what went wrong; the message may carry the URL.
            if deadline.expired and not isinstance(exc, requests.Timeout):
                return Attempt(None, "ReadTimeout", duration_ms=took())
            return Attempt(None, type(exc).__name__, duration_ms=took())
        excerpt = _first_bytes(response)
        response.close()
        if deadline.expired:
            # Cut off mid-headers, http.client takes the end of the socket for the end of
            # the headers: what it parsed is no answer.
            return Attempt(None, "ReadTimeout", duration_ms=took())
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return Attempt(response.status_code, error, excerpt, took())


def _first_bytes(response: requests.Response) -> bytes | None:
    """The start of the shop's answer, under the same deadline as the POST (a shop that
    drips it is cut off with the rest); what could not be read is simply not kept."""
    try:
        return bytes(response.raw.read(EXCERPT, decode_content=False)) or None
    except (OSError, HTTPError, requests.RequestException):
        return None  # a failure to read the answer loses the excerpt, nothing else


def record(session: Session, delivery: Delivery, owner: str, attempt: Attempt,
           config: Settings, url: str | None = None) -> None:
    """Write the attempt's result, if our claim still stands (and where it was sent)."""
    now = clock.now()
    attempts = delivery.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts, "last_status": attempt.status, "last_error": attempt.error,
        "lease_until": None, "lease_owner": None,
    }
    if url is not None:
        values["url"] = url
    if attempt.ok:
        values.update(state=DELIVERED, delivered_at=now)
    elif attempts > config.max_retries:
        values.update(state=FAILED)
    else:
        values.update(next_attempt_at=now + retry_delay(attempts))
    result = cast(CursorResult[Any], session.execute(
        update(Delivery).where(Delivery.id == delivery.id, Delivery.lease_owner == owner)
        .values(**values)))
    # The POST happened whether or not the claim still stood: the attempt is kept either way.
    session.add(DeliveryAttempt(
        delivery_id=delivery.id, at=now, status=attempt.status, excerpt=attempt.excerpt,
        duration_ms=attempt.duration_ms, error=attempt.error,
        next_attempt_at=values.get("next_attempt_at")))
    session.commit()
    if result.rowcount != 1:
        log.warning("delivery %s: lease lost before the result was written", delivery.id)


def send_claimed(session: Session, delivery_id: int, owner: str, config: Settings) -> Attempt:
    delivery = session.get(Delivery, delivery_id, populate_existing=True)
    # Fresh from the database: the webhook URL and secret may have changed since this
    # session last read the merchant (sessions keep objects across commits).
    merchant = session.get(Merchant, delivery.merchant_id,
                           populate_existing=True) if delivery else None
    if delivery is None or merchant is None:
        raise LookupError(f"delivery {delivery_id} vanished")
    # The merchant's webhook as it is now, not as it was when the callback came in: a
    # merchant who moved or dropped its handler must not have callbacks sent to the old one.
    url = merchant.webhook_url
    # No transaction stays open while we wait for the shop.
    session.commit()
    if url:
        attempt = post(url, delivery.body, merchant, config.timeout)
    else:
        attempt = NO_WEBHOOK
    record(session, delivery, owner, attempt, config, url)
    log.info("delivery %s to merchant %s: attempt %s, %s", delivery.id, merchant.client_id,
             delivery.attempts + 1, attempt.error or attempt.status)
    return attempt


def run_due(limit: int = BATCH) -> int:
    """Worker task: send every due delivery this worker can claim; how many were sent."""
    config = settings()
    session = db.session()
    sent = 0
    # A merchant whose shop just failed is not tried again in this run: its other
    # deliveries would most likely fail too, each after a timeout that others wait for.
    failing: set[int] = set()
    for delivery_id, merchant_id in _with_merchants(session, due_ids(session, clock.now(),
                                                                      limit)):
        if merchant_id in failing:
            continue
        owner = claim(session, delivery_id, clock.now(), config.lease)
        if owner is None:
            continue
        if not send_claimed(session, delivery_id, owner, config).ok:
            failing.add(merchant_id)
        sent += 1
    return sent


def _with_merchants(session: Session, ids: list[int]) -> list[tuple[int, int]]:
    """(delivery id, merchant id) in the order of `ids`."""
    merchant_of = dict(session.execute(
        select(Delivery.id, Delivery.merchant_id).where(Delivery.id.in_(ids))).all())
    return [(i, merchant_of[i]) for i in ids if i in merchant_of]


def retry_now(delivery_id: int) -> Attempt:
    """Send one delivery again at once; re-opens a failed or delivered one."""
    config = settings()
    session = db.session()
    if session.get(Delivery, delivery_id) is None:
        raise LookupError(f"no delivery {delivery_id}")
    owner = reopen_and_claim(session, delivery_id, clock.now(), config.lease)
    session.commit()
    if owner is None:
        raise RuntimeError(f"delivery {delivery_id} is being sent by a worker right now")
    return send_claimed(session, delivery_id, owner, config)


# ---------------------------------------------------------------------------------------------
# CLI


def listing(session: Session, include_all: bool) -> list[Delivery]:
    query = select(Delivery).order_by(Delivery.id)
    if not include_all:
        query = query.where(Delivery.state != DELIVERED)
    return list(session.scalars(query).all())


def operator_line(delivery: Delivery) -> str:
    """One line for operators: never the body, the URL or anything secret."""
    last = delivery.last_error or (str(delivery.last_status) if delivery.last_status else "-")
    next_at = delivery.next_attempt_at.isoformat(timespec="seconds") \
        if delivery.state == PENDING else "-"
    return (f"{delivery.id}\tmerchant {delivery.merchant_id}\t{delivery.state}\t"
            f"attempts {delivery.attempts}\tnext {next_at}\tlast {last}")


deliveries_cli = AppGroup("deliveries", help="Callbacks forwarded to merchants (the outbox).")


@deliveries_cli.command("list")
@click.option("--all", "include_all", is_flag=True, help="Include delivered ones.")
def list_command(include_all: bool) -> None:
    """Show deliveries that are pending or failed."""
    rows = listing(db.session(), include_all)
    if not rows:
        click.echo("no deliveries pending or failed")
    for row in rows:
        click.echo(operator_line(row))


@deliveries_cli.command("retry")
@click.argument("delivery_id", type=int)
def retry_command(delivery_id: int) -> None:
    """Send one delivery again now (also re-opens a failed one)."""
    try:
        attempt = retry_now(delivery_id)
    except (LookupError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    if attempt.ok:
        click.echo(f"delivery {delivery_id}: delivered (HTTP {attempt.status})")
    else:
        click.echo(f"delivery {delivery_id}: not delivered ({attempt.error}), will retry")


def init_app(app: Flask) -> None:
    """Register the `deliveries` CLI (its worker task is in the factory's list)."""
    app.cli.add_command(deliveries_cli)
