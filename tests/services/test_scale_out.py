"""Scale-out: two gunicorn instances and two delivery workers on one PostgreSQL are one site.

Everything runs as the README's "Production deployment" says: sandbox mode off, one
CHECKOUT_SECRET_KEY for every process, `flask db upgrade` once, `flask merchant add`, two
gunicorn instances of two worker processes each and two `flask worker` processes, all on one
database. The processor is the embedded sandbox served apart (in this process, on a schema
of its own), as a real processor would be; the shop is a real HTTP webhook.

Each of the two worlds gets a schema of its own in CHECKOUT_DATABASE_URL's database,
dropped afterwards: CI's role needs no CREATEDB for that, and the test session's own tables
(schema `public`) are never touched. SQLite is one machine's file, not a shared database:
there the test skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from conftest import summary_line
from kit.callbacks import Received, Shop, deposit_body, post_live, serve_shop
from kit.invoices import ORDER, TestShop
from kit.live import PATIENCE, start_live_server, wait_until
from kit.site import MERCHANT_KEY, MERCHANT_SECRET, bench_harness
from sqlalchemy import Engine, func, select

from checkout import ROOT, create_app, db, migrate, terminal
from checkout.models import AppliedCallback, Callback, Delivery

DATABASE_URL = os.environ.get("CHECKOUT_DATABASE_URL", "")
pytestmark = [
    pytest.mark.postgres_only,
    # One two-instance deployment (a module fixture) for all: its tests share one worker.
    pytest.mark.xdist_group("scale_out"),
    pytest.mark.skipif(
        not DATABASE_URL.startswith("postgresql"),
        reason="scale-out needs one shared PostgreSQL (CHECKOUT_DATABASE_URL=postgresql+psycopg://"
               "…); .ci/run runs it there"),
]

HOST = "127.0.0.1"
PUBLIC_URL = "https://pay.example"  # the load balancer's address; never called here
BAD_CALLBACKS = 5  # refused callbacks per minute and client address, in each process
DELIVERY_TIMEOUT = 5  # seconds; the claim's lease is twice that
PAGES = 4
DEPOSITS = 3  # per page, each seen then confirmed: two events apiece
FIRST_ID = 3_000_000_000  # past 2**31: the processor's ids are 64-bit
BIN = Path(sys.executable).parent


# ---------------------------------------------------------------- the parts


@contextlib.contextmanager
def processor(url: str, folder: Path) -> Iterator[str]:
    """The embedded sandbox as the site's processor, over HTTP; its API base URL."""
    migrate.upgrade(url, sandbox=True)
    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(folder / "processor"),
                      "SANDBOX": True, "PROCESSOR_URL": None, "SECRET_KEY": "processor"})
    app.extensions["sandbox.open_account"](11, MERCHANT_KEY, MERCHANT_SECRET)
    live = start_live_server(app, HOST)
    try:
        yield f"{live.url}/sandbox/api/v2"
    finally:
        live.server.shutdown()
        live.server.server_close()
        app.extensions[db.EXTENSION].remove()
        app.extensions[db.EXTENSION + ".engine"].dispose()


@dataclass
class HoldingShop(Shop):
    """Notes which worker sent each callback (by pid; 0: none of them). Once every worker
    has delivered and `hold_after` callbacks came, holds the next one until `release` is
    set; answers the rest at once."""

    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    hold_after: int = 0
    senders: Counter[int] = field(default_factory=Counter)
    caught: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    held: Received | None = None
    held_by: subprocess.Popen[bytes] | None = None

    def handle(self, headers: dict[str, str], body: bytes,
               peer: tuple[str, int] | None = None) -> int:
        status = super().handle(headers, body, peer)
        sender = sender_of(peer, self.url, self.workers) if peer else None
        with self.lock:
            hold = (self.held is None and sender is not None and self.workers != []
                    and len(self.senders) == len(self.workers)
                    and sum(self.senders.values()) >= self.hold_after)
            if hold:
                self.held, self.held_by = Received(headers, body, peer), sender
            self.senders[sender.pid if sender else 0] += 1
        if hold:
            self.caught.set()
            self.release.wait(60)
        return status


@contextlib.contextmanager
def holding_shop() -> Iterator[HoldingShop]:
    shop = HoldingShop()
    stop = serve_shop(shop)
    try:
        yield shop
    finally:
        shop.release.set()
        stop()


@dataclass
class Processes:
    """What the test starts, each in a session of its own, all stopped at the end."""

    folder: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                         for log in sorted(self.folder.glob("*.log")))


def flask(*args: str) -> list[str]:
    return [str(BIN / "flask"), "--app", "checkout", *args]


