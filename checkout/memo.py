"""Answers worked out from what clients send (a header, a query), kept per process.

Browsers send the same few Accept-Language and Accept-Encoding headers again and again, so
each is read once; any client can send any, so only short ones are kept, and a bounded
number of them (least recently used out first)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

R = TypeVar("R")


class KeptWhenShort(Generic[R]):
    """`answer`, kept for arguments whose text is at most `longest` characters in all."""

    def __init__(self, answer: Callable[..., R], longest: int, size: int) -> None:
        self.answer = answer
        self.longest = longest
        self.kept = functools.lru_cache(maxsize=size)(answer)
        functools.update_wrapper(self, answer)

    def __call__(self, *args: Hashable) -> R:
        if sum(len(text) for text in args if isinstance(text, str)) > self.longest:
            return self.answer(*args)
        return self.kept(*args)


def kept_when_short(longest: int, size: int) -> Callable[[Callable[..., R]], KeptWhenShort[R]]:
    """Decorate a pure function of strings (and other hashable values, given by position)
    to keep its answers for short arguments."""
    return lambda answer: KeptWhenShort(answer, longest, size)
