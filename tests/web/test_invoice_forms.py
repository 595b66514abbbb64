"""The invoice page's forms (currency picker, email), driven over real HTTP like a browser
without JavaScript: tokens bound to the page, only the currencies the page offers, the
customer's email checked before it reaches the processor, and nothing made twice."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from flask import Flask
from kit.invoices import ORDER, TestShop
from kit.live import LiveServer
from sqlalchemy import func, select

from checkout import db
from checkout.models import Invoice, InvoiceQuote, Merchant


def new_page(shop: TestShop, **changes: Any) -> str:
    response = shop.create(ORDER, **changes)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["url"])


def token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "the form carries its token"
    return match.group(1)


def quotes(app: Flask) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(InvoiceQuote)) or 0


def the_invoice(app: Flask) -> Invoice:
    with app.app_context():
        invoice = db.session().scalar(select(Invoice))
        assert invoice is not None
        return invoice


def post(page: str, form: dict[str, str], action: str = "pick") -> requests.Response:
    return requests.post(f"{page}/{action}", data=form, allow_redirects=False, timeout=30)


def test_the_picker_offers_currencies_with_their_cost_and_a_pick_quotes_one(
        app: Flask, shop: TestShop) -> None:
    page = new_page(shop)
    html = requests.get(page, timeout=30).text
    assert 'value="BTC"' in html and "about 0.000" in html
    response = post(page, {"csrf_token": token(html), "currency": "BTC"})
    assert response.status_code == 303 and response.headers["Location"].endswith(
        page.rsplit("/", 1)[1])
    model = requests.get(page + "/status", timeout=30).json()
    assert (model["phase"], model["currency"], model["pay_now"]) == ("waiting", "BTC", True)
    assert model["amount_due"] == model["amount"] and model["address"]
    assert quotes(app) == 1


@pytest.mark.parametrize("form", [
    {},  # nothing at all
    {"currency": "BTC"},  # no token
    {"currency": "BTC", "csrf_token": "0" * 64},
    {"currency": "BTC", "csrf_token": "x" * 10_000},
])
def test_a_pick_without_the_pages_token_makes_nothing(
        app: Flask, shop: TestShop, form: dict[str, str]) -> None:
    page = new_page(shop)
    response = post(page, form)
    assert response.status_code == 400
    assert "expired" in response.text or "Please" in response.text
    assert quotes(app) == 0


@pytest.mark.parametrize("currency", ["NOPE", "", "TBTC", "btc\x00", "B" * 5000, "EUR"])
def test_a_currency_the_page_does_not_offer_is_refused(
        app: Flask, shop: TestShop, currency: str) -> None:
    page = new_page(shop)
    html = requests.get(page, timeout=30).text
    response = post(page, {"csrf_token": token(html), "currency": currency})
    assert response.status_code == 400
    assert quotes(app) == 0


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b", "a b@example.com",
                                   "x" * 300 + "@example.com", "buyer@exa\x00mple.com"])
def test_the_email_the_processor_needs_is_checked_first(
        app: Flask, shop: TestShop, email: str) -> None:
    page = new_page(shop, email_user=None)
    html = requests.get(page, timeout=30).text
    assert 'type="email"' in html
    response = post(page, {"csrf_token": token(html), "currency": "BTC", "email": email})
    assert response.status_code == 400
    assert quotes(app) == 0 and the_invoice(app).email_user is None


def test_with_an_email_the_pick_goes_through_and_keeps_it(app: Flask, shop: TestShop) -> None:
    page = new_page(shop, email_user=None)
    html = requests.get(page, timeout=30).text
    response = post(page, {"csrf_token": token(html), "currency": "BTC",
                           "email": " buyer@example.com "})
    assert response.status_code == 303
    assert the_invoice(app).email_user == "buyer@example.com"


def test_the_same_pick_sent_twice_keeps_one_quote(app: Flask, shop: TestShop) -> None:
    page = new_page(shop)
    form = {"csrf_token": token(requests.get(page, timeout=30).text), "currency": "BTC"}
    assert post(page, form).status_code == 303
    assert post(page, form).status_code == 303
    assert quotes(app) == 1


def test_a_type_3_invoice_without_email_asks_for_it_before_the_address(
        app: Flask, shop: TestShop) -> None:
    page = new_page(shop, timer=True, sender_currency="BTC", email_user=None)
    model = requests.get(page + "/status", timeout=30).json()
    assert (model["phase"], model["pay_now"], model["form"]) == ("email", False, "email")
    html = requests.get(page, timeout=30).text
    assert model["address"] and model["address"] not in html
    bad = post(page, {"csrf_token": token(html), "email": "nope"}, action="email")
    assert bad.status_code == 400
    good = post(page, {"csrf_token": token(html), "email": "buyer@example.com"}, action="email")
    assert good.status_code == 303
    assert requests.get(page + "/status", timeout=30).json()["phase"] == "waiting"


def test_a_deposit_page_has_no_invoice_forms(app: Flask, live_server: LiveServer,
                                             merchant: Merchant) -> None:
    assert requests.post(f"{live_server.url}/p/{'a' * 32}/pick", data={},
                         timeout=30).status_code == 404