def production_environment(database_url: str, processor_url: str) -> dict[str, str]:
    """One environment for every process of the site, as a deployment would have it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHECKOUT_")}
    env.update({
        "CHECKOUT_DATABASE_URL": database_url,
        "CHECKOUT_PROCESSOR_URL": processor_url,  # sandbox mode off
        "CHECKOUT_SECRET_KEY": secrets.token_hex(32),  # the same in every process
        "CHECKOUT_PUBLIC_URL": PUBLIC_URL,
        "CHECKOUT_TRUSTED_PROXIES": "1",
        "CHECKOUT_TRUSTED_HOSTS": HOST,
        "CHECKOUT_DELIVERY_TIMEOUT": str(DELIVERY_TIMEOUT),
        "CHECKOUT_DELIVERY_LEASE": str(2 * DELIVERY_TIMEOUT),
        "CHECKOUT_RATELIMIT_BAD_CALLBACKS": f"{BAD_CALLBACKS} per minute",
    })
    return env


def wait_until_up(url: str, process: subprocess.Popen[bytes], processes: Processes) -> None:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        assert process.poll() is None, processes.logs()
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered\n{processes.logs()}")


@dataclass
class Site:
    instances: list[str]  # the two gunicorn instances' base URLs
    workers: list[subprocess.Popen[bytes]]  # the two `flask worker` processes
    shop: HoldingShop
    engine: Engine  # the site's schema, for counting what it stored
    processes: Processes

    def count(self, query: Any) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def wait_for_deliveries(self, seconds: float) -> None:
        """Until no delivery is left to send; else what the outbox holds."""
        deadline = time.monotonic() + seconds
        while self.count(select(func.count()).select_from(Delivery).where(
                Delivery.state != "delivered")) > 0:
            if time.monotonic() > deadline:
                with self.engine.connect() as conn:
                    states = Counter(conn.execute(select(
                        Delivery.state, Delivery.attempts, Delivery.last_error)).all())
                raise AssertionError(f"deliveries after {seconds} s: {states}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def site(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("scale")
    with contextlib.ExitStack() as stack:
        harness = bench_harness()
        schema = harness.schema_of_its_own
        site_url = stack.enter_context(schema(database_url, "scale"))
        processor_url = stack.enter_context(
            processor(stack.enter_context(schema(database_url, "scale_processor")), folder))
        shop = stack.enter_context(holding_shop())
        env = production_environment(site_url, processor_url)
        # Once per deployment, before any instance starts: the schema, then the merchant.
        for command in (flask("db", "upgrade"),
                        flask("merchant", "add", "--client-id", "11", "--name", "Shop",
                              "--key", MERCHANT_KEY, "--secret", MERCHANT_SECRET,
                              "--return-host", "shop.example", "--webhook-url", shop.url)):
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=PATIENCE,
                                  check=False)
            assert done.returncode == 0, done.stdout + done.stderr

        processes = Processes(folder)
        stack.callback(processes.stop_all)
        instances, started = [], []
        for name in ("a", "b"):
            port = harness.free_port()
            instances.append(f"http://{HOST}:{port}")
            started.append(processes.start(f"gunicorn-{name}", [
                str(BIN / "gunicorn"), "--bind", f"{HOST}:{port}", "--workers", "2",
                "--worker-class", "gthread", "--threads", "8", "wsgi:app"], env))
        workers = [processes.start(f"worker-{n}", flask("worker", "--idle-sleep", "0.05"), env)
                   for n in (1, 2)]
        shop.workers = workers
        for url, process in zip(instances, started, strict=True):
            wait_until_up(url, process, processes)
        engine = db.make_engine(site_url)
        stack.callback(engine.dispose)
        yield Site(instances, workers, shop, engine, processes)


# ---------------------------------------------------------------- customers, processor, shop


def link_query(foreign_id: str, **fields: Any) -> str:
    payload = {"client_id": 11, "currency": "BTC", "foreign_id": foreign_id, **fields}
    return urlencode(terminal.encode_link(payload, MERCHANT_SECRET))


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together: each first click, each replay in a race."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait(10)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def open_on_both(site: Site, foreign_id: str) -> str:
    """A customer's link clicked on both instances at once: one page; its path."""
    query = link_query(foreign_id, amount="0.01")
    answers = at_once([lambda url=url: requests.get(f"{url}/terminal?{query}", timeout=30,
                                                    allow_redirects=False)
                       for url in site.instances])
    assert [a.status_code for a in answers] == [303, 303], [a.text[:300] for a in answers]
    locations = {a.headers["Location"] for a in answers}
    assert len(locations) == 1, locations
    return urlsplit(locations.pop()).path


def status(url: str, page: str, etag: str | None = None) -> requests.Response:
    headers = {"If-None-Match": etag} if etag else {}
    return requests.get(f"{url}{page}/status", headers=headers, timeout=30)


