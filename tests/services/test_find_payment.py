"""Find my payment, the query: an exact match by each key finds its page (the one the payment
counts on), newest first and at most a few; a shared address needs its tag; anything near
a match, hostile or not, finds nothing; one statement whatever the data."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta

import pytest
from flask import Flask
from kit.callbacks import deposit_body, invoice_body, issue_address, issue_invoice, post
from kit.counters import statements
from sqlalchemy import select

from checkout import db, merchants
from checkout.models import Deposit, DepositAddress, Invoice, InvoiceQuote, Merchant, Page
from checkout.services import find_payment
from checkout.services.find_payment import BadQuery, Query

T0 = datetime(2026, 3, 1, 12, 0, 0)
BECH32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
XRP = "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh"


def find(app: Flask, text: str, tag: str | None = None) -> list[str]:
    with app.app_context():
        return find_payment.find(db.session(), find_payment.parse(text, tag))


def paid(app: Flask, processor_id: int, address: str, foreign_id: str, txid: str,
         tag: str | None = None, currency: str = "BTC") -> None:
    body = deposit_body(processor_id, "confirmed", address=address, foreign_id=foreign_id,
                        txid=txid, tag=tag, currency=currency)
    assert post(app.test_client(), body).status_code == 200


def invoice_with_txid(app: Flask, processor_id: int, quote: str, txid: str) -> str:
    page = issue_invoice(app, processor_id, quote)
    payload = json.loads(invoice_body(processor_id, "processing", quote))
    payload["transactions"] = [{"id": 9, "currency": "BTC", "transaction_type": "blockchain",
                                "type": "deposit", "address": payload["crypto_address"]["address"],
                                "tag": None, "amount": "0.00309556", "txid": txid,
                                "confirmations": "0"}]
    assert post(app.test_client(), json.dumps(payload).encode()).status_code == 200
    return page


def quote_at(app: Flask, page_id: str, address: str, *, current: bool,
             tag: str | None = None) -> str:
    """A quote of the invoice of `page_id` at `address`; its foreign_id."""
    foreign_id = "q-" + secrets.token_hex(4)
    with app.app_context(), db.transaction() as s:
        invoice = s.scalars(select(Invoice).where(Invoice.page_id == page_id)).one()
        s.add(InvoiceQuote(invoice_id=invoice.id, merchant_id=invoice.merchant_id,
                           foreign_id=foreign_id, sender_currency="BTC", address=address,
                           tag=tag, status="failed", current=current))
    return foreign_id


def test_a_deposit_s_txid_finds_the_page_it_counts_on(app: Flask, merchant: Merchant) -> None:
    _, first = issue_address(app, address=BECH32, foreign_id="cust-1",
                             created_at=T0 - timedelta(hours=2))
    paid(app, 1, BECH32, "cust-1", "ab" * 32)
    # The customer's next order opens a page on the same address: later money is its own.
    with app.app_context(), db.transaction() as s:
        row = s.get(Page, first)
        assert row is not None
        s.add(Page(id=secrets.token_urlsafe(32), kind="deposit", merchant_id=11,
                   foreign_id="cust-1", currency="BTC", amount="0.01", amount_paid="0",
                   address_id=row.address_id, address=BECH32, status="waiting",
                   created_at=datetime.now(), updated_at=datetime.now()))
        second = s.scalars(select(Page.id).where(Page.id != first)).one()
    paid(app, 2, BECH32, "cust-1", "cd" * 32)

    assert find(app, "ab" * 32) == [first]
    assert find(app, "cd" * 32) == [second]
    # Hex is hex in either case, and pasted with a line break around it.
    assert find(app, ("AB" * 32) + "\n") == [first]
    assert find(app, "  " + "Cd" * 32) == [second]


def test_an_invoice_is_found_by_its_txid_its_addresses_and_its_late_money(
        app: Flask, merchant: Merchant) -> None:
    page = invoice_with_txid(app, 777, "quote-1", "ef" * 32)
    assert find(app, "ef" * 32) == [page]

    earlier = quote_at(app, page, "2NEarlierQuoteAddressXXXXXXXXXXXXX", current=False)
    assert find(app, "2NEarlierQuoteAddressXXXXXXXXXXXXX") == [page]
    # Money that came after the invoice failed, kept at an address under the quote's own
    # reference (services/late_news.py): its txid leads to the invoice's page.
    with app.app_context(), db.transaction() as s:
        late = DepositAddress(merchant_id=11, foreign_id=earlier, currency="BTC",
                              convert_to="", address="2NEarlierQuoteAddressXXXXXXXXXXXXX")
        s.add(late)
        s.flush()
        s.add(Deposit(merchant_id=11, processor_id=9001, address_id=late.id, currency="BTC",
                      amount="0.001", txid="0x" + "12" * 32, status="confirmed"))
    assert find(app, "0x" + "12" * 32) == [page]
    assert find(app, "0X" + "12" * 32) == [page]


def test_an_address_lists_its_newest_pages_and_no_more(app: Flask, merchant: Merchant) -> None:
    address_id, oldest = issue_address(app, address=BECH32, foreign_id="cust-2",
                                       created_at=T0)
    pages = [oldest]
    with app.app_context(), db.transaction() as s:
        for n in range(1, 8):
            page = Page(id=secrets.token_urlsafe(32), kind="deposit", merchant_id=11,
                        foreign_id="cust-2", currency="BTC", amount="0.01", amount_paid="0",
                        address_id=address_id, address=BECH32, status="confirmed",
                        created_at=T0 + timedelta(days=n), updated_at=T0)
            s.add(page)
            pages.append(page.id)
    newest_first = list(reversed(pages))[:find_payment.MAX_LINKS]
    assert find(app, BECH32) == newest_first
    # bech32 is case-insensitive (all one case): the QR's upper-case form finds it too.
    assert find(app, BECH32.upper()) == newest_first
    assert find(app, BECH32[:10].upper() + BECH32[10:]) == []  # mixed case is no address


def test_a_shared_address_needs_its_own_tag(app: Flask, merchant: Merchant) -> None:
    _, first = issue_address(app, address=XRP, currency="XRP", foreign_id="a", tag="1001")
    _, second = issue_address(app, address=XRP, currency="XRP", foreign_id="b", tag="1002")
    assert find(app, XRP) == []  # every customer of the shop pays there
    assert find(app, XRP, "1001") == [first]
    assert find(app, XRP, " 1002 ") == [second]
    assert find(app, XRP, "100") == []
    assert find(app, XRP.lower(), "1001") == []  # base58: case is meaning


def test_one_merchant_s_look_alike_finds_nothing_of_another(app: Flask,
                                                             merchant: Merchant) -> None:
    with app.app_context():
        merchants.add(merchants.NewMerchant(
            client_id=22, name="Shop B", key="key-b", secret="secret-b",
            return_hosts=("b.example",), frame_origins=(), webhook_url=None))
    _, mine = issue_address(app, address=BECH32, foreign_id="cust-3")
    _, theirs = issue_address(app, address="3TheirsXXXXXXXXXXXXXXXXXXXXXXXXXXX",
                              foreign_id="cust-3", merchant_id=22)
    assert find(app, BECH32) == [mine]
    assert find(app, "3TheirsXXXXXXXXXXXXXXXXXXXXXXXXXXX") == [theirs]


@pytest.mark.parametrize("text", [
    BECH32[:-1], BECH32[1:], BECH32 + "q", BECH32[:20], "bc1", "%", "_", "*", "bc1%",
    "' OR 1=1 --", "\" OR \"\"=\"", "ab" * 31, "ab" * 32 + "0", "ab" * 16,
    BECH32.replace("a", "\u0430"),  # Cyrillic а: looks the same, is not
    BECH32.replace("q", "\uff51"),  # fullwidth q
    "bc1qar0srrr7xfkvy5l643 lydnw9re59gtzzwf5mdq",  # a space inside
    "bitcoin:" + BECH32, "x" * find_payment.MAX_TEXT,
])
def test_near_misses_and_hostile_text_find_nothing(app: Flask, merchant: Merchant,
                                                   text: str) -> None:
    issue_address(app, address=BECH32, foreign_id="cust-4")
    paid(app, 5, BECH32, "cust-4", "ab" * 32)
    assert find(app, text) == []


@pytest.mark.parametrize(("text", "tag", "problem", "field"), [
    ("", None, BadQuery.EMPTY, "text"),
    (" \t\n ", None, BadQuery.EMPTY, "text"),
    (None, None, BadQuery.EMPTY, "text"),
    ("x" * (find_payment.MAX_TEXT + 1), None, BadQuery.TOO_LONG, "text"),
    ("a\x00b", None, BadQuery.CONTROL, "text"),
    ("\x00", None, BadQuery.CONTROL, "text"),
    ("ab\ncd", None, BadQuery.CONTROL, "text"),
    ("\u202e" + BECH32, None, BadQuery.CONTROL, "text"),  # a right-to-left override
    (BECH32 + "\u200b", None, BadQuery.CONTROL, "text"),  # a zero-width space
    (XRP, "1" * (find_payment.MAX_TAG + 1), BadQuery.TOO_LONG, "tag"),
    (XRP, "10\x0001", BadQuery.CONTROL, "tag"),
])
def test_unusable_text_is_refused_by_name(text: str | None, tag: str | None, problem: str,
                                          field: str) -> None:
    with pytest.raises(BadQuery) as refused:
        find_payment.parse(text, tag)
    assert (refused.value.problem, refused.value.field) == (problem, field)


def test_the_query_is_stripped_and_an_empty_tag_is_none() -> None:
    assert find_payment.parse(f"\n {BECH32}\t", "  ") == Query(BECH32, None)
    assert find_payment.parse(XRP, " 7 ") == Query(XRP, "7")


def test_one_statement_whatever_the_data(app: Flask, merchant: Merchant) -> None:
    issue_address(app, address=BECH32, foreign_id="cust-5")
    invoice_with_txid(app, 778, "quote-2", "ef" * 32)
    for n in range(20):
        paid(app, 100 + n, BECH32, "cust-5", f"{n:064x}")
    for text in (BECH32, f"{3:064x}", "ef" * 32, "nothing-here"):
        with app.app_context(), statements(app) as seen:
            find_payment.find(db.session(), Query(text, None))
        assert len(seen) == 1, (text, seen)


def test_text_no_chain_uses_is_not_even_asked_about(app: Flask) -> None:
    with app.app_context(), statements(app) as seen:
        assert find_payment.find(db.session(), Query("' OR 1=1 --", None)) == []
        assert find_payment.find(db.session(), Query("bc1\u0430", None)) == []
    assert seen == []

