"""`make bench`: the customer routes under gunicorn, against a bare Flask app, with wrk.

    .venv/bin/python bench/bench.py [--rounds 3] [--seconds 4] [--routes status,page,...]

The site runs under gunicorn with the settings `make run` uses (read from the Makefile's
`run` recipe), in sandbox mode, on a fresh SQLite database in a temporary folder; when
CHECKOUT_DATABASE_URL names a PostgreSQL database, again there, in a schema of its own that
is dropped afterwards. Other CHECKOUT_* settings of the environment are not passed on, so
that runs compare. A merchant and a few pages are made through real terminal links.

A bare Flask app (bench/bare.py) then serves the very bytes the site answered, route by
route, under the same gunicorn settings: the floor any Flask site pays. wrk (Debian's
package), another process on loopback, loads the site and the bare app in alternating
rounds, route after route, so that a neighbour's load on the machine hits both alike.
It prints requests/s and latency per route with the ratio to the bare app, the page's
weight, memory per worker, how many customers polling at the page's own cadence this
machine holds, and whether each target of issue 9 is met. It exits 0 either way; it kills
every process it starts, also on Ctrl-C or failure.

Rate limits count in each process's memory here, as with `make run`: the bench measures one
instance. Shared limits in Redis (CHECKOUT_RATELIMIT_STORAGE_URL) are run by the tests
instead (tests/web/test_shared_limits.py): they start their own `redis-server` (Debian's package,
which .ci/run installs) on a free loopback port, two gunicorn instances on it count one
count, and Redis is stopped and started again under a running site.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import gzip
import hashlib
import json
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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from sqlalchemy import text
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
# Callbacks are spread over pages of their own, so that the measured pages never change and
# no one page collects thousands of transactions.
CALLBACK_PAGES = 16
CALLBACK_AMOUNT = "0.00001000"
LIMITS_RAISED = ("RATELIMIT_LINKS", "RATELIMIT_PAGES", "RATELIMIT_STATUS")
UNREACHED = "100000000 per minute"

ROUTES = {
    "status": "status poll",
    "page": "page (HTML)",
    "qr": "QR image",
    "link": "terminal link (303)",
    "callbacks": "callback intake",
}
TARGET_STATUS = 0.8
TARGET_PAGE = 0.5
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


@dataclass
class Processes:
    """Every process the bench starts, each in a session of its own, all stopped at the end."""

    started: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, args: list[str], *, env: dict[str, str], log: Path,
              cwd: Path = ROOT) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(args, env=env, cwd=cwd, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, preexec_fn=_die_with_parent)
        self.started.append((name, process))
        print(f"  started {name} (pid {process.pid})", flush=True)
        return process

    def stop_all(self) -> None:
        for _name, process in reversed(self.started):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
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


def prepare(database: Database, folder: Path) -> None:
    """Schema by the migrations; the merchant (and its sandbox account), as `merchant add`."""
    migrate.upgrade(database.url, sandbox=True)
    app = create_app({"DATABASE_URL": database.url, "INSTANCE_PATH": str(folder / "instance"),
                      "SANDBOX": True, "PROCESSOR_URL": None, "SECRET_KEY": "bench"})
    with app.app_context():
        merchants.add(merchants.NewMerchant(
            CLIENT_ID, "Bench shop", KEY, SECRET, ("shop.example",), (),
            # Never called: no worker runs, deliveries wait in the outbox as in production.
            "http://127.0.0.1:9/coinspaid/callback"))
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


@dataclass
class Callbacks:
    """Unique signed callbacks: each body signed (HMAC-SHA512) once, up front."""

    addresses: list[tuple[str, str]]  # (address, foreign_id) of the callback pages
    next_id: int = 1_000_000  # below 2**31: some processor-id columns are 32-bit today

    def write(self, path: Path, count: int) -> int:
        with path.open("w") as out:
            for _ in range(count):
                address, foreign_id = self.addresses[self.next_id % len(self.addresses)]
                body = callback_body(self.next_id, address, foreign_id)
                self.next_id += 1
                out.write(f"POST\t/callbacks/coinspaid\t{KEY}\t{signing.sign(body, SECRET)}\t"
                          f"{body.decode()}\n")
        return count

    def one(self) -> tuple[bytes, dict[str, str]]:
        address, foreign_id = self.addresses[0]
        body = callback_body(self.next_id, address, foreign_id)
        self.next_id += 1
        return body, {"Content-Type": "application/json", "X-Processing-Key": KEY,
                      "X-Processing-Signature": signing.sign(body, SECRET)}


def write_gets(path: Path, paths: list[str]) -> Path:
    path.write_text("".join(f"GET\t{p}\t\t\t\n" for p in paths))
    return path


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


@dataclass
class Report:
    database: str
    flags: list[str]
    rows: dict[str, Row]
    weight: Weight
    site_rss: list[int]
    bare_rss: list[int]
    callbacks_signed: int
    outcomes: dict[str, int]


def bench_database(kind: str, options: Options, folder: Path, processes: Processes) -> Report:
    flags = gunicorn_flags()
    with fresh_database(kind, folder, options.postgresql_url) as database:
        print(f"== {database.name}: preparing a fresh database", flush=True)
        prepare(database, folder)
        site_port = free_port()
        site_url = f"http://{HOST}:{site_port}"
        site_log = folder / f"site-{kind}.log"
        site = processes.start(
            f"gunicorn site on {database.name}",
            [gunicorn(), "--bind", f"{HOST}:{site_port}", *flags, "wsgi:app"],
            env=site_environment(database, site_url), log=site_log)
        wait_until_up(f"{site_url}/healthz", site, site_log)

        print("  opening pages through terminal links", flush=True)
        opened = [open_link(site_url, link) for link in PAGE_LINKS]
        link_path, pages = opened[0][0], [page for _link, page in opened]
        weight = page_weight(site_url, pages[0])
        qr_paths = [qr_src(site_url, page) for page in pages]
        callbacks = None
        if "callbacks" in options.routes:
            targets = []
            for number in range(CALLBACK_PAGES):
                _link, page = open_link(site_url, {
                    "client_id": CLIENT_ID, "currency": "BTC", "foreign_id": f"cb-{number}",
                    "amount": "1"})
                model = json.loads(fetch(site_url + page + "/status").body)
                targets.append((model["address"], f"cb-{number}"))
            callbacks = Callbacks(targets)

        # Record what the site answers, for the bare app to answer the same.
        recorded: dict[str, Answer] = {}
        for page, qr_path in zip(pages, qr_paths, strict=True):
            recorded[page] = fetch(site_url + page)
            recorded[f"{page}/status"] = fetch(site_url + page + "/status")
            recorded[urlsplit(qr_path).path] = fetch(site_url + qr_path)
        recorded["/terminal"] = fetch(site_url + link_path)
        if callbacks is not None:
            body, headers = callbacks.one()
            recorded["POST /callbacks/coinspaid"] = fetch(
                site_url + "/callbacks/coinspaid", method="POST", body=body, headers=headers)
        for key, answer in recorded.items():
            if answer.status >= 400:
                raise BenchError(f"the site answered {key} with {answer.status}: "
                                 f"{answer.body[:300]!r}")
        spec_file = folder / f"bare-{kind}.json"
        spec_file.write_text(json.dumps({key: {
            "status": a.status, "content_type": a.content_type, "location": a.location,
            "headers": a.headers, "body": base64.b64encode(a.body).decode()}
            for key, a in recorded.items()}))
        bare_log = folder / f"bare-{kind}.log"
        # Picked only now: the site's workers have bound their sandbox's loopback ports (any
        # free port) while the links opened, and one of them could be a port picked before.
        bare_port = free_port()
        bare_url = f"http://{HOST}:{bare_port}"
        bare_env = {**os.environ, "BENCH_BARE_SPEC": str(spec_file)}
        bare = processes.start(
            "gunicorn bare Flask",
            [gunicorn(), "--bind", f"{HOST}:{bare_port}", *flags, "--pythonpath", str(BENCH),
             "bare:app"], env=bare_env, log=bare_log)
        wait_until_up(f"{bare_url}/terminal", bare, bare_log)
        for key, answer in recorded.items():
            method, _, path = key.rpartition(" ")
            if method == "POST":
                continue  # the site's answer to a callback does not depend on its body
            floor = fetch(bare_url + path)
            if (floor.status, floor.body, sorted(floor.headers)) != (
                    answer.status, answer.body, sorted(answer.headers)):
                raise BenchError(f"the bare app does not answer {key} as the site does")

        files = {
            "status": write_gets(folder / "status.tsv", [f"{p}/status" for p in pages]),
            "page": write_gets(folder / "page.tsv", pages),
            "qr": write_gets(folder / "qr.tsv", qr_paths),
            "link": write_gets(folder / "link.tsv", [link_path]),
        }
        rows: dict[str, Row] = {}
        signed = 0
        for route in options.routes:
            row = rows[route] = Row(route)
            print(f"  {ROUTES[route]}: {options.rounds} rounds of {options.seconds:g} s "
                  "each, site and bare alternating", flush=True)
            warm = files.get(route)
            if callbacks is not None and route == "callbacks":
                warm = folder / "callbacks-warm.tsv"
                signed += callbacks.write(warm, 2000)
            assert warm is not None
            estimate = 2000.0
            if options.warmup > 0:
                estimate = run_wrk(site_url, warm, options.warmup, options.threads,
                                   options.connections).rate
                run_wrk(bare_url, warm, options.warmup, options.threads, options.connections)
            for number in range(options.rounds):
                load = files.get(route)
                if callbacks is not None and route == "callbacks":
                    # Enough unique bodies for three times the warm-up's rate: never a replay.
                    load = folder / f"callbacks-{number}.tsv"
                    signed += callbacks.write(
                        load, max(5000, int(estimate * options.seconds * 3)))
                assert load is not None
                row.site.append(run_wrk(site_url, load, options.seconds, options.threads,
                                        options.connections))
                row.bare.append(run_wrk(bare_url, load, options.seconds, options.threads,
                                        options.connections))
        report = Report(database.name, flags, rows, weight, worker_rss(site.pid),
                        worker_rss(bare.pid), signed, callback_outcomes(database.url))
        processes.stop_all()
        return report


# ---------------------------------------------------------------- the table


def kb(size: float) -> str:
    return f"{size / KB:.1f} KB"


def mb(size: float) -> str:
    return f"{size / KB / KB:.1f} MB"


def verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("meets" if met else "misses")


def print_report(report: Report, options: Options) -> None:
    print()
    print(f"checkout bench on {report.database}: gunicorn {' '.join(report.flags)} "
          "(as `make run`), sandbox mode")
    print(f"wrk -t{options.threads} -c{options.connections}, {options.rounds} rounds x "
          f"{options.seconds:g} s per route, site and bare Flask alternating; "
          f"{os.cpu_count()} cores, loopback; medians of the rounds")
    print(f"per-address limits raised to {UNREACHED} ({', '.join(LIMITS_RAISED)}): wrk is "
          "one address; the limiter still counts every request")
    header = (f"{'route':<22}{'site req/s':>11}{'p50 ms':>8}{'p99 ms':>8}"
              f"{'bare req/s':>12}{'p50 ms':>8}{'p99 ms':>8}{'ratio':>8}")
    print(header)
    print("-" * len(header))
    notes = []
    for route, row in report.rows.items():
        m = Row.median
        errors = sum(s.errors for s in row.site + row.bare)
        mark = " !" if errors else ""
        print(f"{ROUTES[route]:<22}{m(row.site, 'rate'):>11.0f}{m(row.site, 'p50_ms'):>8.1f}"
              f"{m(row.site, 'p99_ms'):>8.1f}{m(row.bare, 'rate'):>12.0f}"
              f"{m(row.bare, 'p50_ms'):>8.1f}{m(row.bare, 'p99_ms'):>8.1f}"
              f"{row.ratio:>7.2f}x{mark}")
        if errors:
            notes.append(f"! {ROUTES[route]}: {errors} failed or non-2xx/3xx answers")
        if route == "callbacks":
            replays = sum(s.replays for s in row.site)
            sent = sum(round(s.rate * options.seconds) for s in row.site)
            notes.append(
                f"callback intake: unique signed callbacks, {report.callbacks_signed} bodies "
                "signed with HMAC-SHA512 up front and sent by wrk's Lua request() from a "
                f"file, each once (about {sent} sent to the site, {replays} replays); each "
                f"is a new transaction on one of {CALLBACK_PAGES} pages of their own; the "
                "site stored them as: " + ", ".join(
                    f"{outcome} {count}" for outcome, count in report.outcomes.items()))
    for note in notes:
        print(note)
    print("ratios: site req/s over bare req/s; the bare app answers the site's own bytes "
          "(bench/bare.py)")

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

    print()
    site_rss, bare_rss = report.site_rss, report.bare_rss
    print("memory per worker (RSS after the load, /proc): site "
          + ", ".join(mb(size) for size in site_rss)
          + f" ({len(site_rss)} worker{'s' if len(site_rss) != 1 else ''}); bare Flask "
          + ", ".join(mb(size) for size in bare_rss))

    status = report.rows.get("status")
    interval = weight.poll_ms / 1000
    if status is not None:
        rate = Row.median(status.site, "rate")
        print(f"customers polling every {interval:g} s (the page's POLL_WAITING_MS) that "
              f"this {os.cpu_count()}-core machine holds: {rate:.0f} req/s x {interval:g} s = "
              f"{rate * interval:.0f}")

    page = report.rows.get("page")
    print()
    print("targets (issue 9):")
    targets = [
        (f"status poll >= {TARGET_STATUS}x bare",
         f"{status.ratio:.2f}x" if status else "-",
         None if status is None else status.ratio >= TARGET_STATUS),
        (f"page >= {TARGET_PAGE}x bare", f"{page.ratio:.2f}x" if page else "-",
         None if page is None else page.ratio >= TARGET_PAGE),
        ("everything a page loads <= 30 KB gzip", kb(total_gzip),
         total_gzip <= TARGET_PAGE_GZIP),
        ("script <= 8 KB (raw, as parsed)", kb(script_raw), script_raw <= TARGET_SCRIPT),
        ("no third-party request", str(len(weight.third_party)), not weight.third_party),
    ]
    for name, value, met in targets:
        print(f"  {name:<40}{value:>10}   {verdict(met)}")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> tuple[Options, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per route (3)")
    parser.add_argument("--seconds", type=int, default=4, help="seconds per round (4)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="seconds of unmeasured load per route and app first (1)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--routes", default=",".join(ROUTES),
                        help=f"comma-separated, of {','.join(ROUTES)}")
    parser.add_argument("--databases", default=None,
                        help="sqlite and/or postgresql (default: sqlite, and postgresql when "
                             "CHECKOUT_DATABASE_URL names one)")
    args = parser.parse_args(argv)
    postgresql_url = os.environ.get("CHECKOUT_DATABASE_URL", "")
    routes = [route.strip() for route in args.routes.split(",") if route.strip()]
    unknown = [route for route in routes if route not in ROUTES]
    if unknown or not routes:
        parser.error(f"unknown routes {unknown}; choose from {','.join(ROUTES)}")
    if not 1 <= args.rounds <= 20 or not 1 <= args.seconds <= 120:
        parser.error("--rounds must be 1 to 20, --seconds 1 to 120 (whole seconds: wrk's)")
    if not 1 <= args.threads <= 64 or not args.threads <= args.connections <= 1024:
        parser.error("--threads 1 to 64, --connections at least --threads and at most 1024")
    if args.databases is None:
        databases = ["sqlite"]
        if postgresql_url.startswith("postgresql"):
            databases.append("postgresql")
    else:
        databases = [name.strip() for name in args.databases.split(",") if name.strip()]
        if not databases or set(databases) - {"sqlite", "postgresql"}:
            parser.error("--databases: sqlite and/or postgresql")
    return Options(args.rounds, args.seconds, max(0, args.warmup), args.threads,
                   args.connections, routes, postgresql_url), databases


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