@contextlib.contextmanager
def polling(site: Site, pages: list[str]) -> Iterator[Counter[int]]:
    """Customers polling every page on both instances meanwhile; the statuses they got
    (0: none)."""
    answers: Counter[int] = Counter()
    stop = threading.Event()

    def poll() -> None:
        tags: dict[tuple[str, str], str] = {}
        while not stop.is_set():
            for page in pages:
                for url in site.instances:
                    try:
                        answer = status(url, page, tags.get((url, page)))
                    except requests.RequestException:
                        answers[0] += 1  # no answer at all
                        continue
                    answers[answer.status_code] += 1
                    tags[(url, page)] = answer.headers.get("ETag", "")

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        yield answers
    finally:
        stop.set()
        poller.join(30)


def sender_of(peer: tuple[str, int], shop_url: str,
              candidates: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes] | None:
    """Which process holds the client end of this connection to the shop (Linux /proc)."""
    shop_port = urlsplit(shop_url).port
    sockets = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)) == (peer[1], shop_port):
            sockets.add(f"socket:[{inode}]")
    for process in candidates:
        with contextlib.suppress(OSError):  # a process that is gone holds nothing
            for fd in Path(f"/proc/{process.pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in sockets:
                        return process
    return None


def read_alike(site: Site, page: str) -> dict[str, Any]:
    """The page's model as both instances answer it, one after the other: the same, but for
    `seconds_left`, counted at reading, which may have ticked once in between."""
    first, second = (status(url, page).json() for url in site.instances)
    left = first.pop("seconds_left"), second.pop("seconds_left")
    assert first == second
    assert left[0] == left[1] or left[0] - left[1] == 1, left
    return first


def kill_the_sender(site: Site) -> tuple[Received, subprocess.Popen[bytes]]:
    """SIGKILL the worker whose POST the shop is holding, then let the shop go on."""
    assert site.shop.caught.wait(PATIENCE), (site.shop.senders, site.processes.logs())
    held, victim = site.shop.held, site.shop.held_by
    assert held is not None and victim is not None and victim.poll() is None
    victim.kill()
    victim.wait(10)
    site.shop.release.set()
    return held, victim


def event_ids(bodies: list[bytes]) -> set[int]:
    return {int(json.loads(body)["id"]) for body in bodies}


def ours(received: list[Received], ids: set[int]) -> Counter[bytes]:
    return Counter(r.body for r in received if json.loads(r.body).get("id") in ids)


# ---------------------------------------------------------------- the site as one


def test_two_instances_and_two_workers_forward_every_event_through_a_killed_worker(
        site: Site, request: pytest.FixtureRequest) -> None:
    started = time.monotonic()
    a, b = site.instances
    pages = [open_on_both(site, f"scale-{n}") for n in range(PAGES)]
    models = [status(b, page).json() for page in pages]
    assert all(model["status"] == "waiting" for model in models)

    # Unique signed events, each deposit seen and then confirmed, alternately to A and B.
    bodies, number = [], FIRST_ID
    for index, model in enumerate(models):
        for _ in range(DEPOSITS):
            for state in ("not_confirmed", "confirmed"):
                bodies.append(deposit_body(number, state, address=model["address"],
                                           foreign_id=f"scale-{index}",
                                           amount="0.00400000", txid=f"{number:064x}"))
            number += 1
    races = [deposit_body(number + n, "confirmed", address=models[0]["address"],
                          foreign_id="scale-0", amount="0.00100000",
                          txid=f"{number + n:064x}") for n in range(4)]
    replays = bodies[::3]

    site.shop.hold_after = len(bodies) // 3
    with polling(site, pages) as polled, ThreadPoolExecutor(1) as killer:
        # The worker caught mid-delivery (the shop holds its POST) is killed outright, well
        # within its POST's timeout: it never learns how the POST went.
        killed = killer.submit(kill_the_sender, site)
        with ThreadPoolExecutor(6) as pool:
            answered = list(pool.map(lambda pair: post_live(*pair).status_code,
                                     [(site.instances[n % 2], body)
                                      for n, body in enumerate(bodies)]))
        assert answered == [200] * len(bodies)
        held, victim = killed.result(30)

        # The processor replays: to the other instance, and the same news to both at once.
        assert [post_live(site.instances[(n + 1) % 2], body).status_code
                for n, body in enumerate(replays)] == [200] * len(replays)
        for body in races:
            assert [r.status_code for r in at_once(
                [lambda url=url, body=body: post_live(url, body) for url in site.instances])
            ] == [200, 200]

        # The surviving worker takes the dead one's delivery once its lease runs out.
        events = bodies + races
        site.wait_for_deliveries(40 + 2 * DELIVERY_TIMEOUT)

    assert set(polled) <= {200, 304} and polled[200] > 0, polled
    assert site.count(select(func.count()).select_from(Callback)) == (
        len(bodies) + len(replays) + 2 * len(races))
    assert site.count(select(func.count()).select_from(Callback).where(
        Callback.outcome == "duplicate")) == len(replays) + len(races)
    assert site.count(select(func.count()).select_from(AppliedCallback)) == len(events)
    assert site.count(select(func.count()).select_from(Delivery)) == len(events)
    assert site.count(select(func.count()).select_from(Delivery).where(
        Delivery.attempts != 1)) == 0  # the killed attempt wrote nothing

    # At least once: every event arrived, signed; only the one cut off mid-POST came twice.
    received = ours(site.shop.received, event_ids(events))
    assert set(received) == set(events)
    assert received[held.body] == 2
    assert {body: n for body, n in received.items() if n != 1} == {held.body: 2}
    assert all(site.shop.verifies(r) for r in site.shop.received)
    # Both workers delivered; the victim's last POST was the one cut off.
    [survivor] = [w for w in site.workers if w is not victim]
    by = dict(site.shop.senders)
    assert by.get(0) is None and by[victim.pid] >= 2 and by[survivor.pid] >= 1, by

    # Every page reads the same on both instances, to the byte and the ETag.
    for page in pages:  # no clock on these: the very same bytes
        on_a, on_b = status(a, page), status(b, page)
        assert on_a.content == on_b.content and on_a.headers["ETag"] == on_b.headers["ETag"]
        assert status(b, page, on_a.headers["ETag"]).status_code == 304
        model = on_a.json()
        assert (model["status"], len(model["transactions"])) == (
            "confirmed", DEPOSITS + (len(races) if page == pages[0] else 0))
    assert "Strict-Transport-Security" in on_a.headers  # production mode, not the sandbox
    summary_line(request.config, (
        f"scale-out on PostgreSQL: 2 gunicorn instances x 2 workers, 2 delivery workers "
        f"(1 killed mid-delivery, after {by[victim.pid] - 1} deliveries; the other made "
        f"{by[survivor.pid]}): {len(events)} events, {len(received)} delivered, 1 twice, "
        f"0 lost; {len(replays) + len(races)} replays forwarded 0 times; "
        f"{sum(polled.values())} polls; {time.monotonic() - started:.1f} s"))


def test_an_invoice_made_on_one_instance_is_picked_on_the_other(site: Site) -> None:
    a, b = site.instances
    created = TestShop(a).create(ORDER, foreign_id="scale-order")
    assert created.status_code == 200, created.text
    url = created.json()["data"]["url"]
    assert url.startswith(f"{PUBLIC_URL}/p/")
    page = urlsplit(url).path
    # The picker offers what the workers' rates allow: wait for the first refresh.
    wait_until(lambda: 'value="BTC"' in requests.get(f"{b}{page}", timeout=30).text,
               what="the picker offering BTC on B")
    html = requests.get(f"{b}{page}", timeout=30).text
    token = html.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]
    picked = requests.post(f"{a}{page}/pick", data={"csrf_token": token, "currency": "BTC"},
                           allow_redirects=False, timeout=30)
    assert picked.status_code == 303, picked.text[:500]
    model = read_alike(site, page)
    assert model["currency"] == "BTC" and model["address"]


