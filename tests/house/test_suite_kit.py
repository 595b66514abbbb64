"""The suite's own machinery holds under load and under pytest-xdist: a hang becomes a failure
with a stack, a stopped live server lets go of a browser's kept-alive connection, and a line a
test leaves for the end of the run is printed even when a worker ran the test."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
from flask import Flask
from hypothesis import HealthCheck, settings
from kit.callbacks import EXAMPLES, Shop, deposit_body, serve_shop, signed_headers
from kit.live import PATIENCE, PeerServer, start_live_server, wait_until

TESTS = Path(__file__).resolve().parents[1]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest on `folder` alone (its own empty config), with the suite's conftest."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(
        "import importlib.util, sys\n"
        # The suite's conftest imports the kit, a package in the tests' folder.
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        f"spec = importlib.util.spec_from_file_location('suite_conftest', "
        f"{str(TESTS / 'conftest.py')!r})\n"
        "suite = sys.modules['suite_conftest'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(suite)\n"
        "pytest_testnodedown = suite.pytest_testnodedown\n"
        "pytest_terminal_summary = suite.pytest_terminal_summary\n"
        "summary_line = suite.summary_line\n")
    return subprocess.run([*PYTEST, "--rootdir", str(folder), *args, str(folder)],
                          cwd=folder, capture_output=True, text=True, timeout=PATIENCE,
                          check=False)


def test_a_line_left_for_the_end_of_the_run_is_printed_with_and_without_workers(
        tmp_path: Path) -> None:
    (tmp_path / "test_lines.py").write_text(
        "import pytest\n"
        "from conftest import summary_line\n"
        "@pytest.mark.parametrize('n', range(4))\n"
        "def test_leaves_a_line(request, n):\n"
        "    summary_line(request.config, f'counted {n} on PostgreSQL')\n")
    for workers in ("0", "2"):
        done = run_pytest(tmp_path, "-n", workers)
        assert done.returncode == 0, done.stdout + done.stderr
        printed = sorted(line for line in done.stdout.splitlines() if line.startswith("counted"))
        assert printed == [f"counted {n} on PostgreSQL" for n in range(4)], done.stdout


def test_a_hang_fails_with_the_stack_of_where_it_hung(tmp_path: Path) -> None:
    """The suite's configuration (pytest-timeout, method thread), with a short bound."""
    (tmp_path / "test_hang.py").write_text(
        "import threading\n"
        "def test_waits_for_what_never_comes():\n"
        "    threading.Event().wait()\n")
    done = run_pytest(tmp_path, "-o", "timeout=3", "-o", "timeout_method=thread")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "Timeout" in output and "test_waits_for_what_never_comes" in output, output


def test_the_suite_bounds_every_test_and_measures_no_speed() -> None:
    config = (TESTS.parent / "pyproject.toml").read_text()
    assert '\ntimeout = 300\n' in config and '\ntimeout_method = "thread"\n' in config
    # Hypothesis's own clocks: a 200 ms deadline per example, a health check on generation.
    assert settings.default.deadline is None
    assert HealthCheck.too_slow in settings.default.suppress_health_check


def test_a_stopped_live_server_lets_go_of_a_connection_it_is_reading() -> None:
    """A browser opens connections ahead of need and keeps them. The server's thread reading
    one used to live on after the test (for as long as the browser), holding the finished
    test's app; now stopping the server closes it."""
    app = Flask("held_open")
    live = start_live_server(app)
    # The threads alive before: under xdist other tests' threads come and go in this
    # process too, so the reader is known by name, not by a count.
    before = set(threading.enumerate())
    try:
        with socket.create_connection(("127.0.0.1", live.server.server_port)) as held:
            held.sendall(b"GET / HT")  # a request line that never ends
            wait_until(lambda: readers(before), what="a thread reading it")
            reader = readers(before)
            live.stop()
            held.settimeout(0)
            wait_until(lambda: closed(held), what="the server closing its end")
        wait_until(lambda: not any(thread.is_alive() for thread in reader),
                   what="its reader thread ended")
    finally:
        live.stop()


def readers(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads started since `before` by the server to handle a request."""
    return [thread for thread in threading.enumerate()
            if thread not in before and "process_request_thread" in thread.name]


def closed(connection: socket.socket) -> bool:
    try:
        return connection.recv(1) == b""
    except BlockingIOError:
        return False  # open, nothing to read
    except ConnectionResetError:
        return True


def test_a_peer_server_prints_no_traceback_for_a_client_that_hung_up(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A hang-up is ordinary for a test's HTTP peer; anything else is still printed."""
    server = PeerServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        for error in (BrokenPipeError(), ConnectionResetError(), ValueError("a real fault")):
            try:
                raise error
            except Exception:
                server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    printed = capsys.readouterr().err
    assert printed.count("Traceback") == 1 and "a real fault" in printed, printed


def test_the_shop_answers_its_script_then_200_and_records_signed_bodies() -> None:
    shop = Shop(script=[500, 302])
    stop = serve_shop(shop)
    try:
        body = deposit_body(5, "confirmed")
        statuses = [requests.post(shop.url, data=body, headers=signed_headers(body), timeout=30,
                                  allow_redirects=False).status_code for _ in range(3)]
    finally:
        stop()
    assert statuses == [500, 302, 200]
    assert [r.body for r in shop.received] == [body] * 3
    assert all(shop.verifies(r) for r in shop.received)
    assert not shop.verifies(shop.received[0], "another-secret")


def test_the_examples_are_the_documented_json() -> None:
    for name, body in EXAMPLES.items():
        payload = json.loads(body)
        assert isinstance(payload["id"], int), name
        assert b" " not in body.replace(b"Invalid params: expected a hex-encoded hash with 0x "
                                        b"prefix.", b""), name
