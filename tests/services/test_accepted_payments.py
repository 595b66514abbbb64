"""A deposit page paid a little short, within the merchant's tolerance, through the embedded
sandbox over real HTTP: the page is paid and the shop receives our signed "payment_accepted"
event once (README "Accepted payments"), beside the processor's own deposit callbacks."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import Shop
from kit.deposits import LINK, open_link
from kit.invoices import settle, shop_verifies
from kit.live import LiveServer
from kit.payments import pay

from checkout import db, rates
from checkout.models import Merchant, Page

PLAIN_LINK = {**LINK, "convert_to": None}


def told(webhook: Shop) -> list[dict[str, Any]]:
    for item in webhook.received:
        assert shop_verifies(item.body, item.headers.get("X-Processing-Signature"))
    return [json.loads(item.body) for item in webhook.received]


def open_page(app: Flask, client: FlaskClient, percent: str, fiat: str) -> tuple[str, str]:
    page_id = open_link(client, PLAIN_LINK).rsplit("/", 1)[1]
    settle(app)  # the worker fetches the rates
    with app.app_context(), db.transaction() as s:
        merchant, page = s.get(Merchant, 11), s.get(Page, page_id)
        assert merchant is not None and page is not None and page.address
        merchant.underpaid_percent, merchant.underpaid_fiat = percent, fiat
        return page_id, page.address


def short_by_worth(app: Flask, short: Decimal) -> Decimal:
    with app.app_context():
        rate = rates.cached(db.session(), "BTC", "EUR")
    assert rate is not None
    return short * rate


def test_a_short_payment_within_tolerance_is_paid_and_the_shop_told_once(
        app: Flask, client: FlaskClient, live_server: LiveServer, webhook: Shop) -> None:
    short = Decimal("0.00001")  # 0.8 % of 0.00123
    page_id, address = open_page(app, client, "1", "100")
    pay(live_server.url, address, str(Decimal("0.00123") - short), "confirmed")
    settle(app)
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None
        assert (page.status, page.reason, page.shortfall) == (
            "confirmed", "short_accepted", "0.00001")
    model = client.get(f"/p/{page_id}/status").get_json()
    assert (model["phase"], model["shortfall"]) == ("paid", "0.00001")
    events = told(webhook)
    accepted = [e for e in events if e.get("type") == "payment_accepted"]
    assert [(e["foreign_id"], e["amount"], e["amount_paid"], e["shortfall"])
            for e in accepted] == [("user-7", "0.00123000", "0.00122000", "0.00001000")]
    # The processor's own deposit callback still reaches the shop as it came, and first.
    assert [(e["type"], e.get("status")) for e in events] == [
        ("deposit", "confirmed"), ("payment_accepted", None)]
    assert short_by_worth(app, short) < 100


def test_a_short_payment_worth_more_than_the_fiat_limit_stays_underpaid(
        app: Flask, client: FlaskClient, live_server: LiveServer, webhook: Shop) -> None:
    short = Decimal("0.00001")
    page_id, address = open_page(app, client, "1", "0.01")
    assert short_by_worth(app, short) > Decimal("0.01")
    pay(live_server.url, address, str(Decimal("0.00123") - short), "confirmed")
    settle(app)
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None and (page.status, page.reason) == ("confirmed", "underpaid")
    assert client.get(f"/p/{page_id}/status").get_json()["phase"] == "partial"
    assert [e for e in told(webhook) if e.get("type") == "payment_accepted"] == []
