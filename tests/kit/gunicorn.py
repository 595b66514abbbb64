"""The site under a real gunicorn, in a subprocess, on the test database (sandbox mode)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from checkout import ROOT
from kit.live import PATIENCE

GUNICORN = Path(sys.executable).parent / "gunicorn"


@contextmanager
def serving(database_url: str, tmp_path: Path, *flags: str,
            processor_timeout: float = 10.0, env: dict[str, str] | None = None,
            stdout: int | None = None) -> Iterator[str]:
    """`gunicorn [flags] wsgi:app` in sandbox mode (no processor URL, no public URL: the
    site learns its address from each request, as for a new user); yields its base URL.
    `env`: settings of this instance (CHECKOUT_...), over the test run's own. `stdout`: a
    file descriptor for its standard output (the access log's `-`), else the log file."""
    environment = {**os.environ, "CHECKOUT_DATABASE_URL": database_url,
                   "CHECKOUT_SECRET_KEY": "gunicorn-test-key",
                   "CHECKOUT_PROCESSOR_TIMEOUT": str(processor_timeout)}
    for name in ("CHECKOUT_PROCESSOR_URL", "CHECKOUT_PUBLIC_URL", "GUNICORN_CMD_ARGS"):
        environment.pop(name, None)
    environment.update(env or {})
    log_path = tmp_path / "gunicorn.log"
    # Port 0 and its own control socket: nothing shared with other servers on this machine.
    args = [str(GUNICORN), "--bind", "127.0.0.1:0", "--control-socket",
            str(tmp_path / "gunicorn.ctl"), *flags, "wsgi:app"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, cwd=ROOT, env=environment,
                                   stdout=log if stdout is None else stdout, stderr=log)
    try:
        url = wait_until_up(process, log_path)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)  # a graceful stop; a slow one is not waited for, only killed
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited: {log_path.read_text()}")
        found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log_path.read_text())
        if found:
            try:
                if requests.get(found[1] + "/healthz", timeout=2).status_code == 200:
                    return found[1]
            except requests.RequestException:
                pass
        time.sleep(0.05)
    raise AssertionError(f"gunicorn did not come up: {log_path.read_text()}")
