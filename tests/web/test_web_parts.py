"""What moved into the web layer still answers as before: the cancel's foreign_id read in the
processor's words before any lookup, and the site's base URL taken from the request in flight
when CHECKOUT_PUBLIC_URL does not name it (urls.public_base asks the web layer for it)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.invoices import shop_signature

from checkout import urls
from checkout.models import Merchant

UNKNOWN = {"errors": {"foreign_id": "The selected foreign id is invalid."}}


def signed(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Processing-Key": "test-key-11",
            "X-Processing-Signature": shop_signature(body)}


@pytest.mark.parametrize("foreign_id", ["a\x00b", "x" * 256])
def test_a_foreign_id_no_invoice_can_have_is_unknown_to_cancel(
        client: FlaskClient, merchant: Merchant, foreign_id: str) -> None:
    answer = client.post("/api/v2/invoices/x/cancel/", data=b"{}", headers=signed(b"{}"),
                         environ_overrides={"PATH_INFO": f"/api/v2/invoices/{foreign_id}/cancel/"})
    assert (answer.status_code, answer.get_json()) == (404, UNKNOWN)


def test_the_longest_foreign_id_is_looked_up(client: FlaskClient, merchant: Merchant) -> None:
    """255 characters may name an invoice: unknown here because none was made, not refused."""
    answer = client.post(f"/api/v2/invoices/{'x' * 255}/cancel/", data=b"{}",
                         headers=signed(b"{}"))
    assert (answer.status_code, answer.get_json()) == (404, UNKNOWN)


def test_the_public_base_is_the_requests_own_without_a_configured_one(app: Flask) -> None:
    app.config["PUBLIC_URL"] = None
    with app.test_request_context("/p/x", base_url="https://pay.example:8443/"):
        assert urls.public_base() == "https://pay.example:8443"
    with app.app_context(), pytest.raises(RuntimeError, match="CHECKOUT_PUBLIC_URL"):
        urls.public_base()
    app.config["PUBLIC_URL"] = "https://checkout.example/"
    with app.test_request_context("/p/x", base_url="https://pay.example/"):
        assert urls.public_base() == "https://checkout.example"
