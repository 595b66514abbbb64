"""The back office's payments list: filters, exact search by each key, keyset walks that
neither skip nor repeat rows (equal timestamps, new rows arriving), access bounds on every
path, fees and fiat worth from what the processor's callbacks said, statement budgets."""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from flask import Flask
from kit.callbacks import deposit_body, invoice_body, issue_address, issue_invoice, post
from kit.counters import statements
from sqlalchemy import select

from checkout import db, merchants
from checkout.models import Callback, Delivery, Deposit, Invoice, Merchant, Page
from checkout.services import payments_list
from checkout.services.payments_list import Filters, InvalidCursor

A, B = 11, 22
T0 = datetime(2026, 3, 1, 12, 0, 0)


@pytest.fixture
def shop_b(app: Flask, merchant: Merchant) -> int:
    with app.app_context():
        merchants.add(merchants.NewMerchant(
            client_id=B, name="Shop B", key="key-b", secret="secret-b",
            return_hosts=("b.example",), frame_origins=(), webhook_url=None))
    return B


def add_page(app: Flask, merchant_id: int, *, created_at: datetime = T0, kind: str = "deposit",
             status: str = "waiting", reason: str | None = None, currency: str = "BTC",
             foreign_id: str | None = None, address: str | None = None,
             page_id: str | None = None) -> str:
    with app.app_context(), db.transaction() as session:
        page = Page(id=page_id or secrets.token_urlsafe(32), kind=kind, merchant_id=merchant_id,
                    foreign_id=foreign_id or f"order-{secrets.token_hex(4)}",
                    currency=currency, amount="0.01", amount_paid="0", address=address,
                    status=status, reason=reason, created_at=created_at, updated_at=created_at)
        session.add(page)
        return page.id


NO_FILTERS = Filters()


def ids(app: Flask, allowed: list[int] | None, filters: Filters = NO_FILTERS) -> list[str]:
    with app.app_context():
        return [row.id for row in payments_list.listing(db.session(), allowed, filters,
                                                        limit=1000).rows]


def walk(app: Flask, allowed: list[int] | None, filters: Filters, limit: int) -> list[str]:
    """Every row, page by page through the cursor."""
    seen: list[str] = []
    after: str | None = None
    with app.app_context():
        while True:
            found = payments_list.listing(db.session(), allowed, filters, after, limit=limit)
            seen += [row.id for row in found.rows]
            if found.next_cursor is None:
                return seen
            after = found.next_cursor


def test_the_four_outcome_words_filter_by_how_a_page_ended(app: Flask, merchant: Merchant) -> None:
    """paid, expired, underpaid, overpaid name the outcome the page's writer stored (from its
    status, reason and amounts), not its status or reason alone: an invoice paid more than
    its quote is confirmed with no reason, yet overpaid; one failed with no reason expired."""
    def invoice(status: str, reason: str | None, paid: str) -> str:
        page_id = add_page(app, A, kind="invoice", status=status, reason=reason)
        with app.app_context(), db.transaction() as session:
            page = session.get(Page, page_id)
            assert page is not None
            page.amount_paid = paid  # a later change: the outcome follows it
        return page_id

    exact = invoice("confirmed", None, "0.01")
    over = invoice("confirmed", None, "0.02")
    lapsed = invoice("failed", None, "0")
    short_deposit = add_page(app, A, status="confirmed", reason="underpaid")
    paid_deposit = add_page(app, A, status="confirmed")
    timed_out = invoice("failed", "timeout", "0")
    assert sorted(ids(app, None, Filters(status="paid"))) == sorted([exact, paid_deposit])
    assert ids(app, None, Filters(status="overpaid")) == [over]
    assert ids(app, None, Filters(status="expired")) == [lapsed]
    assert ids(app, None, Filters(status="underpaid")) == [short_deposit]
    assert ids(app, None, Filters(status="timeout")) == [timed_out]  # a reason, as before
    assert set(ids(app, None, Filters(status="confirmed"))) == {
        exact, over, short_deposit, paid_deposit}


