"""A quote whose processor answer was lost is completed under the same foreign_id, never made
twice: the foreign_id is stored before the processor hears of it (processor.py's
`Unavailable(maybe_created=True)`).

A real proxy stands between us and the sandbox: it forwards each invoices/create and then
hangs up instead of answering, as a network that drops the answer would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from flask import Flask
from kit.invoices import TYPE_3, TestShop
from kit.live import LiveServer
from sqlalchemy import func, select

from checkout import db, processor
from checkout.models import Invoice, InvoiceQuote, Merchant
from checkout.sandbox import store as sandbox_store
from checkout.services import invoices


class AnswerDropper:
    def __init__(self, target: str) -> None:
        self.target = target
        self.dropped = 0
        dropper = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length")}
                answer = requests.request(method, dropper.target + self.path, data=body,
                                          headers=headers, timeout=30)
                if self.path.endswith("/invoices/create"):
                    dropper.dropped += 1
                    self.close_connection = True  # hang up: the answer never arrives
                    return
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", ""))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self._forward("POST")

            def do_GET(self) -> None:  # noqa: N802
                self._forward("GET")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def dropper(app: Flask, live_server: LiveServer) -> Iterator[AnswerDropper]:
    proxy = AnswerDropper(live_server.url)
    app.config["PROCESSOR_URL"] = proxy.url + processor.SANDBOX_PATH
    yield proxy
    app.config["PROCESSOR_URL"] = None
    proxy.server.shutdown()
    proxy.server.server_close()


def processor_invoices(app: Flask, foreign_id: str) -> int:
    with sandbox_store.transaction(app) as s:
        return int(s.scalar(select(func.count()).select_from(sandbox_store.Operation).where(
            sandbox_store.Operation.foreign_id == foreign_id)) or 0)


def test_a_lost_answer_is_recovered_under_the_same_foreign_id(
        app: Flask, live_server: LiveServer, merchant: Merchant,
        dropper: AnswerDropper) -> None:
    shop = TestShop(live_server.url)
    data = shop.create().json()["data"]
    with app.app_context():
        invoice = db.session().get(Invoice, data["id"])
        assert invoice is not None
        with pytest.raises(processor.Unavailable) as lost:
            invoices.choose_currency(invoice.page_id, "BTC")
        assert lost.value.maybe_created
        [quote] = db.session().scalars(select(InvoiceQuote)).all()
        assert (quote.status, quote.processor_id, quote.current) == ("new", None, False)
    assert dropper.dropped == 1 and processor_invoices(app, quote.foreign_id) == 1
    app.config["PROCESSOR_URL"] = None  # the network is back
    with app.app_context():
        again = invoices.choose_currency(invoice.page_id, "BTC")
    assert again.id == quote.id and again.current and again.processor_id is not None
    assert again.address and again.sender_amount
    assert processor_invoices(app, quote.foreign_id) == 1


def test_a_type_3_create_whose_quote_answer_was_lost_is_answered_and_completed_later(
        app: Flask, live_server: LiveServer, merchant: Merchant,
        dropper: AnswerDropper) -> None:
    answer = TestShop(live_server.url).create(TYPE_3)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert (data["status"], data["address"], data["sender_currency"]) == (
        "pending", None, "BTC")
    app.config["PROCESSOR_URL"] = None
    with app.app_context():
        invoice = db.session().get(Invoice, data["id"])
        assert invoice is not None
        quote = invoices.choose_currency(invoice.page_id, "BTC")
    assert quote.current and quote.address
    assert processor_invoices(app, quote.foreign_id) == 1


def test_a_callback_for_a_quote_whose_answer_was_lost_is_still_ours(
        app: Flask, live_server: LiveServer, merchant: Merchant,
        dropper: AnswerDropper) -> None:
    import json

    from kit.callbacks import running_shop, use_shop
    from kit.invoices import pay, settle

    with running_shop() as webhook:
        use_shop(app, webhook)
        data = TestShop(live_server.url).create(TYPE_3).json()["data"]
        app.config["PROCESSOR_URL"] = None
        with app.app_context():
            [quote] = db.session().scalars(select(InvoiceQuote)).all()
            assert quote.processor_id is None
            merchant_now = db.session().get(Merchant, 11)
            assert merchant_now is not None
            # The processor made the invoice and a payer found its address (say, by the QR
            # of an earlier page view): its callback must not pass to the shop as received.
            info = processor.client_for(merchant_now).transactions_info(
                foreign_id=quote.foreign_id)
        pay(live_server.url, info["crypto_address"]["address"],
            info["currency_sent"]["amount"])
        settle(app)
        [event] = [json.loads(item.body) for item in webhook.received]
    assert (event["id"], event["foreign_id"], event["status"]) == (
        data["id"], "order-7", "processing")
    assert quote.foreign_id not in json.dumps(event)
    with app.app_context():
        stored = db.session().get(InvoiceQuote, quote.id)
        assert stored is not None and stored.processor_id == info["id"]
