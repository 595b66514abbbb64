"""The smallest payment a page or an invoice may ask for is read in one place
(limits.minimum_payment): the deposit page's "send at least" and the invoice's "too small"
cannot disagree about a listed minimum of 0 (none) or an unknown currency.
"""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

from flask import Flask

import checkout
from checkout import clock, db, limits
from checkout.models import CurrencyLimit

PACKAGE = Path(checkout.__file__).parent


def cache_reads(source: str) -> list[int]:
    """Lines that call `limits.minimum` (the raw cache) directly."""
    return sorted(node.lineno for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Call) and ast.unparse(node.func) == "limits.minimum")


def test_the_finder_sees_a_direct_cache_read() -> None:
    assert cache_reads("floor = limits.minimum(session, code)\n"
                       "ok = limits.minimum_payment(session, code)\n") == [1]


def test_outside_limits_no_module_reads_the_raw_minimum() -> None:
    found = [f"{path.relative_to(PACKAGE)}:{line}" for path in sorted(PACKAGE.rglob("*.py"))
             if path.relative_to(PACKAGE).parts[0] != "sandbox" and path.name != "limits.py"
             for line in cache_reads(path.read_text())]
    assert found == []


def test_the_minimum_payment_is_none_when_unknown_or_zero(app: Flask) -> None:
    with app.app_context(), db.transaction() as session:
        now = clock.now()
        session.add_all([
            CurrencyLimit(currency="LTC", minimum_amount="0.01", precision=8, fetched_at=now),
            CurrencyLimit(currency="EUR", minimum_amount="0", precision=2, fetched_at=now)])
    with app.app_context():
        session = db.session()
        assert limits.minimum_payment(session, "LTC") == Decimal("0.01")
        assert limits.minimum_payment(session, "ltc") == Decimal("0.01")
        assert limits.minimum_payment(session, "EUR") is None
        assert limits.minimum_payment(session, "NOPE") is None
