"""`make bench`: every route of a sale under gunicorn, each against its floor, with wrk.

    .venv/bin/python bench/bench.py [--rounds 3] [--seconds 2] [--routes status,page,...]

The site runs under gunicorn with the settings `make run` uses (read from the Makefile's
`run` recipe), in sandbox mode, on a fresh SQLite database in a temporary folder; when
CHECKOUT_DATABASE_URL names a PostgreSQL database, again there, in a schema of its own that
is dropped afterwards. Other CHECKOUT_* settings of the environment are not passed on, so
that runs compare. A merchant and its pages are made through real terminal links and the
real `invoices/create`.

Each route is measured against a floor (bench/bare.py, a bare Flask app under the same
gunicorn settings answering the very bytes the site answered): the bare app alone for what
only reads; the bare app plus one INSERT and commit (on the same kind of database) for
callback intake; plus, before it, one real HTTP call to a sandbox processor for a link's
first click and `invoices/create`, which must ask the processor. wrk (Debian's package),
another process on loopback, loads the site and its floor in alternating rounds, route
after route, so that a neighbour's load on the machine hits both alike. Requests that may
be made once only (first clicks, invoice creations, callbacks) are signed up front, each
once, and sent once from a file by wrk's Lua (bench/requests.lua).

A page's first view is measured on pages made before the round and never viewed, more of
them than the site keeps renderings of (CHECKOUT_PAGE_CACHE_SIZE), cycled so that no view
finds its process's own kept rendering. The status poll is measured again with the limits
in Redis (a redis-server of the bench's own on a free loopback port), when one is installed.
After a callback, the bench times how long until the page's status poll shows it. No
`flask worker` runs unless --worker: then one runs beside the site during the callback
rounds, as `make run` runs it (paused while the floor is loaded), forwarding to a shop
endpoint of the bench's own, so that work a callback leaves for later is done and counted.

It prints, per database, requests/s and latency per route, the ratio to its floor and
whether its goal is met; the page's weight; memory per worker; how many customers polling at
the page's own cadence this machine holds. It exits 0 either way; it kills every process it
starts, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import gzip
import hashlib
import json
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from checkout import create_app, db, merchants, migrate, terminal
from checkout.wire import signing

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "requests.lua"
HOST = "127.0.0.1"  # loopback only, always

CLIENT_ID = 11
KEY = "bench-key"
SECRET = "bench-secret"
# The pages every GET route cycles through: a conversion to EUR, another coin, a tag.
PAGE_LINKS = [
    {"client_id": CLIENT_ID, "currency": "BTC", "foreign_id": "bench-1", "amount": "0.00123",
     "convert_to": "EUR", "url_back": "https://shop.example/back"},
    {"client_id": CLIENT_ID, "currency": "LTC", "foreign_id": "bench-2", "amount": "0.5",
     "url_back": "https://shop.example/back"},
    {"client_id": CLIENT_ID, "currency": "XRP", "foreign_id": "bench-3", "amount": "25"},
]
# An invoice as a shop creates it; with the currency fixed (and a timer), the page waits
# for the payment; without, it first offers the currency picker.
ORDER = {"timer": False, "title": "Order", "currency": "EUR", "amount": "35",
         "url_success": "https://shop.example/paid", "url_failed": "https://shop.example/failed",
         "email_user": "buyer@example.com"}
FIXED = {"timer": True, "sender_currency": "BTC"}
# Callbacks are spread over pages of their own, so that the measured pages never change, and
# over enough of them that a page collects a handful of transactions in a run, as real
# pages do (applying one reads its page's transactions: hundreds on one page would measure
# a page no customer has).
CALLBACK_PAGES = 128
CALLBACK_AMOUNT = "0.00001000"
# The news probe's callbacks: pages of their own, processor ids far from the intake's.
NEWS_PAGES = 8
NEWS_IDS = 1_900_000_000  # below 2**31: some processor-id columns are 32-bit today
NEWS_POLL_S = 0.05  # 20 polls a second at most: the probe must not load the site itself
NEWS_PATIENCE_S = 5.0  # five times the goal: later is "never" here
LIMITS_RAISED = ("RATELIMIT_LINKS", "RATELIMIT_PAGES", "RATELIMIT_STATUS", "RATELIMIT_API")
UNREACHED = "100000000 per minute"
FIRST_VIEWS = 200  # pages of each kind made for the first-view rounds
SETUP_THREADS = 8  # concurrent requests while making them

BARE, INSERT, CALL_INSERT = "bare", "bare+insert", "bare+call+insert"
WORK = {BARE: "none", INSERT: "insert", CALL_INSERT: "call+insert"}


@dataclass(frozen=True)
class Route:
    label: str
    floor: str  # BARE, INSERT or CALL_INSERT
    goal: float  # the least ratio to the floor that meets the goal


ROUTES = {
    "status": Route("status poll", BARE, 0.8),
    "page": Route("page viewed again", BARE, 0.8),
    "first": Route("page, first view", BARE, 0.8),
    "picker": Route("invoice page, first (picker)", BARE, 0.8),
    "waiting": Route("invoice page, first (waiting)", BARE, 0.8),
    "qr": Route("QR image (SVG)", BARE, 0.8),
    "link": Route("terminal link, repeated", BARE, 0.5),
    "click": Route("terminal link, first click", CALL_INSERT, 0.5),
    "create": Route("invoices/create, pick later", CALL_INSERT, 0.5),
    "create-fixed": Route("invoices/create, fixed", CALL_INSERT, 0.5),
    "callbacks": Route("callback intake", INSERT, 0.5),
    "redis": Route("status poll, Redis limits", BARE, 0.8),
}
UNIQUE = ("click", "create", "create-fixed", "callbacks")  # each request sent once
NEWS_GOAL_S = 1.0
KB = 1024
TARGET_PAGE_GZIP = 30 * KB
TARGET_SCRIPT = 8 * KB


class BenchError(RuntimeError):
    """The bench cannot go on; the message says why."""


# ---------------------------------------------------------------- processes


def _die_with_parent() -> None:
    """Linux: a child gets SIGTERM if the bench itself is killed without a chance to clean up."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _killed_with_parent() -> None:
    """As _die_with_parent, for a child the bench may pause: a stopped process keeps a
    SIGTERM pending, never a SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclass
class Processes:
    """Every process the bench starts, each in a session of its own, all stopped at the end."""

    started: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, args: list[str], *, env: dict[str, str], log: Path,
              cwd: Path = ROOT, pausable: bool = False) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(
                args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_killed_with_parent if pausable else _die_with_parent)
        self.started.append((name, process))
        print(f"  started {name} (pid {process.pid})", flush=True)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """One of them, now (its group); stop_all still reports it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
            os.killpg(process.pid, signal.SIGCONT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for _name, process in reversed(self.started):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                    os.killpg(process.pid, signal.SIGCONT)  # a paused one takes it now
        deadline = time.monotonic() + 10
        for _name, process in self.started:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.started:
            names = ", ".join(f"{name} (pid {p.pid})" for name, p in self.started)
            print(f"stopped: {names}; all exited", flush=True)
        self.started.clear()


@contextlib.contextmanager
def paused(process: subprocess.Popen[bytes] | None) -> Iterator[None]:
    """The process (its whole group) stopped meanwhile, and continued on every path."""
    if process is None or process.poll() is not None:
        yield
        return
    os.killpg(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGCONT)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def gunicorn_flags() -> list[str]:
    """The gunicorn options of the Makefile's `run` recipe, but its --bind."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.M)
    if recipe is None:
        raise BenchError("no `run` recipe in the Makefile")
    joined = recipe.group(1).replace("\\\n", " ")
    found = re.search(r"gunicorn\s+(.*?)\s+wsgi:app", joined, re.S)
    if found is None:
        raise BenchError("the Makefile's `run` recipe starts no gunicorn")
    words = shlex.split(found.group(1))
    flags: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--bind" or word == "-b":
            skip = True
        elif not word.startswith("--bind="):
            flags.append(word)
    if any("$" in word for word in flags):
        raise BenchError(f"cannot read the Makefile's gunicorn options: {flags}")
    return flags


def without_workers(flags: list[str]) -> list[str]:
    """`flags` without any worker count of their own (`--workers N`, `-w N`, `--workers=N`)."""
    kept: list[str] = []
    skip = False
    for word in flags:
        if skip:
            skip = False
        elif word in ("--workers", "-w"):
            skip = True
        elif not word.startswith("--workers="):
            kept.append(word)
    return kept


def flask() -> str:
    found = Path(sys.executable).parent / "flask"
    if not found.exists():
        raise BenchError(f"flask is not installed beside {sys.executable} (make .venv/.run)")
    return str(found)


def gunicorn() -> str:
    found = Path(sys.executable).parent / "gunicorn"
    if not found.exists():
        raise BenchError(f"gunicorn is not installed beside {sys.executable} (make .venv/.run)")
    return str(found)


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{url} exited with {process.returncode}:\n{tail(log)}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.1)
    raise BenchError(f"{url} did not answer within 60 s:\n{tail(log)}")


def tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def worker_rss(master: int) -> list[int]:
    """Resident memory (bytes) of each gunicorn worker, the master's children, from /proc."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        children = [entry.name for entry in Path("/proc").iterdir() if entry.name.isdigit()
                    and _parent_of(entry.name) == master]
    sizes = []
    for pid in children:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) * 1024)
    return sizes


