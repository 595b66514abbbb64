"""A deposit page opened for the security-header tests, and the headers every answer carries."""

from __future__ import annotations

from flask.testing import FlaskClient

from checkout import terminal
from kit.site import MERCHANT_SECRET

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "headers-1", "amount": "0.00123",
        "convert_to": "EUR", "url_back": "https://shop.example/back"}


# On every answer, whatever the route, status or mode.
EVERYWHERE = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin-allow-popups",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "X-Frame-Options": "DENY",
}


def open_page(client: FlaskClient) -> tuple[str, dict[str, str]]:
    query = terminal.encode_link(LINK, MERCHANT_SECRET)
    response = client.get("/terminal", query_string=query)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response.headers["Location"], query
