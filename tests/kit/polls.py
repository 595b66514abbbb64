"""A deposit page opened for the status-poll tests (its own customer, `poll-1`)."""

from __future__ import annotations

from flask.testing import FlaskClient

from kit.links import page_of

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "poll-1", "amount": "0.00123",
        "convert_to": "EUR"}


def open_page(client: FlaskClient) -> str:
    return page_of(client, LINK)
