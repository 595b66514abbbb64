"""A processor replay of a callback we already applied is kept and counted, never forwarded again.

The processor resends a callback until it gets a 200 (and an operator may press "Repeat
callback"); the shop must hear each piece of news once.
"""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import callbacks_of, deposit_body, issue_address, post
from sqlalchemy import select

from checkout import db
from checkout.models import Delivery, Merchant


def deliveries(app: Flask) -> list[Delivery]:
    with app.app_context():
        return list(db.session().scalars(select(Delivery).order_by(Delivery.id)))


def test_fifty_replays_of_a_deposit_callback_make_one_delivery(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    issue_address(app)
    body = deposit_body(7001, "confirmed")
    for _ in range(50):
        assert post(client, body).status_code == 200
    stored = callbacks_of(app)
    assert len(stored) == 50
    assert [c.outcome for c in stored] == ["applied"] + ["duplicate"] * 49
    assert [d.body for d in deliveries(app)] == [body]


def test_each_new_status_of_a_deposit_is_forwarded_once(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    issue_address(app)
    seen, confirmed = deposit_body(7002, "not_confirmed"), deposit_body(7002, "confirmed")
    for body in (seen, seen, confirmed, seen, confirmed):
        assert post(client, body).status_code == 200
    assert [d.body for d in deliveries(app)] == [seen, confirmed]
