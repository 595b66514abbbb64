"""The floors: a bare Flask app that answers the site's routes with the site's own bytes.

    gunicorn --pythonpath bench bare:app      (BENCH_BARE_SPEC names the answers' file)

`bench/bench.py` records what the site answered (status, every header the app set, body)
for each request it loads and starts this app under the same gunicorn settings: the same
bytes on the wire, apart from what the server itself adds (`Date`, `Server`, lengths).
Whatever the site spends beyond this is the site's own work: database, models, templates.

A route that must write is measured against more than bytes. Its recorded answer names the
work the floor does first (`work`):

- `insert`: one INSERT and commit into a table of its own on the same kind of database
  (BENCH_BARE_DATABASE_URL; SQLite with the site's pragmas: WAL, a busy timeout), with a
  pool as large as the site's. No pre-ping: the floor is the insert itself.
- `call+insert`: first one real HTTP call, as the site's processor client makes it (a
  `requests` session per call, so a new connection), to the cheap `ping` endpoint of a
  stand-in processor of this process's own: like the site's embedded sandbox, a threaded
  werkzeug server on a loopback port, started at the first call in each process. This is
  the floor the goals are judged against: the call's cost when the processor works
  elsewhere, as CoinsPaid does.
- `take+insert`, `invoice+insert`: for the record, the call the route stands for, asked of
  the embedded processor itself, then the insert: `addresses/take` (a link's first click)
  or `invoices/create` with the shop's fields (currency fixed or not), each under a new
  foreign_id. That processor is the site's own sandbox (`checkout`'s app in sandbox mode,
  on the site's database: BENCH_BARE_PROCESSOR_DATABASE_URL), served to this process on a
  loopback port as the site serves it to itself, and called with the site's processor
  client under the merchant's key. Its work is then in the floor as it is in the site, so
  the ratio to this floor rises as the sandbox gets slower: it says how much of a route's
  time is the sandbox's, never whether a goal is met.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from decimal import Decimal
from typing import Any

import requests
from flask import Flask, Response, request
from sqlalchemy import Engine, create_engine, event, text
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

app = Flask("bare")
HOST = "127.0.0.1"
PING = "/sandbox/api/v2/ping"
POOL = 16  # as the site's pool: one connection per gunicorn thread of `make run`
INSERT = text("INSERT INTO bench_floor (note) VALUES (:note)")
ASKING = ("take+insert", "invoice+insert")  # the works that ask the embedded processor


def _load(path: str) -> dict[str, dict[str, Any]]:
    """Answers by "METHOD path"; an alias names the answer another path shares (the many
    pages of a first-view round all answer as the one page recorded for them)."""
    with open(path, encoding="utf-8") as file:
        spec: dict[str, Any] = json.load(file)
    answers: dict[str, dict[str, Any]] = spec["answers"]
    for answer in answers.values():
        answer["body"] = base64.b64decode(answer["body"])
    for alias, key in spec.get("aliases", {}).items():
        answers[alias] = answers[key]
    return answers


ANSWERS = _load(os.environ["BENCH_BARE_SPEC"])


# ---------------------------------------------------------------- the floor's work


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


processor = Flask("bare-processor")


@processor.get(PING)
def ping() -> Response:
    return Response("OK", mimetype="text/plain")


_lock = threading.Lock()
_door: BaseWSGIServer | None = None
_engine: Engine | None = None
_processor_site: Flask | None = None  # the app whose sandbox the embedded floors ask


def door() -> str:
    """This process's sandbox processor, started at the first call (as the site's door)."""
    global _door
    with _lock:
        if _door is None:
            _door = make_server(HOST, 0, processor, threaded=True, request_handler=_Quiet)
            threading.Thread(target=_door.serve_forever, name="bare-processor",
                             daemon=True).start()
        return f"http://{HOST}:{_door.server_port}"


def engine() -> Engine:
    global _engine
    with _lock:
        if _engine is None:
            url = os.environ["BENCH_BARE_DATABASE_URL"]
            if url.startswith("sqlite"):
                _engine = create_engine(
                    url, pool_size=POOL, max_overflow=POOL,
                    connect_args={"timeout": 30, "check_same_thread": False})
                event.listen(_engine, "connect", _sqlite_pragmas)
            else:
                _engine = create_engine(url, pool_size=POOL, max_overflow=POOL)
        return _engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def ping_processor() -> None:
    with requests.Session() as session:
        session.get(door() + PING, timeout=30).raise_for_status()


def embedded_processor() -> Any:
    """The site's processor client against the site's own embedded sandbox, served to this
    process (`checkout` is imported only by a floor that asks it). The app is built once;
    the sandbox's loopback server is this process's (started again after a fork)."""
    global _processor_site
    site = _processor_site
    if site is None:
        with _lock:
            if _processor_site is None:
                from checkout import create_app

                _processor_site = create_app({
                    "DATABASE_URL": os.environ["BENCH_BARE_PROCESSOR_DATABASE_URL"],
                    "INSTANCE_PATH": os.environ["BENCH_BARE_PROCESSOR_INSTANCE"],
                    "SANDBOX": True, "PROCESSOR_URL": None, "SECRET_KEY": "bench-floor"})
            site = _processor_site
    from checkout.processor import ProcessorClient
    from checkout.sandbox import loopback

    base, headers = loopback.endpoint(site, os.environ["BENCH_BARE_ORIGIN"])
    return ProcessorClient(base, os.environ["BENCH_BARE_PROCESSOR_KEY"],
                           os.environ["BENCH_BARE_PROCESSOR_SECRET"], retry_delays=(),
                           headers=headers)


def take_address() -> None:
    embedded_processor().addresses_take("BTC", f"floor-{uuid.uuid4().hex}")


def create_invoice(body: bytes) -> None:
    """The shop's invoice, as the shop sent it to the site, under a new foreign_id."""
    order = json.loads(body)
    embedded_processor().invoices_create(
        foreign_id=f"floor-{uuid.uuid4().hex}", title=order["title"],
        currency=order["currency"], amount=Decimal(order["amount"]),
        url_success=order["url_success"], url_failed=order["url_failed"],
        timer=order.get("timer", False), email_user=order.get("email_user"),
        sender_currency=order.get("sender_currency"))


