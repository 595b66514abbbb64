"""The embedded processor works under any gunicorn settings: each process serves it to itself
on a loopback port (checkout/sandbox/loopback.py), over real HTTP, never through the site's
own workers."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import requests
from flask import Flask
from kit.gunicorn import serving
from kit.site import MERCHANT_SECRET
from sqlalchemy import select

from checkout import db, terminal
from checkout.models import Merchant
from checkout.processor import client_for
from checkout.sandbox import loopback
from checkout.sandbox import store as sandbox_store

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "user-1", "amount": "0.00123",
        "convert_to": "EUR", "url_back": "https://shop.example/back"}


def test_gunicorn_with_its_defaults_opens_terminal_links_in_sandbox_mode(
        app: Flask, merchant: Merchant, database_url: str, tmp_path: Path) -> None:
    """`gunicorn wsgi:app` as a new user types it: one sync worker, which used to wait on its
    own sandbox until the processor timeout and answer 503."""
    timeout = 60.0  # a loaded machine's honest link stays well under it; the bug waits it out
    with serving(database_url, tmp_path, processor_timeout=timeout) as url:
        started = time.monotonic()
        opened = requests.get(f"{url}/terminal",
                              params=terminal.encode_link(LINK, MERCHANT_SECRET),
                              allow_redirects=False, timeout=30)
        seconds = time.monotonic() - started
        assert opened.status_code == 303, opened.text
        assert seconds < timeout - 1, f"the link took {seconds:.1f} s"
        page = requests.get(url + opened.headers["Location"], timeout=30)
        model = requests.get(url + opened.headers["Location"] + "/status", timeout=30).json()
        again = requests.get(f"{url}/terminal", params=terminal.encode_link(LINK, MERCHANT_SECRET),
                             allow_redirects=False, timeout=30)
    assert page.status_code == 200 and model["address"] in page.text
    assert Decimal(model["fiat"]["rate"]) > 0  # currencies/rates answered as well
    assert again.headers["Location"] == opened.headers["Location"]
    with app.app_context():
        issued = list(db.session().scalars(select(sandbox_store.Address.address)))
    assert issued == [model["address"]]


def test_the_sandbox_sees_the_sites_public_origin_not_its_loopback_port(
        app: Flask, merchant: Merchant) -> None:
    """What the sandbox writes from the caller's address (its invoice URLs, where its
    callbacks go) names the site as the customer reached it."""
    with app.test_request_context(base_url="https://checkout.test:8443"):
        client = client_for(merchant)
        invoice = client.invoices_create(
            foreign_id="order-1", title="Order", currency="EUR", amount=Decimal("10"),
            url_success="https://shop.example/ok", url_failed="https://shop.example/no")
    assert client.base_url == loopback.base_url(app) + "/sandbox/api/v2"
    assert client.base_url.startswith("http://127.0.0.1:")
    assert invoice.url.startswith("https://checkout.test:8443/sandbox/invoice/")
    with app.app_context():
        [notify] = db.session().scalars(select(sandbox_store.Operation.notify_url))
    assert notify == "https://checkout.test:8443/callbacks/coinspaid"


def test_the_loopback_port_serves_the_sandbox_api_alone(app: Flask) -> None:
    url = loopback.base_url(app)
    assert requests.get(url + "/sandbox/api/v2/ping", timeout=30).text.strip('"') == "OK"
    for path in ("/", "/healthz", "/sandbox/simulate/payment", "/sandbox/api/v2x"):
        assert requests.get(url + path, timeout=30).status_code == 404, path
    assert loopback.base_url(app) == url  # one server per process, started once
