"""What the invoice page promises about money that does not match the invoice, checked against
the processor's facts (coinspaid-api.md §4.5): on an over- or underpayment the payment
processor emails the payer (`email_user`) instructions to get the money back; an underpaid
invoice fails; a good_until_expired invoice takes parts until its time runs out. Money after
the invoice failed is settled on the page, never by email.

So every phase where the processor may write names the address it writes to, in full, and
says who acts; no phase promises a refund that we make, or one that happens by itself. A
shop creates invoices over our API, payments go through the embedded sandbox, its signed
callbacks move the page; the page is read as a reader without JavaScript reads it, and its
poll beside it.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import time
from decimal import Decimal
from typing import Any

import requests
from flask import Flask
from kit.invoices import ORDER, TYPE_3, TestShop, advance_sandbox, pay, settle
from kit.live import LiveServer

from checkout import money
from checkout.web import forms

EMAIL = "buyer@example.com"
PARTS = {**TYPE_3, "type": "good_until_expired"}
# Promises the site never makes: it returns nothing by itself, and the processor returns
# nothing without the payer following its email.
FORBIDDEN = ("we will refund", "we refund", "is refunded", "will be refunded",
             "refunded automatically", "automatically refunded", "uses it only",
             "refund is needed", "refund is due")
# Phases where the processor may write to the payer, and what it does there.
PROCESSOR = "payment processor emails"


def create(shop: TestShop, payload: dict[str, Any] | None = None, **changes: Any) -> str:
    response = shop.create(payload or ORDER, **changes)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["url"])


def model(page: str) -> dict[str, Any]:
    return dict(requests.get(page + "/status", timeout=10).json())


def plain(markup: str) -> str:
    """Visible words, one space apart, without the marks that isolate an email's direction."""
    markup = re.sub(r"<(script|style)\b.*?</\1>", " ", markup, flags=re.S)
    words = html_lib.unescape(re.sub(r"<[^>]+>", " ", markup))
    return re.sub(r"\s+", " ", words.replace("\u2068", "").replace("\u2069", "")).strip()


def text_of(page: str) -> str:
    return plain(requests.get(page, timeout=10).text)


def field(page: str, name: str) -> str | None:
    """The text of the element `data-field=name`, or None when the page has none."""
    body = requests.get(page, timeout=10).text
    found = re.search(rf'<(\w+)[^>]*data-field="{name}"[^>]*>(.*?)</\1>', body, flags=re.S)
    return None if found is None else plain(found.group(2))


def labels_of(page: str) -> dict[str, str]:
    """The labels the page's script fills from each poll."""
    found = re.search(r"data-labels='([^']*)'", requests.get(page, timeout=10).text)
    assert found is not None
    return dict(json.loads(html_lib.unescape(found.group(1))))


def no_promise(text: str) -> None:
    for phrase in FORBIDDEN:
        assert phrase not in text.lower(), phrase


def names_no_email(text: str) -> None:
    assert "@" not in text and "email" not in text.lower(), text


def pick(page: str, currency: str = "BTC", **extra: str) -> requests.Response:
    body = requests.get(page, timeout=10).text
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', body)
    assert found, "the form carries its token"
    return requests.post(f"{page}/pick", data={"csrf_token": found.group(1),
                                               "currency": currency, **extra},
                         allow_redirects=False, timeout=30)


def pay_now(live: LiveServer, page: str, amount: Decimal | str,
            status: str = "confirmed") -> None:
    pay(live.url, model(page)["address"], money.plain(Decimal(amount)), status)


# ---------------------------------------------------------------- before the money


