"""A signed processor callback is taken in front of Flask (web/callback_front.py) with the
route's own work and answered with the route's bytes; everything the route would look at
twice passes to it, which answers as it always did, and a callback whose taking fails in
front is taken once by the route, never lost and never twice."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from kit import budgets
from kit.callbacks import (
    Shop,
    callbacks_of,
    deposit_body,
    issue_address,
    post,
    signed_headers,
)
from kit.site import flask_requests, layer_of
from werkzeug.test import Client

from checkout import db
from checkout.models import Merchant
from checkout.services import news
from checkout.web import callback_front

PATH = "/callbacks/coinspaid"


def route_of(app: Flask) -> Client:
    """The app without the callback front: the Flask route takes every callback."""
    return Client(layer_of(app, callback_front.CallbackFront).inner)


@pytest.fixture
def page(app: Flask, merchant: Merchant, webhook: Shop) -> str:
    return issue_address(app)[1]


def test_a_signed_callback_is_taken_in_front_and_answered_as_the_route_to_the_byte(
        app: Flask, page: str) -> None:
    first = deposit_body(1, "not_confirmed", txid="01" * 32)
    route = route_of(app).post(PATH, data=first, headers=signed_headers(first))
    handled = flask_requests(app)
    ours = deposit_body(2, "confirmed", txid="02" * 32)
    headers = signed_headers(ours)  # the shop's signature is made outside the count
    with budgets.spent(app) as spent:
        front = Client(app).post(PATH, data=ours, headers=headers)
    assert handled == []  # no Flask request at all
    assert (spent.hmacs, spent.commits, spent.processor_calls) == (1, 1, []), spent
    assert front.status == route.status == "200 OK"
    assert list(front.headers.items()) == list(route.headers.items())
    assert front.get_data() == route.get_data()
    assert [c.outcome for c in callbacks_of(app)] == ["applied", "applied"]


@pytest.mark.parametrize("change", [
    {"query_string": "x=1"},
    {"headers": {"Host": "evil.example"}},
    {"headers": {"Transfer-Encoding": "chunked"}},
    {"headers": {"X-Processing-Signature": "0" * 128}},
    {"data": b'["a JSON array, signed"]'},
    {"data": b'{"note": "signed, not text: \\ud800"}'},
], ids=["query", "host", "chunked", "bad-signature", "not-an-object", "not-text"])
def test_what_the_route_would_look_at_passes_to_it_and_is_answered_as_before(
        make_app: Any, merchant: Merchant, change: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_TRUSTED_HOSTS", "localhost")
    app = make_app()
    body: bytes = change.get("data", deposit_body(1, "not_confirmed", txid="01" * 32))
    headers = {**signed_headers(body), **change.get("headers", {})}
    query = change.get("query_string")
    handled = flask_requests(app)
    with budgets.spent(app) as spent:
        front = Client(app).post(PATH, data=body, headers=headers, query_string=query)
    assert handled == [PATH]
    route = route_of(app).post(PATH, data=body, headers=headers, query_string=query)
    assert (front.status, front.get_data()) == (route.status, route.get_data())
    assert list(front.headers.items()) == list(route.headers.items())
    # A signature checked in front is not checked again by the route.
    assert spent.hmacs <= 1, spent


def test_a_body_longer_than_the_routes_bound_is_the_routes_413(app: Flask, page: str) -> None:
    body = b"{" + b" " * callback_front.callbacks.MAX_BODY + b"}"
    handled = flask_requests(app)
    answer = Client(app).post(PATH, data=body, headers=signed_headers(body))
    assert answer.status_code == 413
    assert handled == [PATH]
    assert callbacks_of(app) == []


def test_a_callback_whose_taking_fails_in_front_is_taken_once_by_the_route(
        app: Flask, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = news.absorb
    calls: list[int] = []

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away in the front's transaction")
        return real(*args, **kwargs)

    monkeypatch.setattr(news, "absorb", fails_once)
    handled = flask_requests(app)
    answer = post(app.test_client(), deposit_body(1, "not_confirmed", txid="01" * 32))
    assert answer.status_code == 200
    assert handled == [PATH]  # the route took it, with the body put back
    assert len(calls) == 2
    assert [c.outcome for c in callbacks_of(app)] == ["applied"]  # rolled back, then once


def test_a_callback_in_a_context_already_pushed_leaves_its_session_to_its_owner(
        app: Flask, page: str) -> None:
    """As Flask does for a request: the app context already pushed (a test's, a script's)
    is used, not ended, so the session it holds is still its own after the callback."""
    with app.app_context():
        session = db.session()
        assert post(app.test_client(),
                    deposit_body(1, "not_confirmed", txid="01" * 32)).status_code == 200
        assert db.session() is session
