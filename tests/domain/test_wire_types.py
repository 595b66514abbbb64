"""What a shop's typed client parses of what we send: every callback body the site writes
itself (its invoice events, the news reconciliation learned) and every processor body it
forwards has the processor's JSON types, field by field, checked against the schema read off
the processor's documented examples (wire_types, coinspaid-api.md §3).

Go's client answers `400 json: invalid use of ,string struct tag` to an integer
`confirmations` (and the shop's webhook is retried forever); Rust's serde refuses an invoice
callback without `crypto_address`. The checker's own tests come first: it must refuse what
those clients refuse.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from kit import coinspaid_doc, php_shop
from kit.callbacks import (
    Clock,
    Shop,
    callbacks_of,
    issue_invoice,
    post,
    take_address,
)
from kit.callbacks import pay as pay_lost
from kit.invoices import ORDER, TYPE_3, TestShop, advance_sandbox, pay, settle, shop_verifies
from kit.live import LiveServer
from kit.wire_types import SCHEMAS, problems
from sqlalchemy import select

from checkout import clock, db, money
from checkout.models import Delivery, Invoice, InvoiceQuote, Merchant, Page
from checkout.services import reconcile

INVOICE = json.loads(coinspaid_doc.INVOICE_CALLBACK)


# ---------------------------------------------------------------------------------------------
# The checker refuses what typed clients refuse


def test_the_documented_examples_pass_except_where_they_contradict_the_typed_clients() -> None:
    found = {name: problems(text) for name, text in {
        "deposit": coinspaid_doc.DEPOSIT_CALLBACK,
        "deposit_exchange": coinspaid_doc.DEPOSIT_EXCHANGE_CALLBACK,
        "withdrawal": coinspaid_doc.WITHDRAWAL_CALLBACK,
        "withdrawal cancelled": coinspaid_doc.WITHDRAWAL_CANCELLED_CALLBACK,
        "exchange": coinspaid_doc.EXCHANGE_CALLBACK,
        "invoice": coinspaid_doc.INVOICE_CALLBACK}.items()}
    # Two examples write `"confirmations":3`, two `"0"`/`"1"`: Go (`,string`) and Rust
    # (`String`) parse only the string, so the integer ones are exactly what is refused.
    assert found == {
        "deposit": ["transactions[0].confirmations: integer 3, the processor sends string"],
        "deposit_exchange": [],
        "withdrawal": ["transactions[0].confirmations: integer 3, the processor sends string"],
        "withdrawal cancelled": [], "exchange": [], "invoice": []}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return change


REFUSED = {
    "integer confirmations": (_set("transactions.0.confirmations", 0),
                              "transactions[0].confirmations: integer"),
    "string id": (_set("id", "22"), "id: string"),
    "string crypto_address id": (_set("crypto_address.id", "1845"), "crypto_address.id: string"),
    "no crypto_address": (_set("crypto_address", KeyError), "crypto_address: missing"),
    "null crypto_address": (_set("crypto_address", None), "crypto_address: null"),
    "no address in crypto_address": (_set("crypto_address.address", KeyError),
                                     "crypto_address.address: missing"),
    "null address": (_set("crypto_address.address", None), "crypto_address.address: null"),
    "bare number amount": (_set("currency_received.amount", 26), "currency_received.amount: "
                           "integer"),
    "amount without 8 places": (_set("currency_sent.amount", "0.0030955"),
                                "currency_sent.amount: '0.0030955' is not a decimal string "
                                "with 8 places"),
    "amount in exponent form": (_set("transactions.0.amount", "3E-3"),
                                "transactions[0].amount: '3E-3' is not a decimal string"),
    "no remaining_amount": (_set("currency_sent.remaining_amount", KeyError),
                            "currency_sent.remaining_amount: missing"),
    "null error": (_set("error", None), "error: null"),
    "no status": (_set("status", KeyError), "status: missing"),
    "string fixed_at": (_set("fixed_at", "1592308917"), "fixed_at: string"),
    "integer tag": (_set("crypto_address.tag", 12), "crypto_address.tag: integer"),
    "fee amount as a number": (_set("fees", [{"type": "fee_crypto_deposit", "currency": "BTC",
                                              "amount": 0.0008}]), "fees[0].amount: number"),
    "fee without currency": (_set("fees", [{"type": "fee_crypto_deposit", "amount": "0.00080000"}]),
                             "fees[0].currency: missing"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_the_checker_refuses_what_a_typed_client_refuses(case: str) -> None:
    change, expected = REFUSED[case]
    body = copy.deepcopy(INVOICE)
    change(body)
    found = problems(body)
    assert len(found) == 1 and found[0].startswith(expected), found


ACCEPTED = {
    "string tag (XRP)": _set("crypto_address.tag", "12345"),
    "no convert_to (paid in the invoice currency)": _set("crypto_address.convert_to", KeyError),
    "null timestamps (no currency chosen yet)": lambda b: b.update(fixed_at=None,
                                                                   expires_at=None),
    "end_user_reference": lambda b: b.update(end_user_reference="12345"),
    "an unknown extra field": lambda b: b.update(note="typed clients skip it"),
    "no transaction": _set("transactions", []),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_the_checker_accepts_what_the_documentation_allows(case: str) -> None:
    body = copy.deepcopy(INVOICE)
    ACCEPTED[case](body)
    assert problems(body) == []


def test_the_schema_is_read_off_the_examples_not_written_by_hand() -> None:
    invoice = SCHEMAS["invoice"]
    assert invoice.required == set(INVOICE)
    assert invoice.fields["crypto_address"].required == {"id", "currency", "address", "tag"}
    assert problems({"type": "payout"}) == ["type: 'payout' has no documented example"]


# ---------------------------------------------------------------------------------------------
# The site's own invoice events, end to end: the shop creates, the payer pays at the sandbox


@pytest.fixture
def shop(live_server: LiveServer, merchant: Merchant, webhook: Shop) -> TestShop:
    return TestShop(live_server.url)


def sent_to_shop(webhook: Shop) -> list[bytes]:
    for item in webhook.received:
        assert shop_verifies(item.body, item.headers.get("X-Processing-Signature"))
    return [item.body for item in webhook.received]


def confirm(live: LiveServer, app: Flask) -> None:
    advance_sandbox(live.url, 120)
    settle(app)


def half(amount: str) -> str:
    return str((Decimal(amount) / 2).quantize(Decimal("0.00000001")))


def paid(app: Flask, shop: TestShop, live: LiveServer) -> None:
    data = shop.create(TYPE_3).json()["data"]
    pay(live.url, data["address"], data["sender_amount"])
    settle(app)
    confirm(live, app)


def instalments(app: Flask, shop: TestShop, live: LiveServer) -> None:
    data = shop.create(TYPE_3, type="good_until_expired").json()["data"]
    pay(live.url, data["address"], half(data["sender_amount"]))
    settle(app)
    confirm(live, app)


def underpaid(app: Flask, shop: TestShop, live: LiveServer) -> None:
    data = shop.create(TYPE_3).json()["data"]
    pay(live.url, data["address"], half(data["sender_amount"]))
    settle(app)
    confirm(live, app)


def unpaid(app: Flask, shop: TestShop, live: LiveServer) -> None:
    shop.create(TYPE_3)
    advance_sandbox(live.url, 16 * 60)
    settle(app)


def cancelled_after_the_pick(app: Flask, shop: TestShop, live: LiveServer) -> None:
    shop.create(TYPE_3)
    assert shop.cancel("order-7").status_code == 200
    settle(app)


def cancelled_before_a_pick(app: Flask, shop: TestShop, live: LiveServer) -> None:
    shop.create(ORDER)  # type 1: the customer never chose a currency
    assert shop.cancel("order-7").status_code == 200
    settle(app)


def expired_before_a_pick(app: Flask, shop: TestShop, live: LiveServer) -> None:
    shop.create(ORDER, timer=True)  # type 2: the shop's own 15 minutes run out
    later = clock.system_now() + timedelta(minutes=16)
    app.config["CLOCK"] = lambda: later
    try:
        settle(app)
    finally:
        app.config.pop("CLOCK")


# What each story must have told the shop (so that no story passes by telling nothing).
STORIES: dict[str, tuple[Callable[[Flask, TestShop, LiveServer], None], list[str]]] = {
    "paid": (paid, ["processing", "confirmed"]),
    "instalments": (instalments, ["processing", "pending"]),
    "underpaid": (underpaid, ["processing", "failed"]),
    "unpaid": (unpaid, ["failed"]),
    "cancelled after the pick": (cancelled_after_the_pick, ["failed"]),
    "cancelled before a pick": (cancelled_before_a_pick, ["failed"]),
    "expired before a pick": (expired_before_a_pick, ["failed"]),
}
# Before a currency is chosen nobody knows what the payer was to send: the one documented
# field such an event lacks (typed clients declare it optional: Go `*CurrencyAmount`, Rust
# `Option<CurrencySentData>`).
NO_PICK = frozenset({"currency_sent"})


@pytest.mark.parametrize("story", STORIES)
def test_every_invoice_event_we_send_has_the_processors_types(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop, story: str) -> None:
    act, statuses = STORIES[story]
    act(app, shop, live_server)
    bodies = sent_to_shop(webhook)
    assert [json.loads(body)["status"] for body in bodies] == statuses
    may_lack = NO_PICK if "before a pick" in story else frozenset()
    for body in bodies:
        assert problems(body, may_lack=may_lack) == [], body
    # And what the processor itself (the sandbox) sent us about the quotes.
    for callback in callbacks_of(app):
        assert problems(callback.body) == [], callback.body


def test_an_event_before_a_pick_carries_a_crypto_address_of_empty_values(
        app: Flask, shop: TestShop, live_server: LiveServer, webhook: Shop) -> None:
    cancelled_before_a_pick(app, shop, live_server)
    [body] = sent_to_shop(webhook)
    event = json.loads(body)
    assert event["crypto_address"] == {"id": 0, "currency": "", "address": "", "tag": None}
    assert "currency_sent" not in event
    assert (event["fixed_at"], event["expires_at"]) == (None, None)
    assert event["currency_received"] == {"currency": "EUR", "amount": "35.00000000"}
    assert php_shop.reencode(body) == body  # still PHP's json_encode bytes


@pytest.mark.parametrize("answered", [True, False], ids=["answered quote", "answer lost"])
@pytest.mark.parametrize("variant", ["without crypto_address", "with an empty crypto_address",
                                     "with a crypto_address of nulls"])
def test_we_accept_a_failed_invoice_callback_with_or_without_crypto_address(
        app: Flask, client: Any, merchant: Merchant, variant: str, answered: bool) -> None:
    """The processor's choice is UNCONFIRMED: both shapes apply, also to a quote whose
    answer was lost (completed from the callback), and an empty address is no address."""
    issue_invoice(app, processor_id=22, foreign_id="229-hdsa")
    if not answered:
        with app.app_context(), db.transaction() as s:
            s.scalars(select(InvoiceQuote)).one().processor_id = None
    body = copy.deepcopy(INVOICE)
    body.update(status="failed", error="Invoice was cancelled.", transactions=[])
    if variant == "without crypto_address":
        del body["crypto_address"]
    elif variant == "with an empty crypto_address":
        body["crypto_address"] = {"id": 0, "currency": "", "address": "", "tag": None}
    else:
        body["crypto_address"] = {"id": None, "currency": None, "address": None, "tag": None}
    assert post(client, json.dumps(body, separators=(",", ":")).encode()).status_code == 200
    [callback] = callbacks_of(app)
    assert (callback.outcome, callback.flag) == ("applied", None)
    with app.app_context():
        invoice = db.session().scalars(select(Invoice)).one()
        assert (invoice.status, invoice.reason) == ("failed", "cancelled")
        quote = db.session().scalars(select(InvoiceQuote)).one()
        assert (quote.processor_id, quote.address) == (22, None)
        page = db.session().get(Page, invoice.page_id)
        assert page is not None and page.address is None


# ---------------------------------------------------------------------------------------------
# News reconciliation learned, told to the shop in the callback's shape


def test_news_from_a_documented_answer_is_told_in_the_processors_types() -> None:
    """transactions/info answers in the callback's shape (§2.13); the documented deposit
    writes `"confirmations":3`, which we must not pass on as an integer."""
    for text in (coinspaid_doc.DEPOSIT_CALLBACK, coinspaid_doc.DEPOSIT_EXCHANGE_CALLBACK):
        body = reconcile.news_body(money.loads(text))
        assert problems(body) == [], body


def test_bare_numbers_in_an_answer_become_the_processors_amount_text() -> None:
    answer = money.loads(coinspaid_doc.DEPOSIT_EXCHANGE_CALLBACK)
    answer["currency_sent"]["amount"] = 1
    answer["currency_received"]["amount"] = Decimal("84.1707")
    answer["transactions"][0]["confirmations"] = 2
    body = money.loads(reconcile.news_body(answer))
    assert problems(body) == []
    assert body["currency_sent"]["amount"] == "1.00000000"
    assert body["currency_received"]["amount"] == "84.17070000"
    assert body["transactions"][0]["confirmations"] == "2"


@pytest.mark.parametrize("status", ["not_confirmed", "confirmed", "cancelled"])
def test_reconciled_deposit_news_reaches_the_shop_in_the_processors_types(
        app: Flask, live_server: LiveServer, merchant: Merchant, status: str) -> None:
    app.config["RECONCILE_AFTER"] = 600
    app.config["CLOCK"] = the_clock = Clock()
    address, _page = take_address(app, "customer-1")
    pay_lost(live_server.url, address, status)
    the_clock.advance(timedelta(seconds=601))
    with app.app_context():
        assert reconcile.run_due() == 1
        [told] = db.session().scalars(select(Delivery)).all()
    assert json.loads(told.body)["status"] == status
    assert problems(told.body) == []