def _parent_of(pid: str) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


# ---------------------------------------------------------------- databases


@dataclass
class Database:
    name: str
    url: str
    drop: Callable[[], None] = lambda: None


@contextlib.contextmanager
def fresh_database(kind: str, folder: Path, base: str) -> Iterator[Database]:
    """`base`: the PostgreSQL URL the environment named (CHECKOUT_DATABASE_URL)."""
    if kind == "sqlite":
        yield Database("SQLite", f"sqlite:///{folder / 'bench.db'}")
        return
    if not base.startswith("postgresql"):
        raise BenchError("PostgreSQL needs CHECKOUT_DATABASE_URL=postgresql+psycopg://…")
    with schema_of_its_own(base) as url:
        yield Database("PostgreSQL", url)


@contextlib.contextmanager
def schema_of_its_own(base: str, prefix: str = "bench") -> Iterator[str]:
    """A fresh schema in the PostgreSQL database `base` names, dropped afterwards, and the URL
    that works inside it: nothing of anyone else's is touched, and no CREATEDB is needed."""
    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    engine = db.make_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def prepare(database: Database, folder: Path, shop_callbacks: str) -> None:
    """Schema by the migrations; the merchant (and its sandbox account), as `merchant add`."""
    migrate.upgrade(database.url, sandbox=True)
    app = create_app({"DATABASE_URL": database.url, "INSTANCE_PATH": str(folder / "instance"),
                      "SANDBOX": True, "PROCESSOR_URL": None, "SECRET_KEY": "bench"})
    with app.app_context():
        merchants.add(merchants.NewMerchant(
            CLIENT_ID, "Bench shop", KEY, SECRET, ("shop.example",), (), shop_callbacks))
    app.extensions[db.EXTENSION].remove()
    app.extensions[db.EXTENSION + ".engine"].dispose()


def callback_outcomes(url: str) -> dict[str, int]:
    """What the site made of the callbacks it took: the bench must measure real intake."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT outcome, COUNT(*) FROM callbacks GROUP BY outcome ORDER BY outcome"))
            return {str(outcome): int(count) for outcome, count in rows}
    finally:
        engine.dispose()


def site_environment(database: Database, base_url: str) -> dict[str, str]:
    env = dict(os.environ)  # main() took every CHECKOUT_* setting out
    env.update({
        "CHECKOUT_DATABASE_URL": database.url,
        "CHECKOUT_PUBLIC_URL": base_url,
        "CHECKOUT_SECRET_KEY": secrets.token_hex(32),
    })
    # wrk is one client address standing for thousands of customers: the per-address limits
    # are raised out of its way. The limiter still counts every request, as in production.
    env.update({f"CHECKOUT_{name}": UNREACHED for name in LIMITS_RAISED})
    return env


class _ShopHandler(BaseHTTPRequestHandler):
    server: Shop

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.received += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Shop(ThreadingHTTPServer):
    """The merchant's callback endpoint, where the worker forwards callbacks: it takes each
    at once (a failing shop would have the worker retry in a loop instead)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((HOST, 0), _ShopHandler)
        self.lock = threading.Lock()
        self.received = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/coinspaid/callback"