def test_newest_first_and_each_filter_narrows_to_what_it_names(app: Flask, shop_b: int) -> None:
    old = add_page(app, A, created_at=T0 - timedelta(days=3), status="confirmed",
                   reason="underpaid", currency="ETH")
    new = add_page(app, A, created_at=T0, kind="invoice", status="pending")
    other = add_page(app, B, created_at=T0 - timedelta(days=1))
    assert ids(app, None) == [new, other, old]
    assert ids(app, None, Filters(status="confirmed")) == [old]
    assert ids(app, None, Filters(status="underpaid")) == [old]  # how it ended: its outcome
    assert ids(app, None, Filters(kind="invoice")) == [new]
    assert ids(app, None, Filters(currency="ETH")) == [old]
    assert ids(app, None, Filters(merchant=B)) == [other]
    assert ids(app, None, Filters(date_from=date(2026, 2, 27), date_to=date(2026, 2, 28))) == [
        other]
    assert ids(app, None, Filters(date_from=(T0 - timedelta(days=3)).date(),
                                  date_to=(T0 - timedelta(days=3)).date())) == [old]
    assert ids(app, None, Filters(attention=True)) == [old]  # underpaid needs a person


def test_search_finds_a_page_by_each_key_exactly(app: Flask, merchant: Merchant) -> None:
    address_id, deposit_page = issue_address(app, address="bc1-search-me", foreign_id="cust-9")
    paid = deposit_body(501, "confirmed", address="bc1-search-me", foreign_id="cust-9",
                        txid="cd" * 32)
    assert post(app.test_client(), paid).status_code == 200
    invoice_page = issue_invoice(app, 777, "quote-1")
    with app.app_context(), db.transaction() as session:
        invoice = session.scalars(select(Invoice).where(Invoice.page_id == invoice_page)).one()
        invoice.email_user = "payer@example.org"
    payload = json.loads(invoice_body(777, "processing", "quote-1"))
    payload["transactions"] = [{"id": 9, "currency": "BTC", "transaction_type": "blockchain",
                                "type": "deposit", "address": "2N8pvnVKEFjVCP4TteJVCPTbg9Aqibfws8C",
                                "tag": None, "amount": "0.00309556", "txid": "ef" * 32,
                                "confirmations": "0"}]
    assert post(app.test_client(), json.dumps(payload).encode()).status_code == 200
    noise = add_page(app, A, foreign_id="cust-9x", address="bc1-search-me-not")

    for key, page in ((deposit_page, deposit_page), ("cust-9", deposit_page),
                      ("bc1-search-me", deposit_page), ("cd" * 32, deposit_page),
                      (invoice_page, invoice_page), ("ef" * 32, invoice_page),
                      ("payer@example.org", invoice_page), ("PAYER@example.org", invoice_page),
                      ("shop-quote-1", invoice_page)):
        assert ids(app, [A], Filters(q=key)) == [page], key
    assert noise not in ids(app, [A], Filters(q="cust-9"))
    for nothing in ("cust", "%", "' OR 1=1 --", "cd" * 31, "x" * 255):
        assert ids(app, [A], Filters(q=nothing)) == [], nothing
    assert address_id


def test_the_keyset_walk_neither_skips_nor_repeats_rows_with_equal_timestamps(
        app: Flask, merchant: Merchant) -> None:
    made = [add_page(app, A, created_at=T0 + timedelta(seconds=i % 3)) for i in range(40)]
    expected = ids(app, [A])
    assert sorted(expected) == sorted(made)
    for limit in (1, 7, 13, 40, 41):
        assert walk(app, [A], Filters(), limit) == expected, limit


