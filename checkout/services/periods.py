"""Date ranges the back office reads from its URLs (`from=YYYY-MM-DD&to=YYYY-MM-DD`).

Both ends are whole days in UTC and `to` is included, so a link names the days a person
sees. Anything else (a bad date, a year past 9999, a range backwards) is refused with a
message rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class PeriodError(ValueError):
    """A date range that cannot be read; the message says which part."""


@dataclass(frozen=True)
class Period:
    first: date  # included
    last: date  # included

    @property
    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, self.first.day)

    @property
    def end(self) -> datetime:
        """The first moment after the period (exclusive bound for queries)."""
        return datetime(self.last.year, self.last.month, self.last.day) + timedelta(days=1)

    def query(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


def parse_day(value: str | None, name: str) -> date | None:
    """`value` as a day; None when empty. Raises PeriodError naming `name`."""
    text = (value or "").strip()
    if not text:
        return None
    if not _DAY.fullmatch(text):
        raise PeriodError(name)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise PeriodError(name) from None
    if day.year < 2000 or day > date(9998, 12, 31):  # keeps `end` inside datetime's range
        raise PeriodError(name)
    return day


def parse(given_from: str | None, given_to: str | None, *, today: date,
          default_days: int | None) -> Period | None:
    """The period a URL names; with an end missing, the last `default_days` days up to
    today (or no bound at all when `default_days` is None and both are missing)."""
    first = parse_day(given_from, "from")
    last = parse_day(given_to, "to")
    if first is None and last is None and default_days is None:
        return None
    if last is None:
        last = max(today, first) if first is not None else today
    if first is None:
        first = last - timedelta(days=(default_days or 1) - 1) if default_days else date(2000, 1, 1)
    if first > last:
        raise PeriodError("range")
    return Period(first, last)


def within_days(column: InstrumentedAttribute[datetime], first: date | None,
                last: date | None) -> list[ColumnElement[bool]]:
    """Conditions keeping `column` within the days `first`..`last` (both included, UTC);
    either end may be open (None). The last day there is bounds nothing: no day follows it."""
    conditions: list[ColumnElement[bool]] = []
    if first is not None:
        conditions.append(column >= datetime.combine(first, time()))
    if last is not None and last < date.max:
        conditions.append(column < datetime.combine(last + timedelta(days=1), time()))
    return conditions
