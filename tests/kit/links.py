"""Terminal links as a shop signs them for merchant 11, opened with the test client."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from checkout import terminal
from kit.site import MERCHANT_SECRET


def page_of(client: FlaskClient, fields: dict[str, Any]) -> str:
    """Open the signed link `fields` like a customer; the path of the page it leads to."""
    response = client.get("/terminal", query_string=terminal.encode_link(fields, MERCHANT_SECRET))
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return str(response.headers["Location"]).split("?")[0]