def test_a_walk_is_stable_while_new_payments_arrive(app: Flask, merchant: Merchant) -> None:
    made = [add_page(app, A, created_at=T0) for _ in range(10)]
    with app.app_context():
        first = payments_list.listing(db.session(), [A], Filters(), limit=4)
    add_page(app, A, created_at=T0 + timedelta(minutes=1))  # newer: belongs before the cursor
    add_page(app, A, created_at=T0, page_id="z" * 43)  # same time, largest id
    seen = [row.id for row in first.rows]
    after = first.next_cursor
    with app.app_context():
        while after:
            found = payments_list.listing(db.session(), [A], Filters(), after, limit=4)
            seen += [row.id for row in found.rows]
            after = found.next_cursor
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))


@pytest.mark.parametrize("cursor", ["", "!!!", "a" * 300, "bm90IGEgY3Vyc29y",
                                    "MjAyNi0wMy0wMVQxMjowMDowMHwn", "AAAA",
                                    "MjAyNi0wMy0wMVQxMjowMDowMCswMTowMHxhYmM"])
def test_a_cursor_the_list_never_made_is_refused(app: Flask, cursor: str) -> None:
    with app.app_context(), pytest.raises(InvalidCursor):
        payments_list.listing(db.session(), None, Filters(), cursor or "-")


def test_a_user_of_a_never_sees_b_by_any_filter_search_cursor_or_export(
        app: Flask, shop_b: int) -> None:
    secret_b = add_page(app, B, foreign_id="order-of-b", address="addr-of-b",
                        status="confirmed", reason="underpaid")
    mine = add_page(app, A, created_at=T0 - timedelta(days=1))
    assert ids(app, [A]) == [mine]
    for filters in (Filters(merchant=B), Filters(q=secret_b), Filters(q="order-of-b"),
                    Filters(q="addr-of-b"), Filters(attention=True), Filters(status="underpaid"),
                    Filters(merchant=B, q="order-of-b")):
        assert ids(app, [A], filters) == [], filters
    # A merchant one may not see looks exactly like one that does not exist.
    assert ids(app, [A], Filters(merchant=B)) == ids(app, [A], Filters(merchant=99999)) == []
    # A cursor pointing past B's row still walks A's rows only.
    with app.app_context():
        session = db.session()
        b_row = session.get(Page, secret_b)
        assert b_row is not None
        cursor = payments_list.encode_cursor(b_row.created_at + timedelta(days=9), secret_b)
        assert [r.id for r in payments_list.listing(session, [A], Filters(), cursor).rows] == [
            mine]
        assert [e.row.id for e in payments_list.export(session, [A], Filters())] == [mine]
        assert list(payments_list.export(session, [], Filters())) == []
        assert payments_list.listing(session, [], Filters()).rows == []


def _confirmed_with_fees(app: Flask, processor_id: int, address: str, foreign_id: str,
                         fees: list[dict[str, str]]) -> None:
    payload = json.loads(deposit_body(processor_id, "confirmed", address=address,
                                      foreign_id=foreign_id, amount="0.01000000",
                                      txid=f"{processor_id:064x}"))
    payload["fees"] = fees
    assert post(app.test_client(), json.dumps(payload).encode()).status_code == 200