@contextlib.contextmanager
def shop_of_its_own() -> Iterator[Shop]:
    shop = Shop()
    thread = threading.Thread(target=shop.serve_forever, name="shop", daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        shop.shutdown()
        shop.server_close()
        thread.join()


# ---------------------------------------------------------------- what the site answers


# Headers the server or the connection makes, not the app: the bare app's server makes them too.
SERVER_HEADERS = frozenset({"date", "server", "content-length", "connection", "keep-alive",
                            "transfer-encoding"})


@dataclass
class Answer:
    status: int
    content_type: str
    location: str | None
    body: bytes
    headers: list[tuple[str, str]]  # every header the app set (security headers, ETag, ...)


def fetch(url: str, *, method: str = "GET", body: bytes | None = None,
          headers: dict[str, str] | None = None) -> Answer:
    # As wrk asks (no Accept-Encoding): the page is gzipped for clients that take it, and
    # the bare app must replay what wrk gets, not requests' unpacked copy under gzip headers.
    headers = {"Accept-Encoding": "identity", **(headers or {})}
    response = requests.request(method, url, data=body, headers=headers,
                                allow_redirects=False, timeout=60)
    sent = [(name, value) for name, value in response.headers.items()
            if name.lower() not in SERVER_HEADERS]
    return Answer(response.status_code, response.headers.get("Content-Type", ""),
                  response.headers.get("Location"), response.content, sent)


def open_link(base_url: str, payload: dict[str, Any]) -> tuple[str, str]:
    """A terminal link, opened as a customer's browser does: (the link's path, the page's)."""
    query = terminal.encode_link(payload, SECRET)
    link = "/terminal?" + urlencode(query)
    answer = fetch(base_url + link)
    if answer.status != 303 or not answer.location:
        raise BenchError(f"the terminal link answered {answer.status}, not 303: "
                         f"{answer.body[:300]!r}")
    return link, urlsplit(answer.location).path


def callback_body(processor_id: int, address: str, foreign_id: str) -> bytes:
    """A deposit callback in the processor's shape, about one of the callback pages."""
    txid = hashlib.sha256(str(processor_id).encode()).hexdigest()
    payload = {
        "id": processor_id, "type": "deposit",
        "crypto_address": {"id": 1, "currency": "BTC", "address": address, "tag": None,
                           "foreign_id": foreign_id},
        "currency_sent": {"currency": "BTC", "amount": CALLBACK_AMOUNT},
        "currency_received": {"currency": "BTC", "amount": CALLBACK_AMOUNT},
        "transactions": [{"id": processor_id, "currency": "BTC",
                          "transaction_type": "blockchain", "type": "deposit",
                          "address": address, "tag": None, "amount": CALLBACK_AMOUNT,
                          "txid": txid, "confirmations": "0"}],
        "fees": [], "error": "", "status": "not_confirmed",
    }
    return json.dumps(payload, separators=(",", ":")).encode()




def create_body(foreign_id: str, *, fixed: bool) -> bytes:
    """An `invoices/create` request as a shop sends it (a new foreign_id each time)."""
    payload = {**ORDER, **(FIXED if fixed else {}), "foreign_id": foreign_id}
    return json.dumps(payload, separators=(",", ":")).encode()


def click_path(foreign_id: str) -> str:
    """A terminal link the site has never seen: a new page at its first click."""
    payload = {"client_id": CLIENT_ID, "currency": "BTC", "foreign_id": foreign_id,
               "amount": "0.001", "url_back": "https://shop.example/back"}
    return "/terminal?" + urlencode(terminal.encode_link(payload, SECRET))


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes = b""  # a body is sent signed, with the merchant's key

    def headers(self) -> dict[str, str]:
        if not self.body:
            return {}
        return {"Content-Type": "application/json", "X-Processing-Key": KEY,
                "X-Processing-Signature": signing.sign(self.body, SECRET)}

    def line(self) -> str:
        """The request as requests.lua reads it: tab-separated, one a line."""
        if not self.body:
            return f"{self.method}\t{self.path}\t\t\t\n"
        signature = self.headers()["X-Processing-Signature"]
        return f"{self.method}\t{self.path}\t{KEY}\t{signature}\t{self.body.decode()}\n"

    def send(self, base_url: str) -> Answer:
        return fetch(base_url + self.path, method=self.method, body=self.body or None,
                     headers=self.headers())


@dataclass
class Unique:
    """Requests the site must see once each (a new link, a new invoice, a new callback):
    made and signed up front, numbered so that none repeats."""

    make: Callable[[int], Request]
    next_id: int = 1_000_000  # below 2**31: some processor-id columns are 32-bit today
    made: int = 0

    def take(self) -> Request:
        self.next_id += 1
        self.made += 1
        return self.make(self.next_id)

    def write(self, path: Path, count: int) -> Path:
        with path.open("w") as out:
            for _ in range(count):
                out.write(self.take().line())
        return path


def unique_streams(callback_pages: list[tuple[str, str]]) -> dict[str, Unique]:
    def callback(number: int) -> Request:
        address, foreign_id = callback_pages[number % len(callback_pages)]
        return Request("POST", "/callbacks/coinspaid",
                       callback_body(number, address, foreign_id))

    return {
        "click": Unique(lambda n: Request("GET", click_path(f"click-{n}"))),
        "create": Unique(lambda n: Request("POST", "/api/v2/invoices/create",
                                           create_body(f"later-{n}", fixed=False))),
        "create-fixed": Unique(lambda n: Request("POST", "/api/v2/invoices/create",
                                                 create_body(f"fixed-{n}", fixed=True))),
        "callbacks": Unique(callback),
    }


def write_gets(path: Path, paths: list[str]) -> Path:
    path.write_text("".join(Request("GET", p).line() for p in paths))
    return path


# ---------------------------------------------------------------- pages made up front


def invoice_page(base_url: str, foreign_id: str, *, fixed: bool) -> str:
    """A new invoice through the merchant API; the path of its page (not viewed)."""
    answer = Request("POST", "/api/v2/invoices/create",
                     create_body(foreign_id, fixed=fixed)).send(base_url)
    if answer.status != 200:
        raise BenchError(f"invoices/create answered {answer.status}: {answer.body[:300]!r}")
    return urlsplit(json.loads(answer.body)["data"]["url"]).path


def deposit_page(base_url: str, foreign_id: str) -> str:
    """A new page by a link's first click; its path (not viewed)."""
    return open_link(base_url, {"client_id": CLIENT_ID, "currency": "BTC",
                                "foreign_id": foreign_id, "amount": "0.001"})[1]


def make_pages(count: int, make: Callable[[int], str]) -> list[str]:
    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        return list(pool.map(make, range(count)))


def addressed_page(base_url: str, foreign_id: str) -> tuple[str, str, str]:
    """A deposit page a callback can pay: (its path, its address, the link's foreign_id)."""
    page = deposit_page(base_url, foreign_id)
    model = json.loads(fetch(base_url + page + "/status").body)
    return page, model["address"], foreign_id


# ---------------------------------------------------------------- the news probe


@dataclass
class NewsProbe:
    """How long after a callback is answered the page's status poll shows it.

    One callback at a time, each a new transaction on one of its own pages, sent while wrk
    loads the site with callbacks; then the page's status is polled every NEWS_POLL_S until
    its model lists the transaction (or NEWS_PATIENCE_S passed: counted as missed)."""

    base_url: str
    pages: list[tuple[str, str, str]]  # (page path, address, foreign_id)
    next_id: int = NEWS_IDS
    delays: list[float] = field(default_factory=list)
    missed: int = 0
    refused: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    abort: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with requests.Session() as session:
            # At least one sample, even when a round ends before the first is back.
            while not self.abort.is_set() and not (
                    self.stop.is_set() and (self.delays or self.missed or self.refused)):
                try:
                    self.sample(session)
                except requests.RequestException:
                    self.refused += 1
                    if self.refused > 10:
                        return

    def sample(self, session: requests.Session) -> None:
        page, address, foreign_id = self.pages[self.next_id % len(self.pages)]
        body = callback_body(self.next_id, address, foreign_id)
        txid = hashlib.sha256(str(self.next_id).encode()).hexdigest()
        self.next_id += 1
        sent = session.post(self.base_url + "/callbacks/coinspaid", data=body, timeout=60,
                            headers=Request("POST", "", body).headers())
        answered = time.monotonic()
        if sent.status_code != 200:
            self.refused += 1
            return
        while time.monotonic() - answered < NEWS_PATIENCE_S and not self.abort.is_set():
            model = session.get(self.base_url + page + "/status", timeout=60)
            if txid in model.text:
                self.delays.append(time.monotonic() - answered)
                return
            time.sleep(NEWS_POLL_S)
        self.missed += 1

    def p99(self) -> float | None:
        """Nearest rank; a missed sample counts as never (infinite)."""
        samples = sorted(self.delays) + [math.inf] * self.missed
        if not samples:
            return None
        return samples[max(0, math.ceil(0.99 * len(samples)) - 1)]


@contextlib.contextmanager
def probing(probe: NewsProbe | None) -> Iterator[None]:
    if probe is None:
        yield
        return
    probe.stop.clear()
    thread = threading.Thread(target=probe.run, name="news-probe", daemon=True)
    thread.start()
    try:
        yield
    except BaseException:
        probe.abort.set()
        raise
    finally:
        probe.stop.set()
        # Normally one sample at most: its patience and two timeouts. Interrupted, the bench
        # stops the site next: the thread is a daemon and not waited for.
        thread.join(1 if probe.abort.is_set() else NEWS_PATIENCE_S + 130)


# ---------------------------------------------------------------- the page's weight


class Resources(HTMLParser):
    """What a browser loads for the page: stylesheets, icons, scripts, images."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []  # (kind, url)
        self.poll_ms: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {key: value or "" for key, value in attrs}
        if tag == "link" and named.get("href") and (
                {"stylesheet", "icon", "preload", "modulepreload"}
                & set(named.get("rel", "").split())):
            rel = named["rel"].split()
            kind = "CSS" if "stylesheet" in rel else ("icon" if "icon" in rel else "preload")
            self.found.append((kind, named["href"]))
        elif tag == "script" and named.get("src"):
            self.found.append(("JS", named["src"]))
        elif tag in ("img", "iframe", "source", "video", "audio") and named.get("src"):
            self.found.append(("QR" if "/qr." in named["src"] else tag, named["src"]))
        if "data-poll-waiting" in named and named["data-poll-waiting"].isdigit():
            self.poll_ms = int(named["data-poll-waiting"])


@dataclass
class Weight:
    # kind, url, raw, gzip, served encoding, cached for good (immutable)
    parts: list[tuple[str, str, int, int, str, bool]]
    third_party: list[str]
    poll_ms: int

    def total(self, index: int, kinds: tuple[str, ...] | None = None) -> int:
        return sum(int(part[index]) for part in self.parts if kinds is None or part[0] in kinds)


def qr_src(base_url: str, page_path: str) -> str:
    """The QR image's path (and query) as the page names it."""
    parser = Resources()
    parser.feed(fetch(base_url + page_path).body.decode("utf-8", "replace"))
    for kind, url in parser.found:
        if kind == "QR":
            split = urlsplit(urljoin(base_url + page_path, url))
            return split.path + (f"?{split.query}" if split.query else "")
    raise BenchError(f"the page {page_path} shows no QR image")


def page_weight(base_url: str, page_path: str) -> Weight:
    page_url = base_url + page_path
    html = fetch(page_url, headers={"Accept-Encoding": "identity"}).body
    parser = Resources()
    parser.feed(html.decode("utf-8", "replace"))
    resources = [("HTML", page_url)] + [(kind, urljoin(page_url, url))
                                        for kind, url in parser.found]
    parts, third_party, seen = [], [], set()
    for kind, url in resources:
        if urlsplit(url).scheme == "data":
            continue  # inline: no request, and its bytes are counted in its document
        if urlsplit(url).netloc != urlsplit(base_url).netloc:
            third_party.append(url)
            continue
        if url in seen:
            continue
        seen.add(url)
        raw = fetch(url, headers={"Accept-Encoding": "identity"}).body
        served = requests.get(url, headers={"Accept-Encoding": "gzip, br"}, timeout=60,
                              stream=True)
        encoding = served.headers.get("Content-Encoding", "none")
        wire = served.raw.read(decode_content=False)  # the bytes as they travel
        kept = "immutable" in served.headers.get("Cache-Control", "")
        served.close()
        # What the site sends gzipped counts as sent; the rest as a compressing proxy would.
        packed = len(wire) if encoding == "gzip" else len(gzip.compress(raw, 6, mtime=0))
        parts.append((kind, url, len(raw), packed, encoding, kept))
        if kind == "CSS":  # fonts and images a stylesheet names load too
            for ref in re.findall(rb"url\(\s*['\"]?([^'\")]+)", raw):
                resources.append(("CSS url()", urljoin(url, ref.decode())))
    return Weight(parts, third_party, parser.poll_ms or 3000)


# ---------------------------------------------------------------- load


@dataclass
class Sample:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    replays: int
    distinct: int


def run_wrk(base_url: str, requests_file: Path, seconds: int, threads: int,
            connections: int) -> Sample:
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
            "-s", str(LUA), base_url, "--", str(requests_file), str(threads)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60,
                          check=False)
    found = re.search(r"^BENCH (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or found is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    result = json.loads(found.group(1))
    errors = sum(result[name] for name in ("connect_errors", "read_errors", "write_errors",
                                           "status_errors", "timeouts"))
    return Sample(rate=result["requests"] / (result["duration_us"] / 1e6),
                  p50_ms=result["p50_us"] / 1000, p99_ms=result["p99_us"] / 1000,
                  errors=errors, replays=result["replays"], distinct=result["distinct"])


@dataclass
class Row:
    route: str
    site: list[Sample] = field(default_factory=list)
    bare: list[Sample] = field(default_factory=list)
    # For the record, a call+insert floor's twin that asks the embedded processor the call
    # the route stands for instead of pinging a stand-in: how much is the sandbox's.
    asking: list[Sample] = field(default_factory=list)

    @staticmethod
    def median(samples: list[Sample], name: str) -> float:
        return statistics.median(getattr(sample, name) for sample in samples)

    @property
    def ratio(self) -> float:
        return self.median(self.site, "rate") / self.median(self.bare, "rate")


# ---------------------------------------------------------------- one database


@dataclass
class Options:
    rounds: int
    seconds: int
    warmup: int
    threads: int
    connections: int
    routes: list[str]
    postgresql_url: str
    first_views: int
    worker: bool  # `flask worker` beside the site during the callback row
    workers: int | None  # gunicorn workers for site and floor; None: the Makefile's

    @property
    def cache_size(self) -> int:
        """The site's kept renderings per process: fewer than the first-view pages."""
        return max(1, self.first_views // 2)


@dataclass
class Report:
    database: str
    flags: list[str]
    rows: dict[str, Row]
    weight: Weight
    site_rss: list[int]
    bare_rss: list[int]
    signed: dict[str, int]  # unique requests made, per route
    outcomes: dict[str, int]
    news: NewsProbe | None
    skipped: dict[str, str]  # route: why it was not measured
    forwarded: int | None  # callbacks the worker forwarded to the shop


# What the bare app answers for each once-only route, and the work it does first.
UNIQUE_KEYS = {"click": "GET /terminal", "create": "POST /api/v2/invoices/create",
               "create-fixed": "POST /api/v2/invoices/create fixed",
               "callbacks": "POST /callbacks/coinspaid"}
# The call each route stands for, asked of the embedded processor by the asking twin floor.
ASKED = {UNIQUE_KEYS[route]: work for route, work in (
    ("click", "take+insert"), ("create", "invoice+insert"), ("create-fixed", "invoice+insert"))}


@dataclass
class Site:
    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]


def start_site(name: str, database: Database, options: Options, folder: Path,
               processes: Processes, flags: list[str], **extra: str) -> Site:
    port = free_port()
    url = f"http://{HOST}:{port}"
    log = folder / f"site-{port}.log"
    env = site_environment(database, url)
    env["CHECKOUT_PAGE_CACHE_SIZE"] = str(options.cache_size)
    env.update(extra)
    process = processes.start(name, [gunicorn(), "--bind", f"{HOST}:{port}", *flags,
                                     "wsgi:app"], env=env, log=log)
    wait_until_up(f"{url}/healthz", process, log)
    return Site(url, process, env)


def start_worker(site: Site, database: Database, folder: Path,
                 processes: Processes) -> subprocess.Popen[bytes]:
    """`flask worker` beside the site, as `make run` runs it: work a callback leaves for
    later is done on the same cores, and counted. Rates are not refreshed meanwhile (that
    rewrites every open page, a minute's work that is no callback's)."""
    log = folder / f"worker-{database.name}.log"
    worker = processes.start(
        f"flask worker on {database.name}", [flask(), "--app", "checkout", "worker"],
        env={**site.env, "CHECKOUT_RATES_MAX_AGE": "86400", "PYTHONUNBUFFERED": "1"},
        log=log, pausable=True)
    deadline = time.monotonic() + 60
    while "worker: running" not in log.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"flask worker did not start:\n{tail(log)}")
        time.sleep(0.1)
    return worker


