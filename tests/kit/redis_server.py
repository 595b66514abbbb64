"""A Redis server of the tests' own (Debian's `redis-server`), on a free loopback port, in a
temporary folder, keeping nothing on disk; stopped on every path. Without `redis-server` the
tests that need it skip with a message, unless CI=true or CHECKOUT_REQUIRE_REDIS=1, where
they fail: a CI run must not pass quietly without them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

MISSING = "the shared rate-limit tests need Debian's redis-server (apt-get install redis-server)"


def required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("CHECKOUT_REQUIRE_REDIS") == "1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process at a time on one port: stop() and start() again keep the
    address (the site's URL), as a restarted Redis would."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None, "already running"
        log = self.folder / "redis.log"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
                cwd=self.folder, stdout=out, stderr=out)
        deadline = time.monotonic() + 10
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"redis-server did not come up: {log.read_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def answers(self) -> bool:
        with self.client() as client:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        if required():
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    with tempfile.TemporaryDirectory(prefix="checkout-redis-") as folder:
        server = RedisServer(binary, Path(folder))
        try:
            server.start()
            yield server
        finally:
            server.stop()
