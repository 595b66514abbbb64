"""What a hostile caller sends: text that is not text, bodies larger than any route needs,
paths no rule matches. Each is refused early and in the route's own shape (CoinsPaid's JSON
under /api/v2/ and on callbacks, HTML for customers), and nothing is written."""

from __future__ import annotations

import base64
import io
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from kit.callbacks import deposit_body, issue_address, nothing_written, signed_headers
from kit.counters import count
from kit.invoices import ORDER, shop_signature
from kit.site import MERCHANT_SECRET
from sqlalchemy import select

from checkout import db, money
from checkout.models import Callback, Invoice, Merchant, Page
from checkout.text import NotText, bad_query_field, is_text, printable
from checkout.wire import signing

CREATE = "/api/v2/invoices/create"
LONE = "\ud800"  # half of a surrogate pair: json.dumps writes it as the escape "\ud800"


def signed(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Processing-Key": "test-key-11",
            "X-Processing-Signature": shop_signature(body)}


def invoice_page(client: FlaskClient) -> str:
    """An invoice's customer page (type 1: the customer picks the currency there)."""
    body = json.dumps(ORDER).encode()
    answer = client.post(CREATE, data=body, headers=signed(body))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return "/p/" + str(answer.get_json()["data"]["url"]).rsplit("/", 1)[1]


def link_query(payload: dict[str, Any]) -> dict[str, str]:
    text = json.dumps(payload)  # ASCII: a lone surrogate becomes its escape
    return {"data": base64.b64encode(text.encode()).decode(),
            "signature": signing.sign(text.encode(), MERCHANT_SECRET)}


# ---------------------------------------------------------------------------------------------
# 12. Text that does not encode as UTF-8: a 400 naming the field, on every input route


@pytest.mark.parametrize("field", ["title", "description", "foreign_id", "email_user",
                                   "end_user_reference"])
def test_an_api_field_that_is_no_text_is_a_400_naming_it(
        app: Flask, client: FlaskClient, merchant: Merchant, field: str) -> None:
    body = json.dumps({**ORDER, field: f"a{LONE}b"}).encode()
    assert b"\\ud800" in body
    answer = client.post(CREATE, data=body, headers=signed(body))
    assert answer.status_code == 400
    assert answer.get_json() == {"errors": {field: f"The {field.replace('_', ' ')} must be "
                                            "valid UTF-8 text."}}
    assert count(app, Invoice) == 0 and count(app, Page) == 0