def floor_database(kind: str, database: Database, folder: Path) -> str:
    """Where the bare app inserts: the same kind of database as the site's; its own table."""
    url = f"sqlite:///{folder / f'floor-{kind}.db'}" if kind == "sqlite" else database.url
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            key = "INTEGER PRIMARY KEY" if kind == "sqlite" else "BIGSERIAL PRIMARY KEY"
            conn.execute(text(f"CREATE TABLE bench_floor (id {key}, note TEXT NOT NULL)"))
    finally:
        engine.dispose()
    return url


def wait_for_redis(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"redis-server exited with {process.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1) as conn:
            conn.sendall(b"PING\r\n")
            if conn.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise BenchError(f"redis-server did not answer within 30 s:\n{tail(log)}")


def record(site_url: str, key: str, request: Request | None = None) -> Answer:
    method, _, path = key.partition(" ")
    answer = request.send(site_url) if request is not None else fetch(site_url + path,
                                                                        method=method)
    if answer.status >= 400:
        raise BenchError(f"the site answered {key} with {answer.status}: {answer.body[:300]!r}")
    return answer


def bench_database(kind: str, options: Options, folder: Path, processes: Processes) -> Report:
    with fresh_database(kind, folder, options.postgresql_url) as database, \
            shop_of_its_own() as shop:
        try:
            return bench_on(kind, database, shop, options, folder, processes)
        finally:
            # Before the schema is dropped: nothing of the bench holds a connection to it.
            processes.stop_all()


@dataclass
class Fixtures:
    """The pages and requests the rounds load, made through the site before them."""

    link_path: str  # the repeated terminal link
    pages: list[str]  # viewed again, polled; their QR images
    qr_paths: list[str]
    weight: Weight
    firsts: dict[str, list[str]]  # route: pages never viewed before its rounds
    streams: dict[str, Unique]  # route: its once-only requests
    news: NewsProbe | None


def make_fixtures(site_url: str, options: Options) -> Fixtures:
    print("  opening pages through terminal links and invoices/create", flush=True)
    wanted = set(options.routes)
    opened = [open_link(site_url, link) for link in PAGE_LINKS]
    pages = [page for _link, page in opened]
    callback_pages: list[tuple[str, str]] = []
    news = None
    if "callbacks" in wanted:
        with ThreadPoolExecutor(SETUP_THREADS) as pool:
            made = list(pool.map(lambda n: addressed_page(site_url, f"cb-{n}"),
                                 range(CALLBACK_PAGES + NEWS_PAGES)))
        callback_pages = [(address, foreign) for _p, address, foreign in made[:CALLBACK_PAGES]]
        news = NewsProbe(site_url, made[CALLBACK_PAGES:])
    makers: dict[str, Callable[[int], str]] = {
        "first": lambda n: deposit_page(site_url, f"first-{n}"),
        "picker": lambda n: invoice_page(site_url, f"first-later-{n}", fixed=False),
        "waiting": lambda n: invoice_page(site_url, f"first-fixed-{n}", fixed=True),
    }
    # One more page of each kind than the rounds view: that one is viewed before them, for
    # the bare app to answer its bytes; the others are never viewed before the rounds.
    firsts = {route: make_pages(options.first_views + 1, make)
              for route, make in makers.items() if route in wanted}
    return Fixtures(opened[0][0], pages, [qr_src(site_url, page) for page in pages],
                    page_weight(site_url, pages[0]), firsts, unique_streams(callback_pages),
                    news)


@dataclass
class Floor:
    """The bare app's answers (by "METHOD path"), and the work it does before each."""

    answers: dict[str, Answer] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # path: the answer it shares
    works: dict[str, str] = field(default_factory=dict)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps({"aliases": self.aliases, "answers": {key: {
            "status": a.status, "headers": a.headers, "work": self.works.get(key, "none"),
            "body": base64.b64encode(a.body).decode()} for key, a in self.answers.items()}}))
        return path