def test_before_paying_the_page_says_what_too_much_or_too_little_does_and_to_which_email(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = create(shop)  # the shop gave the payer's email; no currency yet
    assert model(page)["phase"] == "choose"
    note = field(page, "over-under-note") or ""
    assert EMAIL in note, "said before the customer even picks a currency"

    assert pick(page).status_code == 303
    seen = model(page)
    assert seen["phase"] == "waiting"
    # The poll and the page name the same address: the one the processor writes to.
    assert seen["invoice"]["refund_email"] == EMAIL
    note = field(page, "over-under-note") or ""
    assert note.count(EMAIL) == 2 and note.count(PROCESSOR) == 2
    assert "If you send more than asked, the payment goes through" in note
    assert "get the difference back" in note
    assert "If you send less, the payment fails" in note and "get back what you sent" in note
    text = text_of(page)
    no_promise(text)
    assert "Send the exact amount in one payment before the time runs out." in text

    # A payment on its way may be too much or too little: the same words stay.
    pay_now(live_server, page, seen["amount"], "not_confirmed")
    settle(app)
    assert model(page)["phase"] == "confirming"
    assert EMAIL in (field(page, "over-under-note") or "")


def test_an_invoice_paid_in_parts_says_the_time_decides_a_shortfall(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = create(shop, PARTS)
    seen = model(page)
    assert (seen["phase"], seen["invoice"]["type"]) == ("waiting", "good_until_expired")
    note = field(page, "over-under-note") or ""
    assert "If less than asked has arrived when the time runs out, the payment fails" in note
    assert "If you send less, the payment fails" not in note, "a part is no failure"
    assert note.count(EMAIL) == 2

    pay_now(live_server, page, money.ceil(Decimal(seen["amount"]) / 2, 8))
    settle(app)
    assert model(page)["phase"] == "partial"
    assert "when the time runs out" in (field(page, "over-under-note") or "")
    no_promise(text_of(page))


def test_the_email_step_says_who_writes_there_and_why(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = create(shop, TYPE_3, email_user=None)
    assert model(page)["phase"] == "email"
    assert "the payment processor needs it" in (field(page, "status-text") or "")
    hint = field(page, "email-hint") or ""
    assert "If you send more or less than asked, the payment processor emails" in hint
    assert "to this address" in hint
    no_promise(text_of(page))

    with app.app_context():
        form_token = forms.page_token(page.rsplit("/", 1)[1], "EmailForm")
    given = requests.post(f"{page}/email", data={"csrf_token": form_token,
                                                 "email": "new.buyer@example.org"},
                          allow_redirects=False, timeout=30)
    assert given.status_code == 303
    assert model(page)["invoice"]["refund_email"] == "new.buyer@example.org"
    # In full, as typed: a typo shows.
    assert (field(page, "over-under-note") or "").count("new.buyer@example.org") == 2


def test_a_missing_email_is_asked_for_with_the_reason(app: Flask, shop: TestShop) -> None:
    page = create(shop, email_user=None)
    refused = pick(page, email="")
    assert refused.status_code == 400
    error = plain(re.search(r'data-field="form-error">(.*?)</p>', refused.text, re.S)
                  .group(1))  # type: ignore[union-attr]
    assert "the payment processor needs it" in error
    no_promise(error)


def test_less_than_asked_on_its_way_is_not_called_enough(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    """The commonest shortfall (an exchange kept its withdrawal fee) is seen in the mempool
    first: the page must not say that nothing more is needed, nor ask for more (whether
    more would count is not the processor's documented behaviour); it says what follows."""
    page = create(shop, TYPE_3)
    asked = Decimal(model(page)["amount"])
    short = money.ceil(asked * Decimal("0.9"), 8)
    pay_now(live_server, page, short, "not_confirmed")
    settle(app)
    assert model(page)["phase"] == "short"
    status = field(page, "status-text") or ""
    assert f"Your payment of {money.plain(short)} BTC is on its way" in status
    assert f"less than the {money.plain(asked)} BTC asked" in status
    assert f"If no more arrives, this payment fails and the {PROCESSOR} {EMAIL}" in status
    assert "Nothing more needs to be sent" not in status
    no_promise(text_of(page))
    assert {"{paid}", "{amount}", "{email}"} <= set(re.findall(r"\{\w+\}",
                                                               labels_of(page)["short"]))


# ---------------------------------------------------------------- after the money


def test_an_overpayment_says_the_processor_emails_the_given_address(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = create(shop, TYPE_3)
    asked = Decimal(model(page)["amount"])
    pay_now(live_server, page, asked + Decimal("0.0002"))
    settle(app)
    seen = model(page)
    assert seen["phase"] == "overpaid"
    status = field(page, "status-text") or ""
    assert f"more than asked: the {PROCESSOR} {EMAIL} instructions to get the difference" \
        in status
    assert f"{money.plain(Decimal('0.0002'))} BTC" in status
    note = field(page, "refund-note") or ""
    assert EMAIL in note and "not sent back through this page" in note
    assert "contact Shop" in note
    assert field(page, "over-under-note") is None, "before-the-money words are gone"
    no_promise(text_of(page))
    assert seen["invoice"]["refund_email"] == EMAIL
    # The script fills the same label from the poll: the label waits for this address.
    assert "{email}" in labels_of(page)["overpaid"]


def test_an_underpayment_says_it_failed_and_who_returns_the_money_where(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = create(shop, TYPE_3)
    pay_now(live_server, page, money.ceil(Decimal(model(page)["amount"]) / 2, 8))
    settle(app)
    seen = model(page)
    assert seen["phase"] == "underpaid"
    status = field(page, "status-text") or ""
    assert "Less than asked arrived, so this payment failed." in status
    assert f"The {PROCESSOR} {EMAIL} instructions to get back what you sent." in status
    note = field(page, "refund-note") or ""
    assert EMAIL in note and "not sent back through this page" in note
    no_promise(text_of(page))
    assert "{email}" in labels_of(page)["underpaid"]


def test_an_exact_payment_names_no_return(app: Flask, live_server: LiveServer,
                                          shop: TestShop) -> None:
    page = create(shop, TYPE_3)
    pay_now(live_server, page, model(page)["amount"])
    settle(app)
    assert model(page)["phase"] == "paid"
    assert field(page, "refund-note") is None and field(page, "over-under-note") is None
    assert "@example.com" not in text_of(page)


# ---------------------------------------------------------------- after the time


def test_expired_and_late_money_is_the_pages_to_settle_never_an_email(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = create(shop, TYPE_3)
    amount = model(page)["amount"]
    address = model(page)["address"]
    advance_sandbox(live_server.url, 16 * 60)
    settle(app)
    assert model(page)["phase"] == "expired"
    names_no_email(field(page, "status-text") or "")
    assert "it will show on this page when it arrives" in (field(page, "status-text") or "")
    assert field(page, "over-under-note") is None and field(page, "refund-note") is None
    assert "@example.com" not in text_of(page)

    # Seen, not confirmed yet: the merchant's policy has not judged it (its words are
    # tests/services/test_late_policy.py's), so nothing is decided and nothing promised.
    pay(live_server.url, address, amount, "not_confirmed")
    settle(app)
    assert model(page)["phase"] == "late"
    status = field(page, "status-text") or ""
    assert f"Your payment of {amount} BTC arrived after this invoice had closed." == status
    following = field(page, "late-next") or ""
    assert "This money is not lost: this page shows it" in following
    assert "what you can do" in following
    for words in (status, following):
        names_no_email(words)
        no_promise(words)
        # Whether it is kept for the order or returned is not decided yet: neither is said.
        assert "refund" not in words.lower() and "returned" not in words.lower()
        assert "not applied" not in words
    assert field(page, "refund-note") is None
    assert "@example.com" not in text_of(page)


def test_late_money_after_an_underpayment_keeps_the_processors_part_apart(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    # The sandbox's rates move each whole minute: a minute turning between the quote and the
    # late money could make the price's own amount worth a little less than the price, and
    # the policy would then ask for the difference. Its clock stands still here.
    now = int(time.time())
    app.config["SANDBOX_BASE_CLOCK"] = lambda: now
    page = create(shop, TYPE_3)
    asked = Decimal(model(page)["amount"])
    short = money.ceil(asked / 2, 8)
    pay_now(live_server, page, short)
    settle(app)
    assert model(page)["phase"] == "underpaid"
    pay_now(live_server, page, asked)
    settle(app)
    seen = model(page)
    assert seen["phase"] == "late"
    # The late money is its own amount, not the sum with what the processor returns: it
    # covers the price alone, so the merchant's policy accepts it.
    assert Decimal(seen["late"]["amount"]) == asked
    status = field(page, "status-text") or ""
    assert status == "Your late payment was accepted: the order is paid."
    names_no_email(status)
    note = field(page, "refund-note") or ""
    assert "less than asked" in note and f"{PROCESSOR} {EMAIL}" in note
    no_promise(text_of(page))


def test_a_payment_confirmed_too_late_names_no_email(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    app.config["SANDBOX_CONFIRM_SECONDS"] = 3 * 24 * 3600  # a chain that never confirms
    page = create(shop, TYPE_3)
    pay_now(live_server, page, model(page)["amount"], "not_confirmed")
    for _ in range(3):
        advance_sandbox(live_server.url, 9 * 3600)
        settle(app)
    assert model(page)["phase"] == "timeout"
    # Its facts say nothing of an email then: no address, not even part of one.
    assert "@example.com" not in text_of(page)
