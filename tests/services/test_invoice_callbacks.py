"""Invoices end to end: a shop creates them over our API, a payer pays at the sandbox, the
sandbox's real signed callbacks reach /callbacks/coinspaid over HTTP, and the shop's webhook
hears each event of its own invoice exactly once, under its own ids, signed with its secret.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import (
    Shop,
    callbacks_of,
    invoice_body,
    issue_invoice,
    page_state,
    post,
)
from kit.invoices import (
    ORDER,
    TYPE_3,
    TestShop,
    advance_sandbox,
    pay,
    settle,
    shop_signature,
    shop_verifies,
)
from kit.live import LiveServer
from kit.returns import shop_checks
from kit.site import MERCHANT_SECRET
from sqlalchemy import select

from checkout import db, processor
from checkout.models import Invoice, InvoiceQuote, Merchant, Page
from checkout.services import deliveries, invoices


@pytest.fixture
def shop(live_server: LiveServer, merchant: Merchant, webhook: Shop) -> TestShop:
    return TestShop(live_server.url)


def events(webhook: Shop) -> list[dict[str, Any]]:
    """What the shop received, each body checked with the shop's own HMAC code first."""
    for item in webhook.received:
        assert shop_verifies(item.body, item.headers.get("X-Processing-Signature"))
        assert item.headers.get("X-Processing-Key") == "test-key-11"
    return [json.loads(item.body) for item in webhook.received]


def told(webhook: Shop) -> list[tuple[Any, ...]]:
    return [(e["id"], e["foreign_id"], e["status"], e["error"]) for e in events(webhook)]


def invoice_of(app: Flask, invoice_id: int) -> Invoice:
    with app.app_context():
        invoice = db.session().get(Invoice, invoice_id)
        assert invoice is not None
        return invoice


def page_of(app: Flask, invoice: Invoice) -> Page:
    with app.app_context():
        page = db.session().get(Page, invoice.page_id)
        assert page is not None
        return page


def quotes(app: Flask, invoice_id: int) -> list[InvoiceQuote]:
    with app.app_context():
        return list(db.session().scalars(select(InvoiceQuote).where(
            InvoiceQuote.invoice_id == invoice_id).order_by(InvoiceQuote.id)))


def pick(app: Flask, invoice: Invoice, currency: str) -> InvoiceQuote:
    """What the page's currency form does (the lead's page calls the same service)."""
    with app.app_context():
        return invoices.choose_currency(invoice.page_id, currency)


def confirm(live: LiveServer, app: Flask) -> None:
    advance_sandbox(live.url, 120)  # the sandbox confirms a payment after 10 s of its clock
    settle(app)


# ---------------------------------------------------------------------------------------------
# Type 3: paid exactly


