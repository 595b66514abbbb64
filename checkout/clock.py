"""The site's clock: naive UTC everywhere, replaceable in tests through app config."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import overload

from flask import current_app, has_app_context


def system_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def now() -> datetime:
    """Naive UTC now; `app.config["CLOCK"]` (a callable) overrides it in tests."""
    if has_app_context():
        clock: Callable[[], datetime] | None = current_app.config.get("CLOCK")
        if clock is not None:
            return clock()
    return system_now()


_EPOCH = datetime(1970, 1, 1)


@overload
def unix(moment: datetime) -> int: ...
@overload
def unix(moment: None) -> None: ...
def unix(moment: datetime | None) -> int | None:
    """Seconds since 1970 of a naive UTC moment (None stays None): how the stored page model
    and the processor's wire format keep their moments."""
    return None if moment is None else int((moment - _EPOCH).total_seconds())


def from_unix(value: object) -> datetime | None:
    """The naive UTC moment of the processor's unix seconds; None for anything that is no
    plausible moment (not an integer, not after 1970, or some 4,000 years ahead)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**37:
        return None
    return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