def test_rate_limits_without_redis_count_in_each_process_alone(
        site: Site) -> None:
    """Without CHECKOUT_RATELIMIT_STORAGE_URL each gunicorn worker counts alone: a client is
    limited by one process and not yet by the next. The README asks for Redis there."""
    a, b = site.instances
    body = b'{"id":1,"type":"deposit","status":"confirmed"}'
    forged = {"Content-Type": "application/json", "X-Processing-Key": MERCHANT_KEY,
              "X-Processing-Signature": "0" * 128}

    def refused(url: str, client: str) -> requests.Response:
        # Through the one trusted proxy: the limit counts the address it reports.
        return requests.post(f"{url}/callbacks/coinspaid", data=body, timeout=30,
                             headers={**forged, "X-Forwarded-For": client})

    codes = []
    # Instance A runs two processes: the client is limited once one of them has counted enough.
    for _ in range(2 * BAD_CALLBACKS + 1):
        answer = refused(a, "203.0.113.9")
        codes.append(answer.status_code)
        if answer.status_code == 429:
            break
    assert codes[:BAD_CALLBACKS] == [403] * BAD_CALLBACKS and codes[-1] == 429, codes
    assert int(answer.headers["Retry-After"]) > 0
    assert [refused(b, "203.0.113.9").status_code for _ in range(BAD_CALLBACKS)] == [
        403] * BAD_CALLBACKS
    assert refused(a, "203.0.113.10").status_code == 403
