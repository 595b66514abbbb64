"""The deposit page tests' customer, and payments to them as the processor reports them.

Merchant 11's customer `user-7` pays BTC to BTC_ADDRESS. `send_deposit` tells the site about
a payment only the way the processor does: a signed v2 deposit callback through
POST /callbacks/coinspaid, so a page test can only reach the states the callback layer
allows (a final transaction status is never left, replays change nothing).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from checkout import clock, db, terminal
from checkout.models import DepositAddress, Merchant, Page, RateQuote
from kit.callbacks import callbacks_of, deposit_body, post
from kit.counters import count as count
from kit.site import MERCHANT_SECRET

BTC_ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "user-7", "amount": "0.00123",
        "convert_to": "EUR", "url_back": "https://shop.example/back"}


def txid(processor_id: int) -> str:
    """The blockchain id of the processor's transaction `processor_id`, in these tests."""
    return f"{processor_id:064x}"


def send_deposit(app: Flask, processor_id: int, status: str, amount: str = "0.00123") -> str:
    """The processor's callback about its transaction `processor_id` to BTC_ADDRESS, signed
    with the merchant's secret; what the site made of it (the callback's outcome: applied,
    duplicate, stale, flagged...)."""
    body = deposit_body(processor_id, status, address=BTC_ADDRESS,
                        foreign_id=str(LINK["foreign_id"]), amount=amount,
                        txid=txid(processor_id))
    response = post(app.test_client(), body)
    assert response.status_code == 200, response.get_data(as_text=True)
    outcome = callbacks_of(app)[-1].outcome
    assert outcome is not None
    return outcome


def link_query(payload: dict[str, Any]) -> dict[str, str]:
    return terminal.encode_link(payload, MERCHANT_SECRET)


@pytest.fixture
def address(app: Flask, merchant: Merchant) -> DepositAddress:
    """An address taken earlier for (11, user-7, BTC, EUR): opening a link reuses it."""
    with app.app_context(), db.transaction() as s:
        row = DepositAddress(merchant_id=11, foreign_id="user-7", currency="BTC",
                             convert_to="EUR", address=BTC_ADDRESS, tag=None, processor_id=501)
        s.add(row)
    return row


@pytest.fixture
def fresh_rate(app: Flask) -> None:
    with app.app_context(), db.transaction() as s:
        s.add(RateQuote(currency_from="BTC", currency_to="EUR", rate="48715.62",
                        fetched_at=clock.now()))


def open_link(client: FlaskClient, payload: dict[str, Any] = LINK) -> str:
    response = client.get("/terminal", query_string=link_query(payload))
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    location = response.headers["Location"]
    assert re.fullmatch(r"/p/[A-Za-z0-9_-]{32}", location)
    return location




def paid_page(client: FlaskClient, processor_id: int = 1) -> str:
    page = open_link(client)
    body = deposit_body(processor_id, "confirmed", address=BTC_ADDRESS, foreign_id="user-7",
                        amount="0.00123")
    assert post(client, body).status_code == 200
    assert client.get(page + "/status").get_json()["phase"] == "paid"
    return page


def token_of(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "the paid page carries the form's token"
    return match.group(1)


def known_address(app: Flask, currency: str, address: str, tag: str | None = None) -> None:
    with app.app_context(), db.transaction() as s:
        s.add(DepositAddress(merchant_id=11, foreign_id="u", currency=currency, convert_to="",
                             address=address, tag=tag))
        s.add(RateQuote(currency_from=currency, currency_to="EUR", rate="1",
                        fetched_at=clock.now()))


def created(app: Flask) -> tuple[int, int]:
    with app.app_context():
        s = db.session()
        return (s.scalar(select(func.count()).select_from(Page)) or 0,
                s.scalar(select(func.count()).select_from(DepositAddress)) or 0)
