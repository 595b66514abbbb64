"""Try it: `flask demo` prints an invoice link, and the sandbox's demo shop sells through our
drop-in API over HTTP, like a real shop's server."""

from __future__ import annotations

import re

import requests
from kit.live import LiveServer
from sqlalchemy import select

from checkout import db
from checkout.models import Invoice, InvoiceQuote


def test_the_demo_prints_an_invoice_link_to_a_live_invoice_page(live_server: LiveServer) -> None:
    runner = live_server.app.test_cli_runner()
    result = runner.invoke(args=["demo", "--base-url", live_server.url])
    assert result.exit_code == 0, result.output
    link = re.search(r"Invoice link: (\S+)", result.output)
    assert link is not None and link.group(1).startswith(f"{live_server.url}/p/")
    status = requests.get(link.group(1) + "/status", timeout=30)
    assert status.status_code == 200
    assert (status.json()["kind"], status.json()["status"]) == ("invoice", "created")


def test_the_demo_shops_button_creates_an_invoice_through_our_api(
        live_server: LiveServer) -> None:
    runner = live_server.app.test_cli_runner()
    assert runner.invoke(args=["demo", "--base-url", live_server.url]).exit_code == 0
    shop = requests.get(f"{live_server.url}/sandbox/shop", timeout=30)
    assert shop.ok and 'action="/sandbox/shop/invoice"' in shop.text
    answer = requests.post(f"{live_server.url}/sandbox/shop/invoice",
                           data={"client_id": "1000", "kind": "btc"}, timeout=30,
                           allow_redirects=False)
    assert answer.status_code == 303, answer.text
    with live_server.app.app_context():
        invoice = db.session().scalars(select(Invoice).where(
            Invoice.sender_currency == "BTC")).one()
        assert answer.headers["Location"] == f"{live_server.url}/p/{invoice.page_id}"
        assert invoice.merchant_id == 1000 and invoice.foreign_id.startswith("demo-order-")
        [quote] = db.session().scalars(select(InvoiceQuote)).all()
        assert quote.current and quote.address


def test_the_demo_shops_button_needs_a_real_account(live_server: LiveServer) -> None:
    answer = requests.post(f"{live_server.url}/sandbox/shop/invoice",
                           data={"client_id": "999999"}, timeout=30, allow_redirects=False)
    assert answer.status_code == 404
