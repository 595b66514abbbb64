"""The merchant's underpayment tolerance on deposit pages (policies.py): confirmed money short
by at most the percent AND the fiat amount (at the cached rate when the money is confirmed)
makes the page paid, "short_accepted", with the shortfall kept and the shop told once by a
signed event of ours. Driven by the processor's signed deposit callbacks.

The page asks 0.00123 BTC; fresh_rate says 1 BTC = 48715.62 EUR. Paying 0.00121 leaves
0.00002 BTC short: 1.626 % of the price, worth 0.9743 EUR.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from kit.deposits import open_link, send_deposit
from sqlalchemy import select

from checkout import db, rates
from checkout.models import Delivery, DepositAddress, Merchant, Page, RateQuote
from checkout.pagekinds import outcomes

SHORT_PAYMENT = "0.00121"


def set_policy(app: Flask, percent: str, fiat: str, currency: str = "EUR") -> None:
    with app.app_context(), db.transaction() as s:
        merchant = s.get(Merchant, 11)
        assert merchant is not None
        merchant.underpaid_percent, merchant.underpaid_fiat = percent, fiat
        merchant.policy_currency = currency


def page_row(app: Flask, location: str) -> Page:
    with app.app_context():
        page = db.session().get(Page, location.rsplit("/", 1)[1])
        assert page is not None
        db.session().expunge(page)
        return page


def accepted_events(app: Flask) -> list[dict[str, Any]]:
    with app.app_context():
        bodies = db.session().scalars(select(Delivery.body).order_by(Delivery.id)).all()
    return [e for e in map(json.loads, bodies) if e.get("type") == "payment_accepted"]


def short_page(app: Flask, client: FlaskClient, before_paying: Callable[[], None] = lambda: None
               ) -> str:
    page = open_link(client)
    before_paying()
    assert send_deposit(app, 1, "not_confirmed", SHORT_PAYMENT) == "applied"
    assert send_deposit(app, 1, "confirmed", SHORT_PAYMENT) == "applied"
    return page


def test_a_shortfall_within_both_limits_is_paid_kept_and_told_once(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    set_policy(app, "2", "1")
    page = short_page(app, client)
    row = page_row(app, page)
    assert (row.status, row.reason, row.shortfall) == ("confirmed", "short_accepted", "0.00002")
    assert outcomes.outcome_of(row.kind, row.status, row.reason, row.amount,
                               row.amount_paid) == outcomes.PAID
    model = client.get(page + "/status").get_json()
    assert (model["phase"], model["final"], model["pay_now"]) == ("paid", True, False)
    assert model["shortfall"] == "0.00002" and model["receipt"] is not None
    html = client.get(page).get_data(as_text=True)
    assert "Payment accepted: 0.00002 BTC less than asked arrived, and" in html

    [told] = accepted_events(app)
    assert told == {"type": "payment_accepted", "page_id": row.id, "foreign_id": "user-7",
                    "currency": "BTC", "amount": "0.00123000", "amount_paid": "0.00121000",
                    "shortfall": "0.00002000", "reason": "short_accepted",
                    "created_at": told["created_at"]}
    assert isinstance(told["created_at"], int)

    # The processor's retry is no news; a later change of policy or rate un-pays nothing.
    assert send_deposit(app, 1, "confirmed", SHORT_PAYMENT) == "duplicate"
    set_policy(app, "0", "0")
    assert send_deposit(app, 2, "not_confirmed", "0.000001") == "applied"
    row = page_row(app, page)
    assert (row.status, row.reason, row.shortfall) == ("confirmed", "short_accepted", "0.00002")
    assert len(accepted_events(app)) == 1

    # The rest arriving after all: paid in full, nothing short any more.
    assert send_deposit(app, 3, "confirmed", "0.00002") == "applied"
    row = page_row(app, page)
    assert (row.status, row.reason, row.shortfall) == ("confirmed", None, None)
    assert "shortfall" not in client.get(page + "/status").get_json()
    assert len(accepted_events(app)) == 1


def underpaid(app: Flask, client: FlaskClient,
              before_paying: Callable[[], None] = lambda: None) -> None:
    row = page_row(app, short_page(app, client, before_paying))
    assert (row.status, row.reason, row.shortfall) == ("confirmed", "underpaid", None)
    assert accepted_events(app) == []


def test_short_by_more_than_the_percent_stays_underpaid(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    set_policy(app, "1.5", "100")
    underpaid(app, client)


def test_short_by_more_than_the_fiat_amount_stays_underpaid(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    set_policy(app, "10", "0.97")
    underpaid(app, client)


def test_without_a_rate_into_the_policy_currency_nothing_is_tolerated(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    set_policy(app, "10", "100", currency="CHF")  # the cache holds BTC/EUR only
    with app.app_context():
        assert rates.cached(db.session(), "BTC", "CHF") is None
    underpaid(app, client)


def test_an_old_rate_is_no_rate(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    set_policy(app, "10", "100")

    def age_the_rate() -> None:  # after the page opened (opening may fetch its own pair)
        with app.app_context(), db.transaction() as s:
            quote = s.scalars(select(RateQuote)).one()
            quote.fetched_at -= timedelta(seconds=rates.SHOWN_MAX_AGE + 60)
    underpaid(app, client, age_the_rate)


def test_no_tolerance_by_default(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    with app.app_context():
        merchant = db.session().get(Merchant, 11)
        assert merchant is not None
        assert (merchant.underpaid_percent, merchant.underpaid_fiat) == ("0", "0")
    underpaid(app, client)
