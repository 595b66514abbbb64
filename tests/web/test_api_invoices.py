"""The drop-in `invoices/create` and `invoices/{foreign_id}/cancel/`, as a shop's client sees it.

Every request goes over real HTTP to a live server, signed by the test shop's own code; every
answer, success or error, is the processor's shape (coinspaid-api.md §1, §2.11, §2.12).
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask
from kit.counters import count
from kit.invoices import DATA_KEYS, ORDER, TYPE_3, TestShop, shop_signature
from kit.live import LiveServer
from sqlalchemy import select

from checkout import db
from checkout.models import Invoice, InvoiceQuote, Merchant, Page

CREATE = "invoices/create"


@pytest.fixture
def shop(live_server: LiveServer, merchant: Merchant) -> TestShop:
    return TestShop(live_server.url)


# ---------------------------------------------------------------------------------------------
# The three types


def test_type_1_waits_for_the_customer_to_pick_a_currency(
        app: Flask, shop: TestShop, live_server: LiveServer) -> None:
    answer = shop.create()
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    data = answer.json()["data"]
    assert list(data) == DATA_KEYS
    assert (data["status"], data["currency"], data["amount"], data["title"]) == (
        "created", "EUR", "35.00000000", "Order 7")
    assert data["foreign_id"] == "order-7" and isinstance(data["id"], int)
    assert [data[k] for k in ("address", "sender_currency", "sender_amount", "fixed_at",
                              "release_at", "seconds_left", "end_user_reference")] == [None] * 7
    with app.app_context():
        invoice = db.session().get(Invoice, data["id"])
        assert invoice is not None
        assert data["url"] == f"{live_server.url}/p/{invoice.page_id}"
        page = db.session().get(Page, invoice.page_id)
        assert page is not None and (page.kind, page.status, page.foreign_id) == (
            "invoice", "created", "order-7")
    # Nothing at the processor until the customer picks.
    assert count(app, InvoiceQuote) == 0


def test_type_2_starts_the_shops_fifteen_minute_timer(shop: TestShop) -> None:
    data = shop.create(timer=True).json()["data"]
    assert data["status"] == "pending" and data["address"] is None
    assert data["release_at"] - data["fixed_at"] == 900
    assert 895 <= data["seconds_left"] <= 900


def test_type_3_is_quoted_at_the_processor_at_once(app: Flask, shop: TestShop) -> None:
    answer = shop.create(TYPE_3, end_user_reference="client-5")
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert list(data) == DATA_KEYS
    assert (data["status"], data["sender_currency"], data["end_user_reference"]) == (
        "pending", "BTC", "client-5")
    assert data["address"] and Decimal(data["sender_amount"]) > 0
    assert len(data["sender_amount"].split(".")[1]) == 8
    assert 0 < data["seconds_left"] <= 900 and data["release_at"] > data["fixed_at"]
    with app.app_context():
        [quote] = db.session().scalars(select(InvoiceQuote)).all()
        assert (quote.current, quote.status, quote.address) == (True, "pending", data["address"])
        # The shop never sees the processor's invoice id or our quote's foreign_id.
        assert quote.foreign_id not in answer.text
        assert quote.processor_id is not None
        page = db.session().get(Page, quote.invoice.page_id)
        assert page is not None
        assert (page.currency, page.amount, page.address) == (
            "BTC", quote.sender_amount, data["address"])


def test_a_type_3_invoice_the_processor_finds_too_small_is_its_400_and_leaves_nothing(
        app: Flask, shop: TestShop) -> None:
    answer = shop.create(TYPE_3, amount="1")
    assert answer.status_code == 400
    assert answer.json() == {"errors": {
        "amount": "The amount is too small. The minimum amount is 10.00 EUR."}}
    assert count(app, Invoice) == count(app, Page) == count(app, InvoiceQuote) == 0
    assert shop.create(TYPE_3).status_code == 200  # the foreign_id is free again


def test_the_amount_may_be_a_json_number_or_a_string(shop: TestShop) -> None:
    assert shop.create(amount="106.75", foreign_id="a").json()["data"]["amount"] == "106.75000000"
    body = (b'{"timer":false,"title":"T","currency":"EUR","amount":106.75,"foreign_id":"b",'
            b'"url_success":"https://shop.example/ok","url_failed":"https://shop.example/no"}')
    assert shop.send(CREATE, body).json()["data"]["amount"] == "106.75000000"


def test_a_numeric_foreign_id_is_taken_as_its_digits(shop: TestShop) -> None:
    assert shop.create(foreign_id=196).json()["data"]["foreign_id"] == "196"


# ---------------------------------------------------------------------------------------------
# Authentication and content


def test_the_four_refusals_of_authentication(shop: TestShop) -> None:
    body = json.dumps(ORDER).encode()
    plain = {"Content-Type": "application/json"}
    cases = {
        "required_header_key": {**plain, "X-Processing-Signature": shop_signature(body)},
        "bad_header_key": {**plain, "X-Processing-Key": "someone-else",
                           "X-Processing-Signature": shop_signature(body)},
        "required_header_signature": {**plain, "X-Processing-Key": shop.key},
        "bad_header_signature": {**plain, "X-Processing-Key": shop.key,
                                 "X-Processing-Signature": shop_signature(body, "wrong")},
    }
    errors = {"required_header_key": "No key header", "bad_header_key": "Bad key header",
              "required_header_signature": "No signature header",
              "bad_header_signature": "Bad signature header"}
    for code, headers in cases.items():
        answer = shop.send(CREATE, body, headers=headers)
        assert answer.status_code == 403, code
        assert answer.json() == {"error": errors[code], "code": code}


def test_a_changed_body_under_the_original_signature_is_refused(shop: TestShop) -> None:
    body = json.dumps(ORDER).encode()
    headers = {"Content-Type": "application/json", "X-Processing-Key": shop.key,
               "X-Processing-Signature": shop_signature(body)}
    answer = shop.send(CREATE, body.replace(b"35", b"3"), headers=headers)
    assert answer.json()["code"] == "bad_header_signature"


@pytest.mark.parametrize("body", [b"not json", b'"a string"', b"42", b"{", b"",
                                  b'{"amount": NaN}', b"[" * 30_000 + b"]" * 30_000,
                                  b"\xff\xfe"],
                         ids=["text", "string", "number", "truncated", "empty", "nan",
                              "deep", "binary"])
def test_a_body_that_is_no_json_object_is_bad_content_format(shop: TestShop, body: bytes) -> None:
    answer = shop.send(CREATE, body)
    assert answer.status_code == 400
    assert answer.json() == {"error": "Bad content format", "code": "bad_content_format"}


def test_a_wrong_content_type_is_bad_content_format(shop: TestShop) -> None:
    body = json.dumps(ORDER).encode()
    answer = shop.send(CREATE, body, headers={
        "Content-Type": "text/plain", "X-Processing-Key": shop.key,
        "X-Processing-Signature": shop_signature(body)})
    assert answer.json()["code"] == "bad_content_format"


def test_a_megabyte_body_is_refused_unread(app: Flask, shop: TestShop) -> None:
    body = json.dumps({**ORDER, "description": "x" * 1_000_000}).encode()
    answer = shop.send(CREATE, body)
    assert answer.status_code == 413
    assert answer.json() == {"error": "Request Entity Too Large",
                             "code": "request_entity_too_large"}
    assert count(app, Invoice) == 0


@pytest.mark.parametrize("body", [b"[]", b"null", b"{}"])
def test_an_empty_array_or_null_means_no_parameters(shop: TestShop, body: bytes) -> None:
    answer = shop.send(CREATE, body)
    assert answer.status_code == 400
    assert answer.json()["errors"]["title"] == "The title field is required."


def test_unknown_paths_and_methods_answer_as_the_processor_does(shop: TestShop) -> None:
    for path in ("invoices/list", "nothing", "invoices/create/extra"):
        answer = shop.send(path, b"{}")
        assert answer.status_code == 403, path
        assert answer.json() == {"error": "No key header", "code": "required_header_key"}
    answer = requests.get(f"{shop.base_url}/invoices/create", timeout=30)
    assert answer.status_code == 403 and answer.headers["Content-Type"] == "application/json"


# ---------------------------------------------------------------------------------------------
# Validation, field by field, in the processor's words


REQUIRED = ["timer", "title", "currency", "amount", "foreign_id", "url_success", "url_failed"]


def test_every_missing_field_is_named_at_once(shop: TestShop) -> None:
    answer = shop.send(CREATE, b"{}")
    assert answer.status_code == 400
    assert answer.json() == {"errors": {
        name: f"The {name.replace('_', ' ')} field is required." for name in REQUIRED}}


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"title": "x" * 51}, "title", "The title may not be greater than 50 characters."),
    ({"title": ""}, "title", "The title field is required."),
    ({"title": {"nested": "json"}}, "title", "The title must be a string."),
    ({"title": ["a"]}, "title", "The title must be a string."),
    ({"title": "a\u0000b"}, "title", "The title format is invalid."),
    ({"description": "x" * 1001}, "description",
     "The description may not be greater than 1000 characters."),
    ({"currency": "XYZ"}, "currency", "The selected currency is invalid."),
    ({"currency": 5}, "currency", "The selected currency is invalid."),
    ({"amount": "1.123456789"}, "amount", "The amount may not have more than 8 decimal places."),
    ({"amount": "abc"}, "amount", "The amount must be a number."),
    ({"amount": "1e3"}, "amount", "The amount must be a number."),
    ({"amount": "1,5"}, "amount", "The amount must be a number."),
    ({"amount": "١٢"}, "amount", "The amount must be a number."),
    ({"amount": True}, "amount", "The amount must be a number."),
    ({"amount": [1]}, "amount", "The amount must be a number."),
    ({"amount": "-5"}, "amount", "The amount must be at least 0."),
    ({"amount": -5}, "amount", "The amount must be at least 0."),
    ({"amount": "0"}, "amount", "The amount must be at least 0."),
    ({"amount": "1000000000000000"}, "amount",
     "The amount may not be greater than 999999999999999."),
    ({"foreign_id": "x" * 256}, "foreign_id",
     "The foreign id may not be greater than 255 characters."),
    ({"foreign_id": {"a": 1}}, "foreign_id", "The foreign id must be a string."),
    ({"url_success": "https://evil.example/ok"}, "url_success",
     "The url success format is invalid."),
    ({"url_failed": "https://shop.example.evil.example/"}, "url_failed",
     "The url failed format is invalid."),
    ({"url_success": "javascript:alert(1)"}, "url_success", "The url success format is invalid."),
    ({"url_failed": "https://user@shop.example/"}, "url_failed",
     "The url failed format is invalid."),
    ({"email_user": "not-an-email"}, "email_user", "The email user must be a valid email address."),
    ({"timer": "maybe"}, "timer", "The timer field must be true or false."),
    ({"type": "forever"}, "type", "The selected type is invalid."),
    ({"timer": True, "sender_currency": "EUR"}, "sender_currency",
     "The selected sender currency is invalid."),
])
def test_each_bad_field_gets_the_processors_message(
        app: Flask, shop: TestShop, changes: dict[str, Any], field: str, message: str) -> None:
    answer = shop.create(**changes)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"errors": {field: message}}
    assert count(app, Invoice) == 0


@pytest.mark.parametrize("raw_amount", [b"1e999999999", b"-1e999999999", b"1e-999999999",
                                        b"123456789012345678901234567890"])
def test_absurd_json_numbers_are_refused_without_arithmetic(
        shop: TestShop, raw_amount: bytes) -> None:
    body = json.dumps(ORDER).encode().replace(b'"amount": 35', b'"amount": ' + raw_amount)
    assert raw_amount in body
    answer = shop.send(CREATE, body)
    assert answer.status_code == 400
    assert set(answer.json()["errors"]) == {"amount"}


def test_a_repeated_key_counts_once_as_its_last_value_like_php(shop: TestShop) -> None:
    body = json.dumps(ORDER).encode().replace(b'"title": "Order 7"',
                                              b'"title": "first", "title": "Order 8"')
    assert shop.send(CREATE, body).json()["data"]["title"] == "Order 8"


def test_a_nul_in_the_foreign_id_is_refused_not_a_500(app: Flask, shop: TestShop) -> None:
    answer = shop.create(foreign_id="order\u00007")
    assert answer.status_code == 400 and "foreign_id" in answer.json()["errors"]


# ---------------------------------------------------------------------------------------------
# foreign_id is unique per merchant


def test_a_repeated_foreign_id_is_already_taken(app: Flask, shop: TestShop) -> None:
    assert shop.create().status_code == 200
    answer = shop.create(title="Again")
    assert answer.status_code == 400
    assert answer.json() == {"errors": {"foreign_id": "The foreign id has already been taken."}}
    assert count(app, Invoice) == 1


def test_two_identical_creates_at_once_make_one_invoice(app: Flask, shop: TestShop) -> None:
    start = threading.Barrier(4)
    answers: list[requests.Response] = []

    def create() -> None:
        start.wait()
        answers.append(shop.create())

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400]
    for answer in answers:
        if answer.status_code == 400:
            assert answer.json() == {"errors": {
                "foreign_id": "The foreign id has already been taken."}}
    assert count(app, Invoice) == count(app, Page) == 1


def test_another_merchant_may_use_the_same_foreign_id(
        app: Flask, shop: TestShop, live_server: LiveServer) -> None:
    from checkout import merchants

    with app.app_context():
        merchants.add(merchants.NewMerchant(client_id=12, name="Other", key="k-12",
                                            secret="s-12", return_hosts=("shop.example",)))
    assert shop.create().status_code == 200
    assert TestShop(live_server.url, "k-12", "s-12").create().status_code == 200


# ---------------------------------------------------------------------------------------------
# Cancel


def test_cancel_ends_an_open_invoice_failed_and_only_once(app: Flask, shop: TestShop) -> None:
    data = shop.create().json()["data"]
    answer = shop.cancel("order-7")
    assert (answer.status_code, answer.json()) == (200, [])
    with app.app_context():
        invoice = db.session().get(Invoice, data["id"])
        assert invoice is not None and (invoice.status, invoice.reason) == ("failed", "cancelled")
        page = db.session().get(Page, invoice.page_id)
        assert page is not None and (page.status, page.reason) == ("failed", "cancelled")
    again = shop.cancel("order-7")
    assert again.status_code == 400
    assert again.json() == {"errors": {"error": "Invoice cannot be failed in its current state.",
                                       "code": "invalid_invoice_state"}}


def test_cancel_of_an_unknown_foreign_id(shop: TestShop) -> None:
    answer = shop.cancel("never-made")
    assert answer.status_code == 404
    assert answer.json() == {"errors": {"foreign_id": "The selected foreign id is invalid."}}


@pytest.mark.parametrize("foreign_id", ["a/b", "/7", "a//b", "ü ö", "..", "%2F"])
def test_cancel_takes_any_text_as_foreign_id(shop: TestShop, foreign_id: str) -> None:
    assert shop.create(foreign_id=foreign_id).status_code == 200
    assert shop.create(foreign_id="other").status_code == 200
    raw = foreign_id.replace("%", "%25").replace(" ", "%20").replace("ü", "%C3%BC").replace(
        "ö", "%C3%B6").replace(".", "%2E")
    answer = shop.send(f"invoices/{raw}/cancel/", b"{}")
    assert (answer.status_code, answer.json()) == (200, [])


def test_cancel_is_signed_too(shop: TestShop) -> None:
    shop.create()
    answer = shop.send("invoices/order-7/cancel/", b"{}", sign_with="wrong")
    assert answer.status_code == 403 and answer.json()["code"] == "bad_header_signature"


def test_cancel_of_a_type_3_invoice_cancels_its_quote_at_the_processor(
        app: Flask, shop: TestShop, live_server: LiveServer) -> None:
    shop.create(TYPE_3)
    assert shop.cancel("order-7").status_code == 200
    with app.app_context():
        [quote] = db.session().scalars(select(InvoiceQuote)).all()
        foreign_id = quote.foreign_id
        merchant = db.session().get(Merchant, 11)
        assert merchant is not None
        from checkout import processor

        info = processor.client_for(merchant).transactions_info(foreign_id=foreign_id)
    assert (info["status"], info["error"]) == ("failed", "Invoice was cancelled.")


def test_the_shops_timer_is_in_utc_seconds(app: Flask, shop: TestShop) -> None:
    data = shop.create(timer=True).json()["data"]
    with app.app_context():
        invoice = db.session().get(Invoice, data["id"])
        assert invoice is not None and invoice.fixed_at is not None
        assert invoice.release_at == invoice.fixed_at + timedelta(seconds=900)
