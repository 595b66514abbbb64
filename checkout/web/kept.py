"""What a process keeps in its memory (renderings, QR images, pages' rows, rate-limit
blocks): at most `size` values, the least recently used out first, safe across a worker's
threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Kept(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[K, V] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value kept for `key`, now the most recently used."""
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
            return found

    def peek(self, key: K) -> V | None:
        """The value kept for `key`, its place in the order unchanged."""
        with self.lock:
            return self.entries.get(key)

    def put(self, key: K, value: V) -> None:
        with self.lock:
            self.entries[key] = value
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def drop(self, key: K) -> None:
        with self.lock:
            self.entries.pop(key, None)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def __contains__(self, key: object) -> bool:
        with self.lock:
            return key in self.entries