def test_a_paid_type_3_invoice_is_told_to_the_shop_once_per_event(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    data = shop.create(TYPE_3).json()["data"]
    pay(live_server.url, data["address"], data["sender_amount"])
    settle(app)
    confirm(live_server, app)
    settle(app)
    assert told(webhook) == [(data["id"], "order-7", "processing", ""),
                             (data["id"], "order-7", "confirmed", "")]
    [quote] = quotes(app, data["id"])
    for item in webhook.received:
        # Never the processor's invoice id, nor our quote's foreign_id.
        assert quote.foreign_id.encode() not in item.body
    confirmed = events(webhook)[-1]
    assert confirmed["type"] == "invoice"
    assert confirmed["currency_sent"] == {"currency": "BTC", "amount": data["sender_amount"],
                                          "remaining_amount": "0.00000000"}
    assert confirmed["currency_received"] == {"currency": "EUR", "amount": "35.00000000"}
    assert confirmed["crypto_address"]["address"] == data["address"]
    assert confirmed["crypto_address"]["id"] == data["id"]
    assert [leg["amount"] for leg in confirmed["transactions"]] == [data["sender_amount"]]
    assert confirmed["fees"] and confirmed["fees"][0]["type"] == "fee_crypto_deposit"
    invoice = invoice_of(app, data["id"])
    assert (invoice.status, invoice.reason) == ("confirmed", None)
    page = page_of(app, invoice)
    assert (page.status, page.amount_paid, page.currency) == (
        "confirmed", data["sender_amount"], "BTC")
    # The final screen's way back carries a signed outcome the shop can check.
    with app.app_context():
        merchant = db.session().get(Merchant, 11)
        assert merchant is not None
        url = invoices.return_url(invoice, merchant)
    assert url is not None and url.startswith("https://shop.example/paid?order=7&")
    checked = shop_checks(url, MERCHANT_SECRET)
    assert checked is not None and (checked["status"], checked["foreign_id"]) == (
        "confirmed", "order-7")


def test_the_bodies_we_compose_are_encoded_as_php_json_encode_does() -> None:
    assert deliveries.encode({"title": "Ü/ß", "n": 1, "list": []}) == (
        b'{"title":"\\u00dc\\/\\u00df","n":1,"list":[]}')


def test_fifty_replays_of_a_processor_invoice_callback_reach_the_shop_once(
        app: Flask, client: Any, shop: TestShop, live_server: LiveServer,
        webhook: Shop) -> None:
    data = shop.create(TYPE_3).json()["data"]
    pay(live_server.url, data["address"], data["sender_amount"])
    settle(app)
    [first] = callbacks_of(app)
    headers = {"Content-Type": "application/json", "X-Processing-Key": "test-key-11",
               "X-Processing-Signature": shop_signature(first.body)}
    for _ in range(50):
        assert requests.post(f"{live_server.url}/callbacks/coinspaid", data=first.body,
                             headers=headers, timeout=30).status_code == 200
    settle(app)
    assert len(callbacks_of(app)) == 51
    assert [c.outcome for c in callbacks_of(app)][1:] == ["duplicate"] * 50
    assert told(webhook) == [(data["id"], "order-7", "processing", "")]


# ---------------------------------------------------------------------------------------------
# Type 1: the customer picks, and may change, the currency


def test_picking_a_currency_quotes_it_at_the_processor(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    data = shop.create().json()["data"]
    invoice = invoice_of(app, data["id"])
    quote = pick(app, invoice, "BTC")
    assert (quote.current, quote.status, quote.sender_currency) == (True, "pending", "BTC")
    assert quote.address and Decimal(quote.sender_amount or "0") > 0
    invoice = invoice_of(app, data["id"])
    assert invoice.status == "pending"  # as at the processor: a currency was chosen
    page = page_of(app, invoice)
    assert (page.currency, page.amount, page.address, page.processor_invoice_id) == (
        "BTC", quote.sender_amount, quote.address, quote.processor_id)
    assert page.fiat_currency == "EUR" and page.expires_at == quote.release_at
    # Picking the same currency again keeps the quote: no second processor invoice.
    assert pick(app, invoice, "BTC").id == quote.id
    assert len(quotes(app, data["id"])) == 1


def test_changing_currency_supersedes_the_quote_and_its_failure_never_reaches_the_shop(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    data = shop.create().json()["data"]
    invoice = invoice_of(app, data["id"])
    first = pick(app, invoice, "BTC")
    second = pick(app, invoice, "LTC")
    assert second.id != first.id and second.current
    old, new = quotes(app, data["id"])
    assert (old.current, new.current) == (False, True)
    settle(app)  # the processor tells us the old quote was cancelled
    with app.app_context():
        merchant = db.session().get(Merchant, 11)
        assert merchant is not None
        info = processor.client_for(merchant).transactions_info(foreign_id=first.foreign_id)
    assert info["status"] == "failed"
    assert [c.outcome for c in callbacks_of(app)] == ["ignored"]
    assert invoice_of(app, data["id"]).status == "pending"
    pay(live_server.url, new.address or "", new.sender_amount or "")
    settle(app)
    confirm(live_server, app)
    assert told(webhook) == [(data["id"], "order-7", "processing", ""),
                             (data["id"], "order-7", "confirmed", "")]
    assert events(webhook)[-1]["currency_sent"]["currency"] == "LTC"
    page = page_of(app, invoice_of(app, data["id"]))
    assert (page.status, page.currency) == ("confirmed", "LTC")


def test_the_currency_cannot_change_once_a_payment_was_seen(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    data = shop.create().json()["data"]
    invoice = invoice_of(app, data["id"])
    quote = pick(app, invoice, "BTC")
    pay(live_server.url, quote.address or "", "0.0001")
    settle(app)
    with pytest.raises(invoices.WrongState):
        pick(app, invoice, "LTC")
    assert len(quotes(app, data["id"])) == 1


def test_a_pick_the_processor_refuses_is_a_clear_refusal_and_changes_nothing(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    data = shop.create(amount="1").json()["data"]  # below the sandbox's 10 EUR minimum
    invoice = invoice_of(app, data["id"])
    with pytest.raises(invoices.QuoteRefused) as refused:
        pick(app, invoice, "BTC")
    assert refused.value.errors == {
        "amount": "The amount is too small. The minimum amount is 10.00 EUR."}
    [quote] = quotes(app, data["id"])
    assert (quote.status, quote.current) == ("refused", False)
    assert invoice_of(app, data["id"]).status == "created"


def test_a_money_payment_to_a_superseded_quote_is_kept_and_flagged(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    data = shop.create().json()["data"]
    invoice = invoice_of(app, data["id"])
    first = pick(app, invoice, "BTC")
    # The customer paid the first address in the moment before changing currency; the cancel
    # at the processor would fail then, so the old quote stays open there: simulate that by
    # paying first and superseding without the processor noticing.
    with app.app_context(), db.transaction() as s:
        new = InvoiceQuote(invoice_id=invoice.id, merchant_id=11, foreign_id="x-1",
                           sender_currency="LTC", status="pending", amount_paid="0",
                           current=True)
        s.add(new)
        s.get(InvoiceQuote, first.id).current = False  # type: ignore[union-attr]
    pay(live_server.url, first.address or "", "0.0001")
    settle(app)
    [seen] = callbacks_of(app)
    assert seen.outcome == "flagged" and "superseded" in (seen.flag or "")
    [old, _] = quotes(app, data["id"])
    assert Decimal(old.amount_paid) == Decimal("0.0001")
    assert told(webhook) == []


# ---------------------------------------------------------------------------------------------
# Instalments, expiry, cancel


def test_good_until_expired_takes_two_parts_then_the_rest(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    data = shop.create(TYPE_3, type="good_until_expired").json()["data"]
    due = Decimal(data["sender_amount"])
    part = (due / 4).quantize(Decimal("0.00000001"))
    pay(live_server.url, data["address"], str(part))
    settle(app)
    confirm(live_server, app)
    pay(live_server.url, data["address"], str(part))
    settle(app)
    confirm(live_server, app)
    quote = quotes(app, data["id"])[0]
    assert Decimal(quote.remaining_amount or "0") == due - 2 * part
    page = page_of(app, invoice_of(app, data["id"]))
    assert (page.status, Decimal(page.amount_paid)) == ("pending", 2 * part)
    pay(live_server.url, data["address"], str(due - 2 * part))
    settle(app)
    confirm(live_server, app)
    said = [(e["status"], e["currency_sent"]["remaining_amount"]) for e in events(webhook)]
    rest = f"{due - part:.8f}", f"{due - 2 * part:.8f}"
    assert said == [("processing", rest[0]), ("pending", rest[0]), ("processing", rest[1]),
                    ("pending", rest[1]), ("processing", "0.00000000"),
                    ("confirmed", "0.00000000")]
    assert invoice_of(app, data["id"]).status == "confirmed"


def test_an_unpaid_type_3_invoice_expires_on_the_sandbox_clock(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    data = shop.create(TYPE_3).json()["data"]
    advance_sandbox(live_server.url, 16 * 60)
    settle(app)
    assert told(webhook) == [(data["id"], "order-7", "failed", "Timer expired. User not paid.")]
    invoice = invoice_of(app, data["id"])
    assert (invoice.status, invoice.reason) == ("failed", "expired")
    assert page_of(app, invoice).reason == "expired"
    with pytest.raises(invoices.WrongState):
        pick(app, invoice, "BTC")


def test_an_expired_quote_without_a_shop_timer_can_be_quoted_afresh(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    data = shop.create().json()["data"]
    invoice = invoice_of(app, data["id"])
    first = pick(app, invoice, "BTC")
    advance_sandbox(live_server.url, 16 * 60)
    settle(app)
    assert told(webhook) == []  # the price expired, not the shop's invoice
    [expired] = quotes(app, data["id"])
    assert (expired.status, expired.current) == ("failed", True)
    assert invoice_of(app, data["id"]).status == "pending"
    fresh = pick(app, invoice, "BTC")
    assert fresh.id != first.id and fresh.status == "pending" and fresh.current


def test_a_cancelled_invoice_is_told_once_and_the_processors_echo_is_not_forwarded(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    data = shop.create(TYPE_3).json()["data"]
    assert shop.cancel("order-7").status_code == 200
    settle(app)
    assert told(webhook) == [(data["id"], "order-7", "failed", "Invoice was cancelled.")]
    assert [c.outcome for c in callbacks_of(app)] == ["stale"]


def test_a_type_2_invoice_nobody_picked_for_expires_with_the_shops_timer(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    from datetime import timedelta

    from checkout import clock

    data = shop.create(timer=True).json()["data"]
    later = clock.system_now() + timedelta(minutes=16)
    app.config["CLOCK"] = lambda: later
    try:
        settle(app)
    finally:
        app.config.pop("CLOCK")
    assert told(webhook) == [(data["id"], "order-7", "failed", "Timer expired. User not paid.")]
    invoice = invoice_of(app, data["id"])
    assert (invoice.status, invoice.reason) == ("failed", "expired")


def test_type_1_invoices_need_no_email_until_the_page_asks(
        app: Flask, shop: TestShop, webhook: Shop) -> None:
    data = shop.create(email_user=None, foreign_id="no-mail").json()["data"]
    invoice = invoice_of(app, data["id"])
    with app.app_context():
        with pytest.raises(ValueError):
            invoices.set_email(invoice.page_id, "not an email")
        invoices.set_email(invoice.page_id, " buyer@example.com ")
    assert invoice_of(app, data["id"]).email_user == "buyer@example.com"


def test_orders_without_the_shop_webhook_are_kept_but_not_sent(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    shop = TestShop(live_server.url)
    data = shop.create({**ORDER, "timer": True, "sender_currency": "BTC"}).json()["data"]
    pay(live_server.url, data["address"], data["sender_amount"])
    settle(app)
    assert invoice_of(app, data["id"]).status == "processing"


def test_two_picks_at_once_leave_one_current_quote(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:

    data = shop.create().json()["data"]
    invoice = invoice_of(app, data["id"])
    start = threading.Barrier(2)
    failures: list[Exception] = []

    def choose(currency: str) -> None:
        start.wait()
        try:
            pick(app, invoice, currency)
        except Exception as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=choose, args=(c,)) for c in ("BTC", "LTC")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    made = quotes(app, data["id"])
    assert len(made) == 2 and [q.current for q in made].count(True) == 1
    page = page_of(app, invoice_of(app, data["id"]))
    [current] = [q for q in made if q.current]
    assert (page.currency, page.address) == (current.sender_currency, current.address)


@pytest.mark.parametrize("change", [
    {"currency_sent": {"currency": "BTC", "amount": "1", "remaining_amount": "1e999999999"}},
    {"currency_sent": {"currency": "BTC", "amount": "1", "remaining_amount": "-1"}},
    {"currency_sent": {"currency": "BTC", "amount": "1", "remaining_amount": "NaN"}},
    {"currency_sent": {"currency": "BTC", "amount": "1", "remaining_amount": ["0"]}},
    {"error": "x\u0000y" * 1000},
    {"expires_at": 10 ** 30},
    {"transactions": [{"id": 10 ** 30, "amount": "1e99999", "txid": "\u0000" * 10}] * 500},
    {"fees": [{"type": {"a": 1}, "amount": "1"}] * 500},
    {"crypto_address": "not an object"},
], ids=["huge-remaining", "negative-remaining", "nan-remaining", "list-remaining", "nul-error",
        "huge-expiry", "hostile-legs", "hostile-fees", "address-text"])
def test_hostile_values_in_a_signed_invoice_callback_are_bounded_never_a_500(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop,
        change: dict[str, Any]) -> None:
    from kit.callbacks import post_live

    data = shop.create(TYPE_3).json()["data"]
    [quote] = quotes(app, data["id"])
    payload = {"id": quote.processor_id, "foreign_id": quote.foreign_id, "type": "invoice",
               "currency_sent": {"currency": "BTC", "amount": data["sender_amount"],
                                 "remaining_amount": "0.00000000"},
               "currency_received": {"currency": "EUR", "amount": "35.00000000"},
               "transactions": [], "fees": [], "error": "", "status": "processing",
               "fixed_at": data["fixed_at"], "expires_at": data["release_at"], **change}
    body = json.dumps(payload, separators=(",", ":")).encode()
    assert post_live(live_server.url, body).status_code == 200
    [stored] = callbacks_of(app)
    assert stored.outcome in {"applied", "flagged"}
    settle(app)
    [quote] = quotes(app, data["id"])
    assert len(quote.transactions_json) < 100_000 and "\u0000" not in quote.transactions_json
    assert quote.error is None or ("\u0000" not in quote.error and len(quote.error) <= 255)
    for event in events(webhook):
        assert event["id"] == data["id"] and event["foreign_id"] == "order-7"


@pytest.mark.parametrize(("first", "second"), [("failed", "confirmed"), ("confirmed", "failed")])
def test_a_contradicting_final_invoice_status_is_flagged_and_the_first_stays(
        app: Flask, client: FlaskClient, merchant: Merchant, first: str, second: str) -> None:
    page = issue_invoice(app, 88, "inv-88")
    assert post(client, invoice_body(88, first, "inv-88")).status_code == 200
    assert post(client, invoice_body(88, second, "inv-88")).status_code == 200
    assert post(client, invoice_body(88, "processing", "inv-88")).status_code == 200
    applied, contradicting, late = callbacks_of(app)
    assert applied.outcome == "applied"
    assert (contradicting.outcome, contradicting.flag) == (
        "flagged", f"{second} after final {first}")
    assert (late.outcome, late.flag) == ("stale", None)
    assert page_state(app, page)[0] == first
