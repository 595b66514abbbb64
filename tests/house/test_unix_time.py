"""Unix seconds are converted in one place (clock.unix, clock.from_unix): the stored page
model's moments, the shop's invoice answers and the processor's quotes all count the same
seconds, and a second helper cannot drift (a naive moment taken as local time, an hour off).
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

import checkout
from checkout import clock

PACKAGE = Path(checkout.__file__).parent


def conversions(source: str) -> list[int]:
    """Lines that turn a moment into unix seconds or back by hand: `.timestamp()`,
    `fromtimestamp(...)`, or arithmetic with `datetime(1970, 1, 1)`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("timestamp", "fromtimestamp", "utcfromtimestamp"):
            found.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id == "datetime" and [ast.unparse(a) for a in node.args[:1]] == ["1970"]:
            found.append(node.lineno)
    return sorted(found)


def test_the_finder_sees_each_hand_made_conversion() -> None:
    source = ("a = int(moment.replace(tzinfo=UTC).timestamp())\n"
              "b = datetime.fromtimestamp(value, UTC)\n"
              "c = (moment - datetime(1970, 1, 1)).total_seconds()\n"
              "d = clock.unix(moment)\n")
    assert conversions(source) == [1, 2, 3]


def test_only_the_clock_converts_unix_seconds() -> None:
    found = [f"{path.relative_to(PACKAGE)}:{line}" for path in sorted(PACKAGE.rglob("*.py"))
             if path.relative_to(PACKAGE).parts[0] != "sandbox" and path.name != "clock.py"
             for line in conversions(path.read_text())]
    assert found == []


@pytest.mark.parametrize("moment", [datetime(2026, 12, 6, 10, 13, 25), datetime(1970, 1, 2),
                                    datetime(2038, 1, 19, 3, 14, 8)])
def test_unix_seconds_of_a_naive_utc_moment_and_back(moment: datetime) -> None:
    seconds = clock.unix(moment)
    assert seconds == int(moment.replace(tzinfo=UTC).timestamp())
    assert clock.from_unix(seconds) == moment
    assert clock.unix(None) is None


@pytest.mark.parametrize("value", [None, True, 0, -5, 2**37, "1700000000", 1.7e9])
def test_what_is_no_moment_is_none(value: object) -> None:
    assert clock.from_unix(value) is None
