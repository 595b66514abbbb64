"""What the page and its poll weigh on the wire: a poll that brings nothing new is a bodiless
304 all through a countdown (its ETag is the model's, not the ticking seconds'), and the
page's HTML goes gzipped to clients that take it, the same bytes once unpacked, compressed
once per rendering, not per request."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
from conftest import LiveServer
from flask import Flask
from invoice_kit import ORDER, TestShop, settle
from werkzeug.test import Client

from checkout import clock, front
from checkout.models import Merchant


@pytest.fixture
def quoted(app: Flask, merchant: Merchant, live_server: LiveServer) -> str:
    """An invoice page with its currency picked: a fixed rate, so a countdown."""
    settle(app)
    created = TestShop(live_server.url).create(ORDER)
    assert created.status_code == 200, created.text
    url = str(created.json()["data"]["url"])
    html = requests.get(url, timeout=10).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert token
    picked = requests.post(f"{url}/pick", data={"csrf_token": token[1], "currency": "BTC"},
                           allow_redirects=False, timeout=30)
    assert picked.status_code == 303
    return "/p/" + url.rsplit("/", 1)[1]


def test_while_the_countdown_runs_an_unchanged_model_is_still_a_304(
        app: Flask, quoted: str) -> None:
    """The seconds left change every second; they are the page's to tick, not a change: an
    ETag over them made every poll of a running countdown a full answer."""
    client = app.test_client()
    later = [clock.system_now()]
    app.config["CLOCK"] = lambda: later[0]
    first = client.get(f"{quoted}/status")
    left = first.get_json()["seconds_left"]
    assert left > 60
    later[0] += timedelta(seconds=7)
    again = client.get(f"{quoted}/status", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    # Asked without the tag, the answer is the model of this moment, under the same tag.
    full = client.get(f"{quoted}/status")
    assert full.headers["ETag"] == first.headers["ETag"]
    assert full.get_json()["seconds_left"] == left - 7
    # The Flask view behind the front layer tags alike.
    assert isinstance(app.wsgi_app, front.Front)
    behind = Client(app.wsgi_app.inner).get(f"{quoted}/status",
                                            headers={"If-None-Match": first.headers["ETag"]})
    assert behind.status_code == 304
