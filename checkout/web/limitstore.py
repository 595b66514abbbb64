"""Shared rate-limit storage (Redis) that the site outlives: while it does not answer, each
process counts in its own memory, says so once in its log, and asks the shared storage again
every few seconds; once it answers, counting is shared again.

Flask-Limiter has a fallback of its own, but only its own checks see it: the front layer
(front.py) counts polls and page views in the same storage before Flask runs, and a process
that only answered polls would never switch back. Here the storage itself falls back, so
every counter, wherever it is asked, counts somewhere and none fails a request.

Limits counted in memory meanwhile are per process (as without Redis), and what was counted
in Redis before an outage that emptied it is forgotten: the counts start over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

from limits.errors import StorageError
from limits.storage import Storage, storage_from_string

log = logging.getLogger(__name__)

PREFIX = "checkout-fallback+"
MEMORY = "checkout-memory://"  # ratelimit.ProcessMemory
MEMORY_SCHEMES = frozenset({"checkout-memory", "memory"})
# `limits`' shared storages (its async ones are no use to Flask-Limiter).
SHARED_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster", "valkey",
                  "valkeys", "valkey+unix", "valkey+sentinel", "valkey+cluster", "memcached",
                  "mongodb", "mongodb+srv")
# A Redis that is down refuses at once; one that does not answer (a lost network) must not
# hold a customer's request for long.
TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
T = TypeVar("T")


def with_fallback(uri: str) -> str:
    """The storage URI the limiter is given: a shared storage wrapped in the fallback."""
    scheme = urlparse(uri).scheme
    if scheme not in SHARED_SCHEMES:
        return uri  # memory, or already wrapped; an unknown scheme fails as before
    return PREFIX + uri


class FallbackStorage(Storage):
    """The shared storage while it answers, this process's memory while it does not."""

    STORAGE_SCHEME = [PREFIX + scheme for scheme in SHARED_SCHEMES]
    RETRY_EVERY = 2.0  # seconds between two questions to a shared storage that is down

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: Any) -> None:
        assert uri is not None and uri.startswith(PREFIX)
        shared_uri = uri[len(PREFIX):]
        shared_options = {**TIMEOUTS, **options} if urlparse(shared_uri).scheme.startswith(
            ("redis", "valkey")) else options
        self.shared: Storage = storage_from_string(shared_uri, **shared_options)  # type: ignore[assignment]
        self.memory: Storage = storage_from_string(MEMORY)  # type: ignore[assignment]
        errors = self.shared.base_exceptions
        self.errors: tuple[type[Exception], ...] = (
            *(errors if isinstance(errors, tuple) else (errors,)), StorageError, OSError)
        self.down = False
        self.retry_at = 0.0
        self.probing = threading.Lock()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return self.errors

    # ------------------------------------------------------------ which storage counts

    def counted(self, ask: Callable[[Storage], T]) -> T:
        if not self.down or self.answers_again():
            try:
                return ask(self.shared)
            except self.errors as exc:
                self.fell_back(exc)
        return ask(self.memory)

    def fell_back(self, exc: Exception) -> None:
        with self.probing:
            if self.down:
                return
            self.down, self.retry_at = True, time.monotonic() + self.RETRY_EVERY
        # The error's class only: its text may name the storage's address or user.
        log.warning("rate limits: shared storage unreachable (%s); counting in this "
                    "process's memory until it answers", type(exc).__name__)

    def answers_again(self) -> bool:
        """Every RETRY_EVERY seconds, one request (not all at once) asks the shared storage."""
        if time.monotonic() < self.retry_at or not self.probing.acquire(blocking=False):
            return False
        try:
            self.retry_at = time.monotonic() + self.RETRY_EVERY
            if not self.shared.check():
                return False
            self.down = False
        finally:
            self.probing.release()
        log.warning("rate limits: shared storage answers again; counting there")
        return True

    # ------------------------------------------------------------ the Storage interface

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.counted(lambda storage: storage.incr(key, expiry, amount))

    def get(self, key: str) -> int:
        return self.counted(lambda storage: storage.get(key))

    def get_expiry(self, key: str) -> float:
        return self.counted(lambda storage: storage.get_expiry(key))

    def check(self) -> bool:
        return True  # something always counts

    def reset(self) -> int | None:
        return self.counted(lambda storage: storage.reset())

    def clear(self, key: str) -> None:
        self.counted(lambda storage: storage.clear(key))