def test_a_key_that_is_no_text_is_named_escaped_and_a_pair_is_text(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    body = json.dumps({**ORDER, LONE: 1}).encode()
    answer = client.post(CREATE, data=body, headers=signed(body))
    assert answer.status_code == 400 and list(answer.get_json()["errors"]) == ["\\ud800"]
    # A whole surrogate pair is one character (an emoji): text like any other.
    body = json.dumps({**ORDER, "title": "Order \U0001f600"}).encode()
    assert b"\\ud83d\\ude00" in body
    assert client.post(CREATE, data=body, headers=signed(body)).status_code == 200


def test_text_is_checked_after_the_signature_as_the_processor_orders_errors(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    body = json.dumps({**ORDER, "title": LONE}).encode()
    answer = client.post(CREATE, data=body, headers={**signed(body),
                                                     "X-Processing-Signature": "0" * 128})
    assert answer.status_code == 403 and answer.get_json()["code"] == "bad_header_signature"


def test_a_cancel_with_no_text_in_its_body_or_its_path_is_a_400_naming_it(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    body = json.dumps({"reason": LONE}).encode()
    answer = client.post("/api/v2/invoices/order-7/cancel/", data=body, headers=signed(body))
    assert answer.status_code == 400 and list(answer.get_json()["errors"]) == ["reason"]
    # The bytes of a lone surrogate (not UTF-8) in the path, as a server hands them over.
    answer = client.post("/api/v2/invoices/x/cancel/", data=b"{}", headers=signed(b"{}"),
                         environ_overrides={"PATH_INFO": "/api/v2/invoices/\xed\xa0\x80/cancel/"})
    assert answer.status_code == 400 and list(answer.get_json()["errors"]) == ["foreign_id"]


@pytest.mark.parametrize("path", ["/terminal", "/"])
@pytest.mark.parametrize("field", ["foreign_id", "url_back", "note"])
def test_a_terminal_link_with_no_text_is_a_400_naming_the_field(
        app: Flask, client: FlaskClient, merchant: Merchant, field: str, path: str) -> None:
    link = {"client_id": 11, "currency": "BTC", "foreign_id": "user-7", field: LONE}
    answer = client.get(path, query_string=link_query(link))
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    assert f"invalid {field}" in answer.get_data(as_text=True)
    assert count(app, Page) == 0


def test_a_signed_callback_with_no_text_is_a_400_naming_the_field(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    issue_address(app)
    body = deposit_body(1, "confirmed").replace(b'"txid":"', b'"txid":"\\ud800')
    payload = json.loads(body)
    assert payload["transactions"][0]["txid"].startswith(LONE)
    answer = client.post("/callbacks/coinspaid", data=body, headers=signed_headers(body))
    assert answer.status_code == 400
    assert list(answer.get_json()["errors"]) == ["transactions.0.txid"]
    assert count(app, Callback) == 0


@pytest.mark.parametrize("form", [b"email=%ED%A0%80", b"email=a%FFb@example.com",
                                  b"em%FFail=x", b"email=\xff@example.com"],
                         ids=["surrogate bytes", "bad byte", "bad name", "raw byte"])
@pytest.mark.parametrize("action", ["pick", "email", "again"])
def test_a_customer_form_with_no_text_is_a_400_page_naming_the_field(
        app: Flask, client: FlaskClient, merchant: Merchant, action: str, form: bytes) -> None:
    page = invoice_page(client)
    answer = client.post(f"{page}/{action}", data=form,
                         content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    assert "This request has an unreadable em" in html  # the field, as sent, is named
    with app.app_context():
        invoice = db.session().scalar(select(Invoice))
        assert invoice is not None and invoice.email_user == ORDER["email_user"]


@pytest.mark.parametrize("path", ["/p/{page}", "/p/{page}/receipt", "/terminal", "/"])
def test_a_query_with_no_text_is_a_400_naming_it(
        app: Flask, client: FlaskClient, merchant: Merchant, path: str) -> None:
    page = invoice_page(client)
    answer = client.get(path.format(page=page.rsplit("/", 1)[1]) + "?lang=%ED%A0%80")
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    assert "unreadable lang" in answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store"


def test_an_api_query_with_no_text_is_a_json_400_naming_it(
        client: FlaskClient, merchant: Merchant) -> None:
    body = json.dumps(ORDER).encode()
    answer = client.post(CREATE + "?ref=%FF", data=body, headers=signed(body))
    assert answer.status_code == 400
    assert answer.get_json() == {"errors": {"ref": "The ref must be valid UTF-8 text."}}


# Any text, lone surrogates included (Hypothesis leaves them out unless asked by category).
ANY_TEXT = st.lists(st.one_of(st.characters(), st.characters(categories=["Cs"])),
                    max_size=8).map("".join)


@given(st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=4))
def test_json_is_refused_exactly_when_a_key_or_value_is_no_text(
        payload: dict[str, str]) -> None:
    body = json.dumps(payload).encode()  # ASCII: every lone surrogate as its escape
    # As any JSON parser reads it: two escapes in a row that make a pair are one character.
    read = json.loads(body)
    bad = [key for key, value in read.items() if not (is_text(key) and is_text(value))]
    if not bad:
        assert money.loads(body) == read
        return
    with pytest.raises(NotText) as refused:
        money.loads(body)
    assert refused.value.field == printable(bad[0])


@given(st.lists(st.tuples(st.binary(max_size=6), st.binary(max_size=6)), max_size=4))
def test_a_query_is_refused_exactly_when_a_name_or_value_is_no_utf8(
        pairs: list[tuple[bytes, bytes]]) -> None:
    def utf8(raw: bytes) -> bool:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    query = urlencode(pairs).encode("ascii")
    bad = [name for name, value in pairs if not (utf8(name) and utf8(value))]
    assert (bad_query_field(query) is None) == (not bad)


# ---------------------------------------------------------------------------------------------
# 13. Every route has a body limit: 413 before the body is read


class LargeBody(io.RawIOBase):
    """A body of `size` bytes, made as it is read, that counts what is read of it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # the test client measures the body's length by seeking to its end

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = self.size + offset if whence == io.SEEK_END else offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.size - self.position)
        memoryview(buffer)[:count] = b"a" * count
        self.position += count
        self.read_bytes += count
        return count


def post_declared(client: FlaskClient, path: str, length: int,
                  content_type: str = "application/x-www-form-urlencoded",
                  **headers: str) -> tuple[Any, int]:
    """POST a body of `length` bytes (Content-Length says so); how much of it was read."""
    body = LargeBody(length)
    answer = client.post(path, input_stream=body, content_type=content_type, headers=headers)
    return answer, body.read_bytes


@pytest.mark.parametrize("action", ["pick", "email", "again"])
def test_a_large_customer_form_is_a_413_page_and_is_not_read(
        app: Flask, client: FlaskClient, merchant: Merchant, action: str) -> None:
    page = invoice_page(client)
    answer, read = post_declared(client, f"{page}/{action}", 20 * 1024 * 1024)
    assert answer.status_code == 413 and answer.mimetype == "text/html"
    assert "too large" in answer.get_data(as_text=True)
    assert read == 0
    # A real form is far below the bound.
    assert client.post(f"{page}/{action}", data={"email": "a@example.com"}).status_code == 400


@pytest.mark.parametrize("path", [CREATE, "/api/v2/invoices/order-7/cancel/"])
def test_a_large_api_body_is_a_json_413_and_is_not_read(
        app: Flask, client: FlaskClient, merchant: Merchant, path: str) -> None:
    answer, read = post_declared(client, path, 1024 * 1024, "application/json",
                                 **{"X-Processing-Key": "test-key-11"})
    assert answer.status_code == 413 and read == 0
    assert answer.get_json() == {"error": "Request Entity Too Large",
                                 "code": "request_entity_too_large"}


def test_a_large_callback_and_any_other_route_is_a_413_unread(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    answer, read = post_declared(client, "/callbacks/coinspaid", 1024 * 1024, "application/json")
    assert answer.status_code == 413 and read == 0
    assert nothing_written(app)
    answer, read = post_declared(client, "/", 1024 * 1024)
    assert answer.status_code == 413 and read == 0


# ---------------------------------------------------------------------------------------------
# 16. Everything under /api/v2/ answers in the processor's JSON shape; customers keep HTML


def test_a_cancel_whose_foreign_id_has_a_line_break_reaches_the_api(
        client: FlaskClient, merchant: Merchant) -> None:
    answer = client.post("/api/v2/invoices/a%0D%0Ab/cancel/", data=b"{}", headers=signed(b"{}"))
    assert answer.status_code == 404 and answer.mimetype == "application/json"
    assert list(answer.get_json()["errors"]) == ["foreign_id"]


@pytest.mark.parametrize(("method", "path", "status"), [
    ("POST", "/api/v2/a%0Ab", 404),  # no rule matches a line break outside a foreign_id
    ("GET", "/api/v2/a%0Ab", 404),
    ("PROPFIND", "/api/v2/invoices/create", 405),
])
def test_api_errors_no_view_met_are_json_in_the_processors_shape(
        client: FlaskClient, method: str, path: str, status: int) -> None:
    answer = client.open(path, method=method, data=b"{}", headers=signed(b"{}"))
    assert answer.status_code == status and answer.mimetype == "application/json"
    assert set(answer.get_json()) == {"error", "code"}


def test_customer_routes_keep_their_html_errors(client: FlaskClient) -> None:
    for method, path, status in [("GET", "/nowhere%0A", 404), ("PROPFIND", "/", 405)]:
        answer = client.open(path, method=method)
        assert answer.status_code == status and answer.mimetype == "text/html"


def test_a_server_error_under_the_api_is_json_too(make_app: Any, app: Flask,
                                                  tmp_path: Any) -> None:
    """A database that cannot be opened: the shop's client still reads the processor's shape."""
    broken = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'no-such-dir' / 'checkout.db'}")
    body = json.dumps(ORDER).encode()
    answer = broken.test_client().post(CREATE, data=body, headers=signed(body))
    assert answer.status_code == 500 and answer.mimetype == "application/json"
    assert answer.get_json() == {"error": "Server error", "code": "server_error"}
