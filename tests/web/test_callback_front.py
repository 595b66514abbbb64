"""A signed processor callback is taken in front of Flask (web/callback_front.py) with the
route's own work and answered with the route's bytes; everything the route would look at
twice passes to it, which answers as it always did. A failure in front before the commit is
answered as the route's own (nothing kept, the processor retries), never tried twice; one
after the commit is a 200 for the callback held, never a second taking."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from kit import budgets
from kit.callbacks import (
    Shop,
    callbacks_of,
    count,
    deposit_body,
    issue_address,
    post,
    signed_headers,
)
from kit.site import MERCHANT_KEY, MERCHANT_SECRET, flask_requests, layer_of
from werkzeug.test import Client, EnvironBuilder, run_wsgi_app

from checkout import db, merchants
from checkout.models import Delivery, Merchant
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


def test_in_production_too_the_front_answers_the_routes_bytes(make_app: Any) -> None:
    """Outside sandbox mode the site's headers add HSTS: the front's carry it as well."""
    app = make_app(SANDBOX=False, PROCESSOR_URL="http://127.0.0.1:9/api/v2")
    with app.app_context():
        merchants.add(merchants.NewMerchant(11, "Shop", MERCHANT_KEY, MERCHANT_SECRET, ()))
    handled = flask_requests(app)
    answers = []
    for number, wsgi in enumerate([app, layer_of(app, callback_front.CallbackFront).inner]):
        body = deposit_body(number + 1, "not_confirmed", txid=f"{number + 1:064x}")
        answers.append(Client(wsgi).post(PATH, data=body, headers=signed_headers(body)))
    front, route = answers
    assert handled == [PATH]  # the route's alone
    assert "Strict-Transport-Security" in front.headers
    assert (front.status, list(front.headers.items()), front.get_data()) == (
        route.status, list(route.headers.items()), route.get_data())


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


def failing(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, times: int) -> list[int]:
    """`module.name` raises its first `times` calls; the list counts every call."""
    real = getattr(module, name)
    calls: list[int] = []

    def fails(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, fails)
    return calls


def test_a_failure_in_front_before_the_commit_is_answered_as_the_routes_own_and_not_retried(
        app: Flask, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answered as in production, not raised
    body = deposit_body(1, "not_confirmed", txid="01" * 32)
    calls = failing(monkeypatch, news, "absorb", times=2)
    route = route_of(app).post(PATH, data=body, headers=signed_headers(body))
    assert len(calls) == 1
    handled = flask_requests(app)
    front = Client(app).post(PATH, data=body, headers=signed_headers(body))
    assert len(calls) == 2  # once, in front: the route raised its error, it did not try again
    assert handled == [PATH]
    assert front.status_code == route.status_code == 500
    assert (front.get_data(), list(front.headers.items())) == (
        route.get_data(), list(route.headers.items()))
    assert callbacks_of(app) == []  # rolled back: the processor's retry brings it
    assert post(app.test_client(), body).status_code == 200
    assert [c.outcome for c in callbacks_of(app)] == ["applied"]


def test_a_failure_in_front_after_the_commit_answers_200_for_the_callback_held(
        app: Flask, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A callback kept once: the route does not take it again (an unknown type has no key to
    find it by, and would reach the shop twice)."""
    calls = failing(monkeypatch, callback_front.callbacks, "log_kept", times=1)
    handled = flask_requests(app)
    body = b'{"type": "a type this site does not know", "id": 7}'
    answer = post(app.test_client(), body)
    assert answer.status_code == 200 and answer.get_json() == {"status": "ok"}
    assert handled == [] and len(calls) == 1
    assert len(callbacks_of(app)) == 1
    assert count(app, Delivery) == 1


class BrokenAfter:
    """A request body whose stream fails once after its first bytes, then reads on."""

    def __init__(self, body: bytes, good: int) -> None:
        self.stream = io.BytesIO(body)
        self.good = good
        self.failed = False

    def read(self, size: int = -1) -> bytes:
        if self.stream.tell() >= self.good and not self.failed:
            self.failed = True
            raise OSError("connection reset by peer")
        return self.stream.read(size if size < 0 else min(size, self.good or size))


def test_a_body_that_fails_midway_is_the_routes_to_answer_as_before_not_a_bad_signature(
        app: Flask, page: str) -> None:
    body = deposit_body(1, "not_confirmed", txid="01" * 32)

    app.config["PROPAGATE_EXCEPTIONS"] = False

    def sent(wsgi: Any) -> tuple[str, bytes]:
        environ = EnvironBuilder(path=PATH, method="POST", headers=signed_headers(body),
                                 data=body).get_environ()
        environ["wsgi.input"] = BrokenAfter(body, 100)
        answer, status, _headers = run_wsgi_app(wsgi, environ)
        return status, b"".join(answer)

    route = sent(layer_of(app, callback_front.CallbackFront).inner)
    assert sent(app) == route
    assert not route[0].startswith("403")  # not taken for a forged signature
    assert callbacks_of(app) == []


def test_a_callback_in_a_context_already_pushed_leaves_its_session_to_its_owner(
        app: Flask, page: str) -> None:
    """As Flask does for a request: the app context already pushed (a test's, a script's)
    is used, not ended, so the session it holds is still its own after the callback."""
    with app.app_context():
        session = db.session()
        assert post(app.test_client(),
                    deposit_body(1, "not_confirmed", txid="01" * 32)).status_code == 200
        assert db.session() is session