def insert(note: str) -> None:
    with engine().begin() as conn:
        conn.execute(INSERT, {"note": note})


def work(kind: str) -> None:
    if kind == "none":
        return
    body = request.get_data()
    note = body.decode(errors="replace") or request.full_path
    if kind == "call+insert":
        ping_processor()
    elif kind == "take+insert":
        take_address()
    elif kind == "invoice+insert":
        create_invoice(body)
    insert(note)


# ---------------------------------------------------------------- the routes


def answer(key: str, fallback: str | None = None) -> Response:
    found = ANSWERS.get(key)
    if found is None and fallback is not None:
        found = ANSWERS.get(fallback)
    if found is None:
        return Response(b"not recorded\n", status=404, mimetype="text/plain")
    work(found.get("work", "none"))
    response = Response(found["body"], status=found["status"])
    response.headers.clear()
    for name, value in found["headers"]:
        response.headers.add(name, value)
    return response


@app.get("/p/<page_id>")
def page(page_id: str) -> Response:
    return answer(f"GET /p/{page_id}")


@app.get("/p/<page_id>/status")
def status(page_id: str) -> Response:
    return answer(f"GET /p/{page_id}/status")


@app.get("/p/<page_id>/qr.<fmt>")
def qr(page_id: str, fmt: str) -> Response:
    return answer(f"GET /p/{page_id}/qr.{fmt}")


@app.get("/terminal")
def terminal_link() -> Response:
    # The repeated link is recorded with its query; any other link is a first click.
    return answer(f"GET {request.full_path}", fallback="GET /terminal")


@app.post("/callbacks/coinspaid")
def callback() -> Response:
    return answer("POST /callbacks/coinspaid")


@app.post("/api/v2/invoices/create")
def invoices_create() -> Response:
    fixed = b'"sender_currency"' in request.get_data()
    return answer("POST /api/v2/invoices/create" + (" fixed" if fixed else ""))


# Built as the worker starts, before it takes requests: building an app is no request's
# time (a round without warm-up would otherwise measure it).
if any(found.get("work") in ASKING for found in ANSWERS.values()):
    embedded_processor()
