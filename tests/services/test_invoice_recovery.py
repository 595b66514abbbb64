"""A quote whose processor answer was lost is completed under the same foreign_id, never made
twice: the foreign_id is stored before the processor hears of it (processor.py's
`Unavailable(maybe_created=True)`).

A real proxy stands between us and the sandbox (kit.proxies): it forwards each
invoices/create and then hangs up instead of answering, as a network that drops the answer
would.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from kit.invoices import TYPE_3, TestShop
from kit.live import LiveServer
from kit.proxies import Proxy, between
from sqlalchemy import func, select

from checkout import db, processor
from checkout.models import Invoice, InvoiceQuote, Merchant
from checkout.sandbox import store as sandbox_store
from checkout.services import invoices


@pytest.fixture
def dropper(app: Flask, live_server: LiveServer) -> Iterator[Proxy]:
    with between(app, live_server.url, "/invoices/create") as proxy:
        yield proxy


def processor_invoices(app: Flask, foreign_id: str) -> int:
    with sandbox_store.transaction(app) as s:
        return int(s.scalar(select(func.count()).select_from(sandbox_store.Operation).where(
            sandbox_store.Operation.foreign_id == foreign_id)) or 0)


def test_a_lost_answer_is_recovered_under_the_same_foreign_id(
        app: Flask, live_server: LiveServer, merchant: Merchant,
        dropper: Proxy) -> None:
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
    assert dropper.forwarded == 1 and processor_invoices(app, quote.foreign_id) == 1
    app.config["PROCESSOR_URL"] = None  # the network is back
    with app.app_context():
        again = invoices.choose_currency(invoice.page_id, "BTC")
    assert again.id == quote.id and again.current and again.processor_id is not None
    assert again.address and again.sender_amount
    assert processor_invoices(app, quote.foreign_id) == 1


def test_a_type_3_create_whose_quote_answer_was_lost_is_answered_and_completed_later(
        app: Flask, live_server: LiveServer, merchant: Merchant,
        dropper: Proxy) -> None:
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
        dropper: Proxy) -> None:
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