def record_floor(site_url: str, fixtures: Fixtures, options: Options) -> Floor:
    """What the site answers, for the bare app to answer the same."""
    floor = Floor()
    for page, qr_path in zip(fixtures.pages, fixtures.qr_paths, strict=True):
        for path in (page, f"{page}/status", qr_path):
            # Keyed by path alone: the bare app's routes do not read the QR's query.
            floor.answers[f"GET {urlsplit(path).path}"] = record(site_url, f"GET {path}")
    key = f"GET {fixtures.link_path}"
    floor.answers[key] = record(site_url, key)
    for paths in fixtures.firsts.values():
        viewed = f"GET {paths.pop()}"
        floor.answers[viewed] = record(site_url, viewed)
        floor.aliases.update({f"GET {path}": viewed for path in paths})
    for route, key in UNIQUE_KEYS.items():
        if route in options.routes:
            floor.answers[key] = record(site_url, key, fixtures.streams[route].take())
            floor.works[key] = WORK[ROUTES[route].floor]
    return floor


def start_bare(kind: str, database: Database, floor: Floor, folder: Path,
               processes: Processes, flags: list[str], *, floor_url: str,
               name: str = "bare") -> Site:
    """`floor_url`: where the floor inserts (floor_database). A floor that asks the embedded
    processor asks the site's own sandbox, on the site's database, under the bench
    merchant's key."""
    env = {**os.environ, "BENCH_BARE_SPEC": str(floor.write(folder / f"{name}-{kind}.json")),
           "BENCH_BARE_DATABASE_URL": floor_url,
           "BENCH_BARE_PROCESSOR_DATABASE_URL": database.url,
           "BENCH_BARE_PROCESSOR_INSTANCE": str(folder / f"{name}-instance"),
           "BENCH_BARE_PROCESSOR_KEY": KEY, "BENCH_BARE_PROCESSOR_SECRET": SECRET}
    log = folder / f"{name}-{kind}.log"
    # Picked only now: the site's workers have bound their sandbox's loopback ports (any
    # free port) while the links opened, and one of them could be a port picked before.
    port = free_port()
    url = f"http://{HOST}:{port}"
    env["BENCH_BARE_ORIGIN"] = url  # where its processor's invoices point
    process = processes.start(
        f"gunicorn {name} Flask",
        [gunicorn(), "--bind", f"{HOST}:{port}", *flags, "--pythonpath", str(BENCH),
         "bare:app"], env=env, log=log)
    wait_until_up(f"{url}/p/up", process, log)
    for key, answer in floor.answers.items():
        if key in floor.works:
            continue  # once-only; the site's answer does not depend on the body
        method, _, path = key.partition(" ")
        found = fetch(url + path, method=method)
        if (found.status, found.body, sorted(found.headers)) != (
                answer.status, answer.body, sorted(answer.headers)):
            raise BenchError(f"the bare app does not answer {key} as the site does")
    return Site(url, process, env)


