"""What the invoice page says about money, checked against what happened: a shop creates
invoices over our API, the payer pays at the embedded sandbox, the sandbox's signed callbacks
move the page; the page (HTML without JavaScript, and its model) must say what arrived,
what was due, what happens to the difference, and never more than we know.
"""

from __future__ import annotations

import html as html_lib
import re
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from flask import Flask
from kit.invoices import ORDER, TYPE_3, TestShop, advance_sandbox, pay, settle
from kit.live import LiveServer
from kit.site import MERCHANT_SECRET
from sqlalchemy import select

from checkout import db, money, terminal
from checkout.models import Invoice, InvoiceQuote
from checkout.web import forms

# How the page shows buyer@example.com: in full, isolated (FSI…PDI) from the sentence's
# direction.
SHOWN = "\u2068buyer@example.com\u2069"


def create(shop: TestShop, payload: dict[str, Any] | None = None, **changes: Any) -> str:
    response = shop.create(payload or ORDER, **changes)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["url"])


def model(page: str) -> dict[str, Any]:
    return dict(requests.get(page + "/status", timeout=10).json())


def text_of(page: str) -> str:
    """The page as a reader without JavaScript gets it: its visible words, one space apart."""
    body = requests.get(page, timeout=10).text
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", body)))


def field(page: str, name: str) -> str | None:
    """The text of the element `data-field=name`, or None when the page has none."""
    body = requests.get(page, timeout=10).text
    found = re.search(rf'<(\w+)[^>]*data-field="{name}"[^>]*>(.*?)</\1>', body, flags=re.S)
    if found is None:
        return None
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", found.group(2)))).strip()


def token(page: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      requests.get(page, timeout=10).text)
    assert match, "the form carries its token"
    return match.group(1)


def pick(page: str, currency: str = "BTC", **extra: str) -> requests.Response:
    return requests.post(f"{page}/pick", data={"csrf_token": token(page), "currency": currency,
                                               **extra}, allow_redirects=False, timeout=30)


def confirm(app: Flask, live: LiveServer) -> None:
    advance_sandbox(live.url, 60)
    settle(app)
    settle(app)


def email_of(app: Flask) -> str | None:
    with app.app_context():
        invoice = db.session().scalar(select(Invoice))
        assert invoice is not None
        return invoice.email_user


# ---------------------------------------------------------------- 1. overpayment