def test_the_export_carries_fees_and_the_fiat_worth_at_payment_time(
        app: Flask, merchant: Merchant) -> None:
    _, page_id = issue_address(app, address="bc1-fees", foreign_id="cust-fees", amount="0.02")
    with app.app_context(), db.transaction() as session:
        page = session.get(Page, page_id)
        assert page is not None
        page.fiat_currency = "EUR"
    _confirmed_with_fees(app, 601, "bc1-fees", "cust-fees",
                         [{"type": "deposit", "currency": "BTC", "amount": "0.0001"}])
    _confirmed_with_fees(app, 602, "bc1-fees", "cust-fees",
                         [{"type": "deposit", "currency": "BTC", "amount": "0.00020001"},
                          {"type": "exchange", "currency": "EUR", "amount": "4.20853511"}])
    with app.app_context(), db.transaction() as session:
        page = session.get(Page, page_id)
        assert page is not None
        assert page.status == "confirmed", page.status
        page.paid_rate = "50000.5"  # what payment_of kept (no rate in this test)
        page.paid_at = T0
        paid = Decimal(page.amount_paid)
        outcomes = {c.outcome for c in session.scalars(select(Callback))}
        assert outcomes == {"applied"}
    with app.app_context():
        [row] = list(payments_list.export(db.session(), [A], Filters()))
    assert row.fees == {"BTC": Decimal("0.00030001"), "EUR": Decimal("4.20853511")}
    assert row.fiat_currency == "EUR"
    assert Decimal(row.fiat_value or "") == (paid * Decimal("50000.5")).quantize(Decimal("0.01"))
    assert row.paid_at == T0


def test_fees_are_read_from_the_stored_bodies_and_junk_is_left_out() -> None:
    body = json.dumps({"fees": [{"currency": "BTC", "amount": "0.1"}, {"currency": "=cmd",
                                                                       "amount": "1"},
                                {"currency": "ETH", "amount": "NaN"}, "junk",
                                {"currency": "EUR", "amount": True}]}).encode()
    assert payments_list.fees_in(body) == [("BTC", Decimal("0.1"))]
    assert payments_list.fees_in(b"\xff not json") == []
    assert payments_list.fees_in(b'{"data": {"fees": [{"currency": "BTC", "amount": "2"}]}}') \
        == [("BTC", Decimal(2))]


def test_flagged_and_failing_delivery_pages_need_attention(app: Flask,
                                                          merchant: Merchant) -> None:
    _, flagged_page = issue_address(app, address="bc1-flag", foreign_id="cust-flag")
    _, failing_page = issue_address(app, address="bc1-fail", foreign_id="cust-fail")
    quiet = add_page(app, A)
    for processor_id, address, foreign_id in ((701, "bc1-flag", "cust-flag"),
                                              (702, "bc1-fail", "cust-fail")):
        assert post(app.test_client(), deposit_body(
            processor_id, "not_confirmed", address=address, foreign_id=foreign_id,
            txid=f"{processor_id:064x}")).status_code == 200
    with app.app_context(), db.transaction() as session:
        deposits = {d.processor_id: d for d in session.scalars(select(Deposit))}
        callbacks = {c.processor_id: c for c in session.scalars(select(Callback))}
        callbacks[701].outcome, callbacks[701].flag = "flagged", "absurd amount"
        session.add(Delivery(merchant_id=A, callback_id=callbacks[702].id,
                             url="https://shop.example/hook", body=b"{}", state="pending",
                             attempts=3, last_status=500))
        assert deposits[701].address_id and deposits[702].address_id
        for delivery in session.scalars(select(Delivery)):
            if delivery.callback_id != callbacks[702].id:
                delivery.state = "delivered"
    assert ids(app, [A], Filters(flagged=True)) == [flagged_page]
    assert set(ids(app, [A], Filters(attention=True))) == {flagged_page, failing_page}
    assert quiet not in ids(app, [A], Filters(attention=True))


def test_one_statement_per_list_page_and_three_per_export_batch(app: Flask,
                                                                merchant: Merchant) -> None:
    for i in range(12):
        add_page(app, A, created_at=T0 + timedelta(seconds=i), kind=("deposit", "invoice")[i % 2])
    with app.app_context():
        session = db.session()
        for filters in (Filters(), Filters(q="x"), Filters(attention=True, status="confirmed")):
            with statements(app) as seen:
                payments_list.listing(session, [A], filters, limit=5)
            assert len(seen) == 1, seen
        with statements(app) as seen:
            rows = list(payments_list.export(session, [A], Filters(), batch=5))
        assert len(rows) == 12
        assert len(seen) == 3 * 3, seen  # three batches (5, 5, 2), three statements each
