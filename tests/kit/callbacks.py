"""Shared parts of the callback, delivery and reconciliation tests (and the kit's own tests).

The processor's documented callback examples (coinspaid-api.md §3, verbatim, from
coinspaid_doc), signing helpers, rows for "what we issued", and a real tiny shop webhook on
127.0.0.1.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from checkout import db, processor
from checkout.clock import system_now
from checkout.models import (
    AppliedCallback,
    Callback,
    Delivery,
    Deposit,
    DepositAddress,
    Invoice,
    InvoiceQuote,
    Merchant,
    Page,
)
from checkout.wire import signing
from kit import coinspaid_doc, payments
from kit.counters import count as count
from kit.live import PeerServer
from kit.site import MERCHANT_KEY, MERCHANT_SECRET

# coinspaid-api.md §3 "Example payloads" (verbatim, in coinspaid_doc), as callback bodies.
EXAMPLES: dict[str, bytes] = {
    "deposit confirmed": coinspaid_doc.DEPOSIT_CALLBACK.encode(),
    "deposit_exchange": coinspaid_doc.DEPOSIT_EXCHANGE_CALLBACK.encode(),
    "withdrawal": coinspaid_doc.WITHDRAWAL_CALLBACK.encode(),
    "withdrawal cancelled": coinspaid_doc.WITHDRAWAL_CANCELLED_CALLBACK.encode(),
    "exchange": coinspaid_doc.EXCHANGE_CALLBACK.encode(),
    "invoice processing": coinspaid_doc.INVOICE_CALLBACK.encode(),
}

OUR_ADDRESS = "39mFf3X46YzUtfdwVQpYXPCMydc74ccbAZ"
OUR_FOREIGN_ID = "user-id:2048"

# ---------------------------------------------------------------------------------------------
# Signing and posting


def signed_headers(body: bytes, key: str = MERCHANT_KEY,
                   secret: str = MERCHANT_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Processing-Key": key,
            "X-Processing-Signature": signing.sign(body, secret)}


def post(client: FlaskClient, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return client.post("/callbacks/coinspaid", data=body,
                       headers=signed_headers(body) if headers is None else headers)


def post_live(base_url: str, body: bytes) -> requests.Response:
    return requests.post(f"{base_url}/callbacks/coinspaid", data=body,
                         headers=signed_headers(body), timeout=30)


def deposit_body(processor_id: int, status: str, *, address: str = OUR_ADDRESS,
                 currency: str = "BTC", foreign_id: str | None = OUR_FOREIGN_ID,
                 tag: str | None = None, amount: str = "0.01000000",
                 txid: str = "ab" * 32, sent_currency: str | None = None) -> bytes:
    """A deposit callback in the processor's shape (compact, like its PHP encoder)."""
    crypto_address: dict[str, Any] = {"id": 1, "currency": currency, "address": address,
                                      "tag": tag}
    if foreign_id is not None:
        crypto_address["foreign_id"] = foreign_id
    payload = {
        "id": processor_id, "type": "deposit", "crypto_address": crypto_address,
        "currency_sent": {"currency": sent_currency or currency, "amount": amount},
        "currency_received": {"currency": currency, "amount": amount},
        "transactions": [{"id": processor_id, "currency": currency,
                          "transaction_type": "blockchain", "type": "deposit",
                          "address": address, "tag": tag, "amount": amount, "txid": txid,
                          "confirmations": "0" if status == "not_confirmed" else 3}],
        "fees": [], "error": "", "status": status,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def invoice_body(processor_id: int, status: str, foreign_id: str, *,
                 error: str = "") -> bytes:
    payload = {
        "id": processor_id, "foreign_id": foreign_id, "type": "invoice",
        "crypto_address": {"id": 1845, "currency": "BTC", "convert_to": "EUR",
                           "address": "2N8pvnVKEFjVCP4TteJVCPTbg9Aqibfws8C", "tag": None},
        "currency_sent": {"currency": "BTC", "amount": "0.00309556",
                          "remaining_amount": "0.00000000"},
        "currency_received": {"currency": "EUR", "amount": "26.00000000"},
        "transactions": [], "fees": [], "error": error, "status": status,
        "fixed_at": 1592308917, "expires_at": 1592395375,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------
# What we issued


def issue_address(app: Flask, *, address: str = OUR_ADDRESS, currency: str = "BTC",
                  foreign_id: str = OUR_FOREIGN_ID, tag: str | None = None,
                  amount: str | None = "0.01", merchant_id: int = 11,
                  created_at: datetime | None = None) -> tuple[int, str]:
    """A deposit address we took at the processor and the customer page showing it."""
    created = created_at or system_now() - timedelta(minutes=1)
    with app.app_context(), db.transaction() as s:
        row = DepositAddress(merchant_id=merchant_id, foreign_id=foreign_id, currency=currency,
                             convert_to="", address=address, tag=tag, created_at=created)
        s.add(row)
        s.flush()
        page = Page(id=secrets.token_urlsafe(32), kind="deposit", merchant_id=merchant_id,
                    foreign_id=foreign_id, currency=currency, amount=amount, amount_paid="0",
                    address_id=row.id, address=address, tag=tag, status="waiting",
                    created_at=created, updated_at=created)
        s.add(page)
        return row.id, page.id


def issue_invoice(app: Flask, processor_id: int, foreign_id: str, *,
                  status: str = "pending", merchant_id: int = 11) -> str:
    """A shop's invoice whose current quote is the processor invoice `processor_id`, made
    under our quote foreign_id `foreign_id`; the invoice's page id."""
    with app.app_context(), db.transaction() as s:
        now = system_now()
        page = Page(id=secrets.token_urlsafe(32), kind="invoice", merchant_id=merchant_id,
                    foreign_id=f"shop-{foreign_id}", currency="BTC", amount="0.00309556",
                    amount_paid="0", status=status, processor_invoice_id=processor_id,
                    created_at=now, updated_at=now)
        s.add(page)
        s.flush()
        invoice = Invoice(merchant_id=merchant_id, foreign_id=f"shop-{foreign_id}",
                          page_id=page.id, title="Order", currency="EUR", amount="26",
                          timer=True, type="fill_or_kill", url_success="https://shop.example/ok",
                          url_failed="https://shop.example/failed", status=status,
                          created_at=now, updated_at=now)
        s.add(invoice)
        s.flush()
        s.add(InvoiceQuote(invoice_id=invoice.id, merchant_id=merchant_id,
                           processor_id=processor_id, foreign_id=foreign_id,
                           sender_currency="BTC", sender_amount="0.00309556",
                           remaining_amount="0.00309556", status=status, amount_paid="0",
                           current=True, created_at=now, updated_at=now))
        return page.id


def take_address(app: Flask, foreign_id: str) -> tuple[str, str]:
    """An address taken at the sandbox processor, and our page showing it."""
    with app.app_context():
        merchant = db.session().get(Merchant, 11)
        assert merchant is not None
        taken = processor.client_for(merchant).addresses_take("BTC", foreign_id)
    _, page = issue_address(app, address=taken.address, foreign_id=foreign_id, amount="0.01",
                            created_at=system_now() - timedelta(seconds=5))
    return taken.address, page


def pay(base_url: str, address: str, status: str) -> None:
    """A payer sends coins; the processor's callback is queued but, here, never sent (lost)."""
    payments.pay(base_url, address, "0.01", status)


def page_state(app: Flask, page_id: str) -> tuple[str, str | None]:
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None
        return page.status, page.reason




def nothing_written(app: Flask) -> bool:
    return all(count(app, m) == 0 for m in (Callback, AppliedCallback, Delivery, Deposit))


def callbacks_of(app: Flask) -> list[Callback]:
    with app.app_context():
        return list(db.session().scalars(select(Callback).order_by(Callback.id)).all())


def deposits_of(app: Flask) -> list[Deposit]:
    with app.app_context():
        return list(db.session().scalars(select(Deposit).order_by(Deposit.id)).all())


class Clock:
    """The site clock, moved by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or system_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


# ---------------------------------------------------------------------------------------------
# A shop's webhook: a real HTTP server on 127.0.0.1


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int] | None = None  # the sender's end of the connection


@dataclass
class Shop:
    """Answers with `script` statuses in turn (then 200); records every request.

    `gate`, when set, holds each request until it is opened; `in_flight` and
    `max_in_flight` count concurrent requests per callback id.
    """

    script: list[int] = field(default_factory=list)
    hold: float = 0.0
    answer: bytes = b""  # the body of every answer
    gate: threading.Event | None = None
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    in_flight: Counter[Any] = field(default_factory=Counter)
    max_in_flight: Counter[Any] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handle(self, headers: dict[str, str], body: bytes,
               peer: tuple[str, int] | None = None) -> int:
        try:
            ident = json.loads(body).get("id")
        except ValueError:
            ident = None
        with self.lock:
            self.received.append(Received(headers, body, peer))
            self.in_flight[ident] += 1
            self.max_in_flight[ident] = max(self.max_in_flight[ident], self.in_flight[ident])
            status = self.script.pop(0) if self.script else 200
        self.arrived.set()
        try:
            if self.gate is not None:
                self.gate.wait(30)
            if self.hold:
                threading.Event().wait(self.hold)
        finally:
            with self.lock:
                self.in_flight[ident] -= 1
        return status

    def verifies(self, item: Received, secret: str = MERCHANT_SECRET) -> bool:
        return signing.verify(item.body, secret, item.headers.get("X-Processing-Signature"))


def serve_shop(shop: Shop) -> Callable[[], None]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = shop.handle(dict(self.headers.items()), body, self.client_address[:2])
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", str(len(shop.answer)))
            self.end_headers()
            self.wfile.write(shop.answer)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = PeerServer(("127.0.0.1", 0), Handler)
    shop.url = f"http://127.0.0.1:{server.server_port}/coinspaid/callback"
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        if shop.gate is not None:
            shop.gate.set()
        server.shutdown()
        server.server_close()

    return stop


@contextmanager
def running_shop(**options: Any) -> Iterator[Shop]:
    """A shop webhook served for real for the length of a `with` block."""
    shop = Shop(**options)
    stop = serve_shop(shop)
    try:
        yield shop
    finally:
        stop()


def use_shop(app: Flask, shop: Shop, merchant_id: int = 11) -> None:
    from checkout.models import Merchant

    with app.app_context(), db.transaction() as s:
        merchant = s.get(Merchant, merchant_id)
        assert merchant is not None
        merchant.webhook_url = shop.url


# ---------------------------------------------------------------------------------------------
# The kit's own tests




