"""The overview's figures: how pages ended, per merchant and currency, in a period; sums
exact in Decimal; bounded by the merchants a person may read."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from flask import Flask
from kit.console_rows import add_merchant, callback, delivery, deposit_page, invoice_page
from kit.site import sql_statements

from checkout import db
from checkout.services import overview, periods

A, B = 11, 22
DAY = date(2026, 3, 10)
PERIOD = periods.Period(DAY, DAY + timedelta(days=6))
INSIDE = datetime(2026, 3, 12, 9, 30)


@pytest.fixture
def shops(app: Flask) -> Flask:
    add_merchant(app, A, "Shop A")
    add_merchant(app, B, "Shop B")
    return app


def _counts(rows: list[overview.Row]) -> dict[tuple[int, str], dict[str, int]]:
    return {(row.merchant_id, row.currency): {o: f.count for o, f in row.figures.items()}
            for row in rows}


def test_each_status_is_counted_as_what_it_means(shops: Flask) -> None:
    with shops.app_context(), db.transaction() as session:
        for status, reason in (("confirmed", None), ("confirmed", "overpaid"),
                               ("confirmed", "underpaid"), ("waiting", None),
                               ("not_confirmed", None), ("cancelled", "cancelled"),
                               ("cancelled", "below_minimum")):
            deposit_page(session, A, status=status, reason=reason, at=INSIDE)
        for status, reason, asked, paid in (
                ("confirmed", None, "0.001", "0.001"), ("confirmed", None, "0.001", "0.0015"),
                ("failed", "expired", "0.001", "0"), ("failed", None, "0.001", "0"),
                ("failed", "underpaid", "0.001", "0.0004"), ("failed", "timeout", "0.001", "0"),
                ("failed", "cancelled", "0.001", "0"), ("pending", None, "0.001", "0"),
                ("processing", None, "0.001", "0.001"), ("created", None, None, "0")):
            invoice_page(session, A, status=status, reason=reason, asked=asked, paid=paid,
                         pay_currency="ETH", at=INSIDE)
    with shops.app_context():
        rows = overview.figures(db.session(), PERIOD, None)
    assert _counts(rows) == {
        (A, "BTC"): {"paid": 1, "expired": 0, "underpaid": 1, "overpaid": 1},
        (A, "ETH"): {"paid": 1, "expired": 2, "underpaid": 1, "overpaid": 1},
    }


def test_fiat_sums_are_exact_decimals(shops: Flask) -> None:
    with shops.app_context(), db.transaction() as session:
        # Floats would lose the cents of such a sum (1e16 has no room for .01 in a double).
        invoice_page(session, A, status="confirmed", amount="12345678901234567.89",
                     currency="EUR", paid="0.001", at=INSIDE)
        invoice_page(session, A, status="confirmed", amount="0.01", currency="EUR",
                     paid="0.001", at=INSIDE)
        invoice_page(session, A, status="confirmed", amount="5", currency="USD", paid="0.001",
                     at=INSIDE)
        # A deposit is worth what it paid at the rate of the moment it was paid in full,
        # rounded up to the fiat's places as its receipt does; no rate: counted, no value.
        deposit_page(session, A, status="confirmed", paid="0.1", rate="30000.005", fiat="EUR",
                     at=INSIDE)
        deposit_page(session, A, status="confirmed", paid="0.2", rate=None, at=INSIDE)
    with shops.app_context():
        rows = overview.figures(db.session(), PERIOD, [A])
    paid = rows[0].figures["paid"]
    assert rows[0].currency == "BTC"
    assert paid.count == 5
    assert paid.fiat == {"EUR": Decimal("12345678901234567.89") + Decimal("0.01")
                         + Decimal("3000.01"),
                         "USD": Decimal("5")}
    assert paid.sums() == [("EUR", "12345678901237567.91"), ("USD", "5.00")]


def test_a_page_counts_in_the_period_it_was_opened_in(shops: Flask) -> None:
    start, end = PERIOD.start, PERIOD.end
    moments = {"first instant": start, "last instant": end - timedelta(microseconds=1),
               "just before": start - timedelta(microseconds=1), "just after": end}
    with shops.app_context(), db.transaction() as session:
        for name, at in moments.items():
            deposit_page(session, A, status="confirmed", foreign_id=name, at=at)
    with shops.app_context():
        rows = overview.figures(db.session(), PERIOD, None)
    assert rows[0].figures["paid"].count == 2
    assert PERIOD.start == datetime(2026, 3, 10) and PERIOD.end == datetime(2026, 3, 17)


def test_figures_are_bounded_by_the_merchants_given(shops: Flask) -> None:
    with shops.app_context(), db.transaction() as session:
        deposit_page(session, A, status="confirmed", at=INSIDE)
        deposit_page(session, B, status="confirmed", at=INSIDE)
        deposit_page(session, B, status="confirmed", at=INSIDE)
        delivery(session, B, state="failed", error="HTTP 500", at=INSIDE)
        callback(session, B, outcome="flagged", flag="contradiction", at=INSIDE)
    with shops.app_context():
        session = db.session()
        assert {r.merchant_id for r in overview.figures(session, PERIOD, None)} == {A, B}
        only_a = overview.overview(session, PERIOD, [A])
        assert [(r.merchant_id, r.figures["paid"].count) for r in only_a.rows] == [(A, 1)]
        assert only_a.attention == []
        nothing = overview.overview(session, PERIOD, [])
        assert nothing.rows == [] and nothing.attention == []
        names = {r.merchant_name for r in overview.figures(session, PERIOD, [B])}
        assert names == {"Shop B"}


def test_attention_counts_failing_and_given_up_deliveries_and_flagged_callbacks(
        shops: Flask) -> None:
    with shops.app_context(), db.transaction() as session:
        delivery(session, A, state="pending", error="HTTP 500", at=INSIDE)
        delivery(session, A, state="pending", error="timed out", at=INSIDE - timedelta(days=90))
        delivery(session, A, state="pending", error=None, at=INSIDE)  # waiting, not failing
        delivery(session, A, state="failed", error="HTTP 404", at=INSIDE)
        delivery(session, A, state="delivered", error=None, at=INSIDE)
        callback(session, A, outcome="flagged", flag="unknown address", at=INSIDE)
        callback(session, A, outcome="duplicate", flag="replay", at=INSIDE)
        callback(session, A, outcome="flagged", at=PERIOD.end)  # after the period
        callback(session, A, outcome="applied", at=INSIDE)
    with shops.app_context():
        found = overview.attention(db.session(), PERIOD, None)
    assert [(a.merchant_id, a.merchant_name, a.failing, a.given_up, a.flagged)
            for a in found] == [(A, "Shop A", 2, 1, 2)]


@pytest.mark.parametrize(("given_from", "given_to", "problem"), [
    ("2026-02-30", "", "from"), ("99999-01-01", "", "from"), ("2026-1-1", "", "from"),
    ("", "1999-12-31", "to"), ("", "9999-12-31", "to"), ("2026-03-10", "2026-03-09", "range"),
    ("٢٠٢٦-٠٣-١٠", "", "from"), ("2026-03-10\n", "x" * 5000, "to"),
])
def test_a_bad_period_is_refused_by_name(given_from: str, given_to: str, problem: str) -> None:
    with pytest.raises(periods.PeriodError) as caught:
        periods.parse(given_from, given_to, today=DAY, default_days=30)
    assert str(caught.value) == problem


def test_the_default_period_is_the_last_thirty_days_up_to_today() -> None:
    period = periods.parse("", "", today=DAY, default_days=30)
    assert period == periods.Period(DAY - timedelta(days=29), DAY)
    assert periods.parse("", "", today=DAY, default_days=None) is None
    assert periods.parse("2026-03-01", "", today=DAY, default_days=None) == periods.Period(
        date(2026, 3, 1), DAY)


def test_the_figures_take_the_same_few_queries_however_many_merchants(shops: Flask) -> None:
    """One read of the period's pages, one per attention figure, one for the names of each
    table: never a query per merchant, page or currency."""

    def run() -> overview.Overview:
        with shops.app_context():
            return overview.overview(db.session(), PERIOD, None)

    def seed(merchant_ids: range) -> None:
        for merchant in merchant_ids:
            add_merchant(shops, merchant, f"Shop {merchant}")
        with shops.app_context(), db.transaction() as session:
            for merchant in merchant_ids:
                for currency in ("BTC", "ETH"):
                    deposit_page(session, merchant, status="confirmed", currency=currency,
                                 at=INSIDE)
                delivery(session, merchant, state="failed", error="HTTP 500", at=INSIDE)
                callback(session, merchant, outcome="flagged", at=INSIDE)

    seed(range(100, 102))
    _result, few = sql_statements(shops, run)
    seed(range(200, 230))
    result, many = sql_statements(shops, run)
    assert len(result.rows) == 64 and len(result.attention) == 32
    assert many == few and len(few) <= 6, many
