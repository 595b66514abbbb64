"""`make bench` cannot rot silently: its harness runs here, briefly, end to end.

Needs Debian's wrk; without it the test skips, unless CI is set (CI installs wrk), when it
fails. On PostgreSQL (CHECKOUT_DATABASE_URL) the bench runs there, in a schema of its own.
It checks that every route of a sale is measured against its floor and printed
with a ratio and a verdict, never the figures: they are the machine's.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kit.live import PATIENCE, wait_until
from kit.site import bench_harness

ROOT = Path(__file__).resolve().parents[2]
BENCH = [sys.executable, str(ROOT / "bench" / "bench.py")]

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None and not os.environ.get("CI"),
    reason="wrk is not installed (apt-get install wrk); CI requires it")


def database() -> str:
    url = os.environ.get("CHECKOUT_DATABASE_URL", "")
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def started_pids(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"started .*? \(pid (\d+)\)", output)]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone too (its parent, the bench, has exited and init reaps it).
    return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()


def has_child(parent: int, name: str) -> bool:
    """Whether process `parent` has a child process called `name` (read from /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # it ended meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses of its own.
        comm, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:]
        if comm == name and int(rest.split()[1]) == parent:
            return True
    return False


# Every route of a sale, the floor it is measured against, and its goal (README, Benchmark).
ROWS = [
    ("status poll", "bare", "0.8"),
    ("page viewed again", "bare", "0.8"),
    ("page, first view", "bare", "0.8"),
    ("invoice page, first (picker)", "bare", "0.8"),
    ("invoice page, first (waiting)", "bare", "0.8"),
    ("QR image (SVG)", "bare", "0.8"),
    ("terminal link, repeated", "bare", "0.5"),
    ("terminal link, first click", "bare+call+insert", "0.5"),
    ("invoices/create, pick later", "bare+call+insert", "0.5"),
    ("invoices/create, fixed", "bare+call+insert", "0.5"),
    ("callback intake", "bare+insert", "0.5"),
    ("status poll, Redis limits", "bare", "0.8"),
]
ONCE_ONLY = ["terminal link, first click", "invoices/create, pick later",
             "invoices/create, fixed", "callback intake"]


def row_pattern(label: str, floor: str, goal: str) -> str:
    """A measured row: site req/s, p50, p99, the floor's name and its three, the ratio, the
    goal and whether it is met (never which: the figures are the machine's)."""
    number = r" +[\d.]+"
    return (rf"^{re.escape(label)} +\d+{number}{number}  {re.escape(floor)} +\d+{number}"
            rf"{number} +\d+\.\d\dx  >= {re.escape(goal)}x (meets|misses)$")


def test_the_bench_measures_every_route_against_its_floor_and_prints_each_verdict() -> None:
    done = subprocess.run(
        [*BENCH, "--rounds", "1", "--seconds", "1", "--warmup", "0", "--first-views", "4",
         "--worker", "--databases", database()],
        cwd=ROOT, capture_output=True, text=True, check=False)  # bounded by pytest-timeout
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    redis = shutil.which("redis-server") is not None
    for label, floor, goal in ROWS:
        if label.endswith("Redis limits") and not redis:
            assert re.search(rf"^{re.escape(label)} +skipped: no redis-server", done.stdout,
                             re.M), output
            continue
        assert re.search(row_pattern(label, floor, goal), done.stdout, re.M), output
    # Once-only requests are made up front and never sent twice to the site.
    for label in ONCE_ONLY:
        assert re.search(rf"^{re.escape(label)}: \d+ requests made and signed up front, "
                         r"each sent once .* 0 replays\)$", done.stdout, re.M), output
    # A floor that pings a stand-in processor has a twin that asks the embedded one instead.
    for label in ONCE_ONLY[:-1]:
        assert re.search(rf"^{re.escape(label)}: for the record, against a floor asking the "
                         r"embedded processor .*: \d+ req/s, ratio \d+\.\d\dx$", done.stdout,
                         re.M), output
    assert re.search(r"stored them as: applied \d+", done.stdout), output
    assert re.search(r"`flask worker` ran beside the site .* it forwarded \d+ callbacks",
                     done.stdout), output
    # First views: more pages than the site keeps renderings of.
    assert "first views: 4 pages of each kind" in done.stdout, output
    assert "CHECKOUT_PAGE_CACHE_SIZE=2 renderings" in done.stdout, output
    assert re.search(r"^callback news on the page .*, p99 of [1-9]\d* during intake: "
                     r"(\d+ ms|> 5 s) .* <= 1 s (meets|misses)", done.stdout, re.M), output
    assert re.search(r"total: \d+ requests, [\d.]+ KB raw, [\d.]+ KB gzip", done.stdout)
    # The page's files by their digest, sent gzipped and kept: a repeat view asks for less.
    for kind, name in (("CSS", r"checkout\.[0-9a-f]{16}\.css"),
                       ("JS", r"checkout\.[0-9a-f]{16}\.js")):
        assert re.search(rf"^  {kind} +/static/{name} .* served gzip, immutable$", done.stdout,
                         re.M), output
    assert re.search(r"a repeat view: 2 requests \(HTML, QR\)", done.stdout), output
    assert re.search(r"memory per worker .*: site [\d.]+ MB", done.stdout)
    assert re.search(r"^capacity on \w+ \(limits in memory\): customers polling every \d+ s "
                     r".*= \d+$", done.stdout, re.M), output
    pids = started_pids(done.stdout)
    # The site, the bare app, its twin asking the embedded processor and the worker; with
    # Redis, redis-server and a second site.
    assert len(pids) == (6 if redis else 4), output
    assert all(gone(pid) for pid in pids), output


def test_the_bench_reads_gunicorn_settings_from_make_run() -> None:
    flags = bench_harness().gunicorn_flags()
    assert "--bind" not in flags and "gthread" in flags
    makefile = (ROOT / "Makefile").read_text()
    assert " ".join(flags) in makefile.replace("\\\n\t\t", "")


def started_with_sigint_ignored(args: list[str]) -> subprocess.Popen[str]:
    """As a CI runner or `make test &` starts it: SIGINT ignored, inherited through exec."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_interrupted_bench_stops_every_process_it_started() -> None:
    # Stopping two apps takes what it takes on a loaded machine: the bound is only there to
    # turn a bench that ignores SIGINT (it would load for 120 s) into a failure. The pipe is
    # closed and the bench reaped on every path, or a later test fails on the open pipe.
    lines: list[str] = []
    with started_with_sigint_ignored(
            [*BENCH, "--rounds", "1", "--seconds", "120", "--warmup", "0", "--routes", "status",
             "--databases", "sqlite"]) as bench:
        try:
            assert bench.stdout is not None
            for line in bench.stdout:
                lines.append(line)
                if "status poll: 1 rounds" in line:  # both apps are up
                    break
            wait_until(lambda: has_child(bench.pid, "wrk") or bench.poll() is not None,
                       what="wrk loading the apps")
            assert bench.poll() is None, "".join(lines) + bench.stdout.read()
            bench.send_signal(signal.SIGINT)
            rest, _ = bench.communicate(timeout=PATIENCE)
        finally:
            if bench.poll() is None:
                bench.kill()
                bench.wait()
    output = "".join(lines) + rest
    assert bench.returncode == 130, output
    assert "interrupted" in output
    pids = started_pids(output)
    assert len(pids) == 2, output
    wait_until(lambda: all(gone(pid) for pid in pids), what=f"the apps stopped: {output}")
