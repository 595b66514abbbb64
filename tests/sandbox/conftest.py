"""Sandbox test kit: signed raw HTTP calls, an account, and a real callback receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from flask import Flask
from kit.live import LiveServer
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from checkout.sandbox import accounts, clock
from checkout.wire import decimals, jsontext, signing
from checkout.worker import EXTENSION as TASKS

CLIENT_ID = 11
KEY = "sandbox-key-11"
SECRET = "sandbox-secret-11"
API = "/sandbox/api/v2"
# Server threads notice shutdown within this many seconds (werkzeug's default is 0.5).
POLL = 0.005


@dataclass
class Api:
    """Signs and sends requests exactly like a merchant's server would."""

    base: str
    key: str = KEY
    secret: str = SECRET
    http: requests.Session = field(default_factory=requests.Session)

    def call(self, path: str, payload: Any = None, *, method: str = "POST",
             raw: bytes | None = None, headers: dict[str, str] | None = None,
             sign_with: str | None = None) -> requests.Response:
        body = raw if raw is not None else jsontext.dumps(
            {} if payload is None else payload).encode()
        sent = {"Content-Type": "application/json", "X-Processing-Key": self.key,
                "X-Processing-Signature": signing.sign(body, sign_with or self.secret)}
        sent.update(headers or {})
        sent = {k: v for k, v in sent.items() if v is not None}
        return self.http.request(method, self.base + API + "/" + path.lstrip("/"), data=body,
                                 headers=sent, timeout=30)

    def data(self, path: str, payload: Any = None, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(path, payload, **kwargs)
        assert response.status_code == status, response.text
        return jsontext.loads(response.content)["data"]

    def errors(self, path: str, payload: Any = None, status: int = 400) -> dict[str, str]:
        response = self.call(path, payload)
        assert response.status_code == status, response.text
        body = jsontext.loads(response.content)
        assert set(body) == {"errors"}
        return dict(body["errors"])

    def balance(self, currency: str) -> Any:
        rows = self.data("accounts/list")
        return next(decimals.from_processor(r["balance"]) for r in rows
                    if r["currency"] == currency)

    def simulate(self, address: str, amount: str, status: str | None = None,
                 tag: str | None = None, expect: int = 201) -> Any:
        payload: dict[str, Any] = {"address": address, "amount": amount}
        if status:
            payload["status"] = status
        if tag is not None:
            payload["tag"] = tag
        response = self.http.post(self.base + "/sandbox/simulate/payment",
                                  data=json.dumps(payload),
                                  headers={"Content-Type": "application/json"}, timeout=30)
        assert response.status_code == expect, response.text
        return jsontext.loads(response.content)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return jsontext.loads(self.body)


class Receiver:
    """A tiny real HTTP server standing in for the site's callback endpoint."""

    def __init__(self) -> None:
        self.calls: list[Received] = []
        self.answers: list[int] = []  # next status codes to answer; then 200
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/callbacks/coinspaid"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": POLL},
                         daemon=True).start()

    @Request.application  # type: ignore[misc]
    def _wsgi(self, request: Request) -> Response:
        self.calls.append(Received(dict(request.headers), request.get_data()))
        status = self.answers.pop(0) if self.answers else 200
        return Response("ok", status=status)

    def bodies(self) -> list[Any]:
        return [c.json for c in self.calls]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# Real time stands still in these tests: only `advance` moves the sandbox clock, so rates
# and timers are the same on every run.
FROZEN_AT = 1_800_000_000


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[Api]:
    live_server.app.config["SANDBOX_BASE_CLOCK"] = lambda: FROZEN_AT
    live_server.app.extensions["sandbox.open_account"](CLIENT_ID, KEY, SECRET)
    client = Api(live_server.url)
    yield client
    client.http.close()


@pytest.fixture
def hooked(api: Api, app: Flask, receiver: Receiver) -> Api:
    """The account's callback URL points at the test receiver."""
    accounts.set_callback_url(app, CLIENT_ID, receiver.url)
    return api


def run_task(app: Flask, name: str) -> int:
    with app.app_context():
        done: int = app.extensions[TASKS][f"sandbox.{name}"]()
    return done


def settle(app: Flask) -> None:
    """Confirm what is due, expire what ran out, and send every due callback."""
    run_task(app, "confirmations")
    run_task(app, "invoice_expiry")
    run_task(app, "callbacks")


def advance(app: Flask, seconds: int) -> int:
    return clock.advance(app, seconds)
