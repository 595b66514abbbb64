"""TODO"""

from __future__ import annotations

from conftest import MERCHANT_SECRET
from flask.testing import FlaskClient

from checkout import terminal

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "poll-1", "amount": "0.00123",
        "convert_to": "EUR"}


def open_page(client: FlaskClient) -> str:
    response = client.get("/terminal", query_string=terminal.encode_link(LINK, MERCHANT_SECRET))
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return str(response.headers["Location"]).split("?")[0]