def test_an_overpaid_invoice_says_what_arrived_what_was_due_and_where_the_refund_goes(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = create(shop, TYPE_3)
    asked = Decimal(model(page)["amount"])
    sent = asked + Decimal("0.00041298")
    pay(live_server.url, model(page)["address"], money.plain(sent), "confirmed")
    settle(app)

    seen = model(page)
    assert seen["phase"] == "overpaid"
    arrived = sum(Decimal(tx["amount"]) for tx in seen["transactions"])
    # The headline never contradicts the list of transactions.
    assert Decimal(seen["amount_paid"]) == arrived == sent
    assert Decimal(seen["amount_over"]) == sent - asked
    # The difference in the invoice's currency, at the rate the quote fixed.
    worth = Decimal(ORDER["amount"]) * (sent - asked) / asked
    assert abs(Decimal(seen["invoice"]["over_fiat"]) - worth) <= Decimal("0.005")

    text = text_of(page)
    assert field(page, "paid-amount") == money.plain(sent)
    assert f"Amount due {money.plain(asked)} BTC" in text
    over_fiat = seen["invoice"]["over_fiat"]
    assert f"More than due {money.plain(sent - asked)} BTC about {over_fiat} EUR" in text
    refund = field(page, "refund-note") or ""
    assert "not sent back through this page" in refund
    # Which address the instructions go to, in full: the payer can see a typo.
    assert SHOWN in refund
    assert "get the difference back" in (field(page, "status-text") or "")
    assert "<" not in refund, "the address is markup of the page, not text"


def test_an_exact_payment_is_paid_not_overpaid(app: Flask, live_server: LiveServer,
                                               shop: TestShop) -> None:
    page = create(shop, TYPE_3)
    pay(live_server.url, model(page)["address"], model(page)["amount"], "confirmed")
    settle(app)
    seen = model(page)
    assert (seen["phase"], seen["amount_paid"], seen["amount_over"]) == (
        "paid", seen["amount"], None)
    assert seen["receipt"]["fiat_amount"] == "35.00"


# ---------------------------------------------------------------- 2. nothing paid, so far


def test_the_fresh_quote_says_what_we_know_and_warns_before_a_new_address(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = create(shop)
    assert pick(page).status_code == 303
    first = model(page)["address"]
    advance_sandbox(live_server.url, 16 * 60)
    settle(app)
    assert model(page)["phase"] == "requote"
    status = field(page, "status-text") or ""
    assert "no payment has reached us yet" in status and "nothing was paid" not in status
    body = requests.get(page, timeout=10).text
    warning = body.index('data-field="requote-warning"')
    assert warning < body.index("Get a fresh quote</button>"), "the warning comes first"
    assert "paying both means paying twice" in (field(page, "requote-warning") or "")

    assert pick(page).status_code == 303
    fresh = model(page)
    assert fresh["phase"] == "waiting" and fresh["address"] != first
    assert fresh["invoice"]["earlier_address"] is True
    assert "new address" in (field(page, "new-address-warning") or "")


def test_the_first_quote_has_no_new_address_warning(app: Flask, shop: TestShop) -> None:
    page = create(shop)
    assert pick(page).status_code == 303
    assert model(page)["invoice"]["earlier_address"] is False
    assert field(page, "new-address-warning") is None


def test_an_expired_invoice_says_no_payment_reached_us_not_that_none_was_made(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = create(shop, TYPE_3)
    advance_sandbox(live_server.url, 16 * 60)
    settle(app)
    assert model(page)["phase"] == "expired"
    status = field(page, "status-text") or ""
    assert "before any payment reached us" in status and "nothing was paid" not in status
    assert "do not send it again" in status
    # Money after the time is settled on the page, not by the processor's email.
    assert field(page, "over-under-note") is None and "@" not in status


def test_a_payment_the_network_confirmed_too_late_promises_only_what_is_known(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    """The processor fails an invoice whose payment stayed unconfirmed too long; its facts say
    nothing of a refund then, so the page sends the customer to the shop, not to an email."""
    app.config["SANDBOX_CONFIRM_SECONDS"] = 3 * 24 * 3600  # a chain that never confirms
    page = create(shop, TYPE_3)
    pay(live_server.url, model(page)["address"], model(page)["amount_due"], "not_confirmed")
    for _ in range(3):
        advance_sandbox(live_server.url, 9 * 3600)
        settle(app)
    assert model(page)["phase"] == "timeout"
    status = field(page, "status-text") or ""
    assert "contact Shop with its transaction ID" in status.replace("Contact", "contact")
    assert "refund" not in status.lower()
    assert field(page, "refund-note") is None


# ---------------------------------------------------------------- 4. the clock from screen one


def seconds(shown: str) -> int:
    minutes, secs = shown.split(":")
    return int(minutes) * 60 + int(secs)


def test_the_picker_of_a_timed_invoice_shows_the_time_left_and_never_reloads_itself(
        app: Flask, shop: TestShop) -> None:
    page = create(shop, timer=True)
    body = requests.get(page, timeout=10).text
    assert model(page)["form"] == "choose"
    countdown = re.search(r'<p class="countdown[^"]*" data-field="countdown"( hidden)?>', body)
    assert countdown is not None and countdown.group(1) is None, "the time left is shown"
    shown = re.search(r'data-field="countdown-time" dir="ltr">(\d+:\d\d)<', body)
    assert shown is not None
    assert abs(seconds(shown.group(1)) - model(page)["seconds_left"]) <= 5
    assert 14 * 60 < seconds(shown.group(1)) <= 15 * 60
    # Without JavaScript the picker is not refreshed under the customer's hands.
    assert 'http-equiv="refresh"' not in body


def test_the_email_step_shows_the_time_left_of_its_quote(app: Flask, shop: TestShop) -> None:
    page = create(shop, TYPE_3, email_user=None)
    seen = model(page)
    assert seen["form"] == "email" and seen["seconds_left"] is not None
    body = requests.get(page, timeout=10).text
    shown = re.search(r'data-field="countdown-time" dir="ltr">(\d+:\d\d)<', body)
    assert shown is not None and 'data-field="countdown" hidden' not in body
    assert abs(seconds(shown.group(1)) - seen["seconds_left"]) <= 5
    assert 'http-equiv="refresh"' not in body


def test_an_invoice_without_a_timer_shows_no_countdown(app: Flask, shop: TestShop) -> None:
    page = create(shop)
    assert model(page)["seconds_left"] is None
    assert 'data-field="countdown" hidden' in requests.get(page, timeout=10).text


# ---------------------------------------------------------------- 6. a way back, a readable rate


def test_a_waiting_invoice_has_a_quiet_way_back_to_the_shop(app: Flask, shop: TestShop) -> None:
    page = create(shop)
    for _step in ("choose", "waiting"):
        body = requests.get(page, timeout=10).text
        back = re.search(r'<p class="quiet-back" data-field="quiet-back">\s*<a href="([^"]+)" '
                         r'target="_top"', body)
        assert back is not None, "a way back before anything is final"
        # The shop's own address, as given: no outcome appended while nothing is decided.
        assert html_lib.unescape(back.group(1)) == ORDER["url_failed"]
        pick(page)


def test_the_receipt_rate_is_readable_and_the_amounts_stay_exact(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = create(shop, TYPE_3)
    asked = model(page)["amount"]
    pay(live_server.url, model(page)["address"], asked, "confirmed")
    settle(app)
    receipt = requests.get(page + "/receipt", timeout=10).text
    rate = re.search(r"1 BTC = ([0-9,.]+) EUR", receipt)
    assert rate is not None
    exact = Decimal(ORDER["amount"]) / Decimal(asked)
    shown = Decimal(rate.group(1).replace(",", ""))
    assert len(rate.group(1).rpartition(".")[2]) == 2, rate.group(1)
    assert abs(shown - exact) <= Decimal("0.005")
    assert f"{asked} BTC" in receipt  # the amount itself keeps every digit


@pytest.mark.parametrize(("rate", "places", "shown"), [
    ("59743.82716049", 2, "59743.83"),
    ("48715.61680000", 2, "48715.62"),
    ("1.00031234", 2, "1.00031"),
    ("0.0000123456789", 2, "0.0000123457"),
    ("9500000.123", 0, "9500000"),
    ("2.5", 2, "2.50"),
])
def test_a_rate_is_shown_to_six_significant_digits_and_the_currencys_places(
        rate: str, places: int, shown: str) -> None:
    assert format(money.readable_rate(Decimal(rate), places), "f") == shown


# ---------------------------------------------------------------- 17. the email, once paid


def give_email(app: Flask, page: str, email: str) -> requests.Response:
    """The email step's form, sent with its token: the one anybody who saw the page at that
    step keeps (it is bound to the page, not to a moment)."""
    with app.app_context():
        form_token = forms.page_token(page.rsplit("/", 1)[1], "EmailForm")
    return requests.post(f"{page}/email", data={"csrf_token": form_token, "email": email},
                         allow_redirects=False, timeout=30)


def test_once_a_payment_is_seen_the_email_cannot_be_replaced(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = create(shop, email_user=None)
    assert pick(page, email="first@example.com").status_code == 303
    # Before any payment the customer's own email step may still be used.
    assert give_email(app, page, "buyer@example.com").status_code == 303
    assert email_of(app) == "buyer@example.com"

    pay(live_server.url, model(page)["address"], model(page)["amount"], "not_confirmed")
    settle(app)
    assert model(page)["invoice"]["email_fixed"] is True
    refused = give_email(app, page, "thief@example.com")
    assert refused.status_code == 409
    assert "can no longer be changed" in refused.text
    assert email_of(app) == "buyer@example.com"
    # The page offers no email form, and says where the instructions go.
    body = requests.get(page, timeout=10).text
    assert 'type="email"' not in body
    assert SHOWN in (field(page, "over-under-note") or "")


# ---------------------------------------------------------------- 5. the processor's minimum


def deposit_link(base: str, **fields: Any) -> str:
    payload = {"client_id": 11, "currency": "LTC", "foreign_id": "order-5", "amount": "0.05",
               "convert_to": "EUR", "url_back": "https://shop.example/back", **fields}
    payload = {k: v for k, v in payload.items() if v is not None}
    opened = requests.get(
        f"{base}/terminal?{urlencode(terminal.encode_link(payload, MERCHANT_SECRET))}",
        allow_redirects=False, timeout=30)
    assert opened.status_code == 303, opened.text
    return base + opened.headers["Location"]


def test_a_rest_below_the_minimum_says_how_much_more_than_the_rest_is_asked(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = deposit_link(live_server.url)
    pay(live_server.url, model(page)["address"], "0.045", "confirmed")
    settle(app)
    seen = model(page)
    rest, due = Decimal(seen["rest_below_minimum"]), Decimal(seen["amount_due"])
    assert (rest, due) == (Decimal("0.005"), Decimal(seen["minimum"]))
    assert Decimal(seen["minimum_extra"]) == due - rest
    status = field(page, "status-text") or ""
    assert "remaining" not in status, "the rest is not what is asked"
    assert f"send {money.plain(due)} LTC more" in status
    note = field(page, "minimum-note") or ""
    assert f"{money.plain(due - rest)} LTC" in note
    assert f"about {seen['fiat']['extra']} EUR" in note and seen["fiat"]["extra"] != "0.00"


def test_a_payment_refused_as_too_small_promises_no_refund(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = deposit_link(live_server.url, amount=None, foreign_id="customer-9")
    pay(live_server.url, model(page)["address"], "0.005", "confirmed")
    settle(app)
    assert model(page)["phase"] == "below_minimum"
    status = field(page, "status-text") or ""
    assert "not sent back automatically" in status and "contact Shop" in status
    assert "refund" not in status.lower()


def test_a_payment_to_an_earlier_address_of_the_order_is_shown(
        app: Flask, live_server: LiveServer, shop: TestShop) -> None:
    page = create(shop)
    assert pick(page).status_code == 303
    first = model(page)["address"]
    # The customer paid the first address in the moment the quote was replaced: the old
    # quote is still open at the processor (its cancel came too late), so its money arrives.
    with app.app_context(), db.transaction() as s:
        invoice = s.scalar(select(Invoice))
        assert invoice is not None
        old = s.scalar(select(InvoiceQuote).where(InvoiceQuote.current.is_(True)))
        assert old is not None
        old.current = False
        s.add(InvoiceQuote(invoice_id=invoice.id, merchant_id=11, foreign_id="x-1",
                           sender_currency="LTC", status="pending", amount_paid="0",
                           current=True))
    pay(live_server.url, first, "0.0001", "confirmed")
    settle(app)
    [shown] = model(page)["transactions"]
    assert (shown["amount"], shown["refusal"]) == ("0.0001", "earlier_address")
    listed = field(page, "transactions") or ""
    assert "0.0001 BTC · arrived at an earlier address of this order: not counted" in listed