def start_redis(kind: str, folder: Path, processes: Processes) -> str | None:
    """A redis-server of the bench's own on a free loopback port: its URL (None: none)."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    log = folder / f"redis-{kind}.log"
    process = processes.start("redis-server", [
        binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
        "--dir", str(folder)], env=dict(os.environ), log=log)
    wait_for_redis(port, process, log)
    return f"redis://{HOST}:{port}/0"


def bench_on(kind: str, database: Database, shop: Shop, options: Options, folder: Path,
             processes: Processes) -> Report:
    flags = gunicorn_flags()
    if options.workers is not None:
        flags = [*without_workers(flags), "--workers", str(options.workers)]
    print(f"== {database.name}: preparing a fresh database", flush=True)
    prepare(database, folder, shop.url)
    site = start_site(f"gunicorn site on {database.name}", database, options, folder,
                      processes, flags)
    fixtures = make_fixtures(site.url, options)
    floor = record_floor(site.url, fixtures, options)
    floor_url = floor_database(kind, database, folder)
    bare = start_bare(kind, database, floor, folder, processes, flags, floor_url=floor_url)
    asking = None
    if any(ROUTES[route].floor == CALL_INSERT for route in options.routes):
        asks = Floor(floor.answers, floor.aliases, {
            key: ASKED.get(key, work) for key, work in floor.works.items()})
        asking = start_bare(kind, database, asks, folder, processes, flags,
                            floor_url=floor_url, name="bare-asking")
    gets = {"status": [f"{p}/status" for p in fixtures.pages], "page": fixtures.pages,
            "qr": fixtures.qr_paths, "link": [fixtures.link_path], **fixtures.firsts}
    gets["redis"] = gets["status"]

    def load(route: str, name: str, rate: float, seconds: int) -> Path:
        path = folder / f"{kind}-{route}-{name}.tsv"
        if route in UNIQUE:
            # Enough once-only requests for three times the rate seen: never a replay.
            return fixtures.streams[route].write(path, max(2000, int(rate * seconds * 3)))
        return write_gets(path, gets[route])

    rows: dict[str, Row] = {}
    forwarded = None
    for route in options.routes:
        if route == "callbacks":
            worker = (start_worker(site, database, folder, processes) if options.worker
                      else None)
            rows[route] = measure(route, site.url, bare.url, load, options, fixtures.news,
                                  worker)
            if worker is not None:
                processes.stop(worker)  # it would load the rows after this one
                forwarded = shop.received
        elif route != "redis":
            rows[route] = measure(route, site.url, bare.url, load, options, asking_url=(
                asking.url if asking is not None and ROUTES[route].floor == CALL_INSERT
                else None))
    site_rss, bare_rss = worker_rss(site.process.pid), worker_rss(bare.process.pid)
    skipped: dict[str, str] = {}
    if "redis" in options.routes:
        redis_url = start_redis(kind, folder, processes)
        if redis_url is None:
            skipped["redis"] = "no redis-server here (apt-get install redis-server): not measured"
        else:
            limited = start_site(f"gunicorn site on {database.name}, limits in Redis",
                                 database, options, folder, processes, flags,
                                 CHECKOUT_RATELIMIT_STORAGE_URL=redis_url)
            for path in gets["redis"]:
                record(limited.url, f"GET {path}")
            rows["redis"] = measure("redis", limited.url, bare.url, load, options)
    return Report(database.name, flags, rows, fixtures.weight, site_rss, bare_rss,
                  {route: stream.made for route, stream in fixtures.streams.items()
                   if route in options.routes},
                  callback_outcomes(database.url), fixtures.news, skipped, forwarded)


def measure(route: str, site_url: str, bare_url: str,
            load: Callable[[str, str, float, int], Path], options: Options,
            news: NewsProbe | None = None, beside: subprocess.Popen[bytes] | None = None,
            asking_url: str | None = None) -> Row:
    """Warm-up, then rounds: the site, then its floor, on the same requests (then the
    floor's twin that asks the embedded processor, at `asking_url`, if any). A process
    `beside` the site (its worker) is paused while a floor is loaded."""
    row = Row(route)
    print(f"  {ROUTES[route].label}: {options.rounds} rounds of {options.seconds:g} s each, "
          f"site and {ROUTES[route].floor} alternating", flush=True)
    rate = 2000.0  # a guess, when there is no warm-up to tell
    if options.warmup > 0:
        warm = load(route, "warm", rate, options.warmup)
        rate = run_wrk(site_url, warm, options.warmup, options.threads,
                       options.connections).rate
        with paused(beside):
            for floor_url in (bare_url, asking_url):
                if floor_url is not None:
                    run_wrk(floor_url, warm, options.warmup, options.threads,
                            options.connections)
    for number in range(options.rounds):
        requests_file = load(route, str(number), rate, options.seconds)
        with probing(news):
            row.site.append(run_wrk(site_url, requests_file, options.seconds, options.threads,
                                    options.connections))
        with paused(beside):
            row.bare.append(run_wrk(bare_url, requests_file, options.seconds,
                                    options.threads, options.connections))
            if asking_url is not None:
                row.asking.append(run_wrk(asking_url, requests_file, options.seconds,
                                          options.threads, options.connections))
    return row


# ---------------------------------------------------------------- the table


def kb(size: float) -> str:
    return f"{size / KB:.1f} KB"


def mb(size: float) -> str:
    return f"{size / KB / KB:.1f} MB"


def verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("meets" if met else "misses")


def seconds_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"> {NEWS_PATIENCE_S:g} s" if math.isinf(value) else f"{value * 1000:.0f} ms"


def capacity(report: Report, route: str = "status") -> tuple[float, float] | None:
    """(poll req/s, customers polling at the page's cadence that it holds)."""
    row = report.rows.get(route)
    if row is None:
        return None
    rate = Row.median(row.site, "rate")
    return rate, rate * report.weight.poll_ms / 1000


def print_rows(report: Report, options: Options) -> None:
    header = (f"{'route':<30}{'site req/s':>11}{'p50 ms':>8}{'p99 ms':>8}  {'floor':<17}"
              f"{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'ratio':>8}  goal")
    print(header)
    print("-" * (len(header) + 16))
    notes = []
    for route in options.routes:
        spec = ROUTES[route]
        if route in report.skipped:
            print(f"{spec.label:<30}skipped: {report.skipped[route]}")
            continue
        row = report.rows[route]
        m = Row.median
        errors = sum(s.errors for s in row.site + row.bare)
        mark = " !" if errors else ""
        print(f"{spec.label:<30}{m(row.site, 'rate'):>11.0f}{m(row.site, 'p50_ms'):>8.1f}"
              f"{m(row.site, 'p99_ms'):>8.1f}  {spec.floor:<17}{m(row.bare, 'rate'):>7.0f}"
              f"{m(row.bare, 'p50_ms'):>8.1f}{m(row.bare, 'p99_ms'):>8.1f}{row.ratio:>7.2f}x"
              f"  >= {spec.goal:g}x {verdict(row.ratio >= spec.goal)}{mark}")
        if errors:
            notes.append(f"! {spec.label}: {errors} failed or non-2xx/3xx answers")
        if row.asking:
            asked = m(row.asking, "rate")
            failed = sum(s.errors for s in row.asking)
            notes.append(
                f"{spec.label}: for the record, against a floor asking the embedded processor "
                f"the route's own call instead of a ping (its work then in both): "
                f"{asked:.0f} req/s, ratio "
                + (f"{m(row.site, 'rate') / asked:.2f}x" if asked > 0 else "-")
                + (f" ! {failed} failed or non-2xx/3xx answers from that floor"
                   if failed else ""))
        if route in UNIQUE:
            replays = sum(s.replays for s in row.site)
            sent = sum(round(s.rate * options.seconds) for s in row.site)
            notes.append(
                f"{spec.label}: {report.signed.get(route, 0)} requests made and signed up "
                f"front, each sent once by wrk's Lua from a file (about {sent} to the site, "
                f"{replays} replays)")
    if "callbacks" in report.rows:
        notes.append(
            f"callback intake: each a new transaction on one of {CALLBACK_PAGES} pages of "
            "their own; the site stored them as: " + ", ".join(
                f"{outcome} {count}" for outcome, count in report.outcomes.items()))
        if report.forwarded is None:
            notes.append("callback intake: no `flask worker` ran (--worker runs one): "
                         "what a callback leaves to it is neither done nor counted")
        else:
            notes.append(
                "callback intake: `flask worker` ran beside the site as `make run` runs it "
                "(paused while the floor was loaded, stopped after this row); it forwarded "
                f"{report.forwarded} callbacks to a shop of the bench's own")
    if {"first", "picker", "waiting"} & set(report.rows):
        notes.append(
            f"first views: {options.first_views} pages of each kind made before the rounds "
            "(links' first clicks; invoices/create) and cycled; the site keeps "
            f"CHECKOUT_PAGE_CACHE_SIZE={options.cache_size} renderings per process, fewer "
            "than the pages, so that no view finds its process's own (a rendering stored "
            "for every process is served as the site serves it)")
    if "redis" in report.rows:
        notes.append("status poll, Redis limits: a second site on the same database with "
                     "CHECKOUT_RATELIMIT_STORAGE_URL at a redis-server of the bench's own")
    for note in notes:
        print(note)
    print("ratios: site req/s over its floor's; the floor answers the site's own bytes "
          "(bench/bare.py): bare, or after one INSERT and commit (+insert), or after one "
          "HTTP call to a sandbox processor's ping and the insert (+call+insert)")
    probe = report.news
    if probe is not None:
        p99 = probe.p99()
        count = len(probe.delays) + probe.missed
        print(f"callback news on the page (answered -> its status poll shows it), p99 of "
              f"{count} during intake: {seconds_text(p99)} (median "
              f"{seconds_text(statistics.median(probe.delays) if probe.delays else None)})"
              f"  <= {NEWS_GOAL_S:g} s {verdict(None if p99 is None else p99 <= NEWS_GOAL_S)}"
              + (f" ! {probe.refused} refused" if probe.refused else ""))


def print_report(report: Report, options: Options) -> None:
    print()
    origin = "as `make run`" if options.workers is None else "`make run`'s, with --workers"
    print(f"checkout bench on {report.database}: gunicorn {' '.join(report.flags)} "
          f"({origin}), sandbox mode")
    print(f"wrk -t{options.threads} -c{options.connections}, {options.rounds} rounds x "
          f"{options.seconds:g} s per route, site and floor alternating; "
          f"{os.cpu_count()} cores, loopback; medians of the rounds")
    print(f"per-address limits raised to {UNREACHED} ({', '.join(LIMITS_RAISED)}): wrk is "
          "one address; the limiter still counts every request")
    print_rows(report, options)

    weight = report.weight
    print()
    print("page weight (what a browser loads for the page; gzip: the bytes sent where the "
          "site compresses, else gzip -6 computed):")
    for kind, url, raw, packed, encoding, kept in weight.parts:
        path = urlsplit(url).path
        served = ("" if encoding == "none" else f", served {encoding}") + (
            ", immutable" if kept else "")
        print(f"  {kind:<10}{path[:46]:<48}{raw:>8} B raw{packed:>8} B gzip{served}")
    total_raw, total_gzip = weight.total(2), weight.total(3)
    script_raw, script_gzip = weight.total(2, ("JS",)), weight.total(3, ("JS",))
    print(f"  total: {len(weight.parts)} requests, {kb(total_raw)} raw, {kb(total_gzip)} gzip; "
          f"script {kb(script_raw)} raw ({kb(script_gzip)} gzip); third-party requests: "
          f"{len(weight.third_party)}")
    again = [kind for kind, *_, kept in weight.parts if not kept]
    print(f"  a repeat view: {len(again)} requests ({', '.join(again)}); the rest are "
          "cached for good (immutable)")
    for name, value, met in [
            ("everything a page loads <= 30 KB gzip", kb(total_gzip),
             total_gzip <= TARGET_PAGE_GZIP),
            ("script <= 8 KB (raw, as parsed)", kb(script_raw), script_raw <= TARGET_SCRIPT),
            ("no third-party request", str(len(weight.third_party)), not weight.third_party)]:
        print(f"  {name:<40}{value:>10}   {verdict(met)}")

    print()
    site_rss, bare_rss = report.site_rss, report.bare_rss
    print("memory per worker (RSS after the load, /proc): site "
          + ", ".join(mb(size) for size in site_rss)
          + f" ({len(site_rss)} worker{'s' if len(site_rss) != 1 else ''}); bare Flask "
          + ", ".join(mb(size) for size in bare_rss))
    print_capacity(report)


def print_capacity(report: Report) -> None:
    interval = report.weight.poll_ms / 1000
    for route, limits in (("status", "limits in memory"), ("redis", "limits in Redis")):
        held = capacity(report, route)
        if held is not None:
            print(f"capacity on {report.database} ({limits}): customers polling every "
                  f"{interval:g} s (the page's POLL_WAITING_MS) that this {os.cpu_count()}-core "
                  f"machine holds: {held[0]:.0f} req/s x {interval:g} s = {held[1]:.0f}")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> tuple[Options, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per route (3)")
    parser.add_argument("--seconds", type=int, default=2, help="seconds per round (2)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="seconds of unmeasured load per route and app first (1)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--routes", default=",".join(ROUTES),
                        help=f"comma-separated, of {','.join(ROUTES)}")
    parser.add_argument("--first-views", type=int, default=FIRST_VIEWS,
                        help=f"pages of each kind for the first-view rounds ({FIRST_VIEWS}); "
                             "the site keeps half as many renderings")
    parser.add_argument("--worker", action="store_true",
                        help="run `flask worker` beside the site (as `make run` does) during "
                             "the callback rounds, paused while the floor is loaded")
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn workers of site and floor (default: the Makefile's "
                             "`run`, one); e.g. 2 for the capacity of a 2-core box")
    parser.add_argument("--databases", default=None,
                        help="sqlite and/or postgresql (default: sqlite, and postgresql when "
                             "CHECKOUT_DATABASE_URL names one)")
    args = parser.parse_args(argv)
    postgresql_url = os.environ.get("CHECKOUT_DATABASE_URL", "")
    wanted = {route.strip() for route in args.routes.split(",") if route.strip()}
    unknown = sorted(wanted - set(ROUTES))
    if unknown or not wanted:
        parser.error(f"unknown routes {unknown}; choose from {','.join(ROUTES)}")
    routes = [route for route in ROUTES if route in wanted]
    if not 1 <= args.rounds <= 20 or not 1 <= args.seconds <= 120:
        parser.error("--rounds must be 1 to 20, --seconds 1 to 120 (whole seconds: wrk's)")
    if not 1 <= args.threads <= 64 or not args.threads <= args.connections <= 1024:
        parser.error("--threads 1 to 64, --connections at least --threads and at most 1024")
    if not 2 <= args.first_views <= 5000:
        parser.error("--first-views 2 to 5000")
    if args.databases is None:
        databases = ["sqlite"]
        if postgresql_url.startswith("postgresql"):
            databases.append("postgresql")
    else:
        databases = [name.strip() for name in args.databases.split(",") if name.strip()]
        if not databases or set(databases) - {"sqlite", "postgresql"}:
            parser.error("--databases: sqlite and/or postgresql")
    return Options(args.rounds, args.seconds, max(0, args.warmup), args.threads,
                   args.connections, routes, postgresql_url, args.first_views,
                   args.worker, args.workers), databases


def main(argv: list[str] | None = None) -> int:
    options, databases = parse_args(argv)
    # Runs compare only under the same settings: none of the environment's reach the site
    # (or the set-up here; a processor URL would even leave sandbox mode).
    for name in [name for name in os.environ if name.startswith("CHECKOUT_")]:
        del os.environ[name]
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed: apt-get install wrk (`make bench` does it)",
              file=sys.stderr)
        return 2

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # SIGINT too: a process started in the background (a CI runner, `make test &`, nohup)
    # inherits SIGINT ignored, and Python then leaves it ignored: ^C did nothing.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    processes = Processes()
    folder = Path(tempfile.mkdtemp(prefix="checkout-bench-"))
    started = time.monotonic()
    try:
        reports = [bench_database(kind, options, folder, processes) for kind in databases]
        for report in reports:
            print_report(report, options)
        if len(reports) > 1:  # side by side: the databases' capacities
            print()
            for report in reports:
                print_capacity(report)
        print(f"\nbench took {time.monotonic() - started:.0f} s")
        return 0
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
