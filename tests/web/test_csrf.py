"""CSRF protection is wired for real: customer forms need a token, signed machine routes do not."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import deposit_body, issue_address, signed_headers

from checkout.models import Merchant


def test_a_customer_post_without_a_token_is_refused(app: Flask) -> None:
    # A stand-in for the customer page's forms (the page blueprint adds its own).
    app.add_url_rule("/p/<page_id>/probe", "probe", lambda page_id: "accepted",
                     methods=["POST"])
    answer = app.test_client().post("/p/some-page/probe", data={"email": "a@b.example"})
    assert answer.status_code == 400
    assert b"accepted" not in answer.data


def test_the_signed_api_and_callbacks_need_no_token(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    issue_address(app)
    body = deposit_body(5, "confirmed")
    assert client.post("/callbacks/coinspaid", data=body,
                       headers=signed_headers(body)).status_code == 200
    cancel = b"{}"
    answer = client.post("/api/v2/invoices/nothing-here/cancel/", data=cancel,
                         headers=signed_headers(cancel))
    # Refused by the API for its own reason (no such invoice), in JSON: not by CSRF.
    assert answer.status_code == 404 and answer.is_json


def test_the_sandbox_controls_need_no_token(client: FlaskClient) -> None:
    answer = client.post("/sandbox/clock", json={"advance_seconds": 0})
    assert answer.status_code == 200
