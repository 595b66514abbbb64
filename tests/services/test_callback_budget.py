"""What a distinct valid callback spends: one HMAC over its bytes, one commit, no call to the
processor, the address's transactions and pages read once (for the pages' state and for
their models alike), each changed page's model written once; and on SQLite the callbacks of
one process take turns for the write lock in the process instead of in SQLite's busy
handler. The page shows the news as soon as the 200 is sent: both are in the same commit."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta

import pytest
from flask import Flask
from kit import budgets
from kit.callbacks import (
    Shop,
    callbacks_of,
    count,
    deposit_body,
    issue_address,
    post,
    signed_headers,
)
from kit.live import PATIENCE
from sqlalchemy import event, select, update

from checkout import clock, db
from checkout.clock import system_now
from checkout.models import Callback, Deposit, Merchant, Page, RateQuote
from checkout.pagekinds import deposit as deposit_kind
from checkout.web import callbacks

# What the lean path reaches for a deposit that moves a page on (SQLite and PostgreSQL): the
# merchants' version, the callback, its idempotency key, our addresses, the Deposit, the
# address's pages and their transactions, the page's state, the callback's outcome, the
# delivery, the coin's minimum, the page's model. The old path read the transactions and the
# page again to build the model (17), and asked for an invoice quote under a foreign_id no
# quote of ours can have (13).
STATEMENTS = 12


def _selects_from(queries: list[str], table: str) -> list[str]:
    return [q for q in queries if q.lstrip().upper().startswith("SELECT")
            and re.search(rf"\bFROM {table}\b", q)]


def test_a_distinct_deposit_callback_spends_one_hmac_one_commit_and_reads_once(
        app: Flask, merchant: Merchant, webhook: Shop) -> None:
    _, page_id = issue_address(app)
    client = app.test_client()
    assert post(client, deposit_body(1, "not_confirmed", txid="01" * 32)).status_code == 200
    body = deposit_body(2, "confirmed", txid="02" * 32)
    headers = signed_headers(body)  # the shop's signature is made outside the count

    with budgets.spent(app) as spent:
        answer = client.post("/callbacks/coinspaid", data=body, headers=headers)

    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert (spent.hmacs, spent.commits, spent.processor_calls) == (1, 1, []), spent
    assert len(_selects_from(spent.queries, "deposits")) == 1, spent
    assert len(_selects_from(spent.queries, "pages")) == 1, spent
    model_writes = [q for q in spent.writes if q.startswith("UPDATE pages") and "model_json" in q]
    assert len(model_writes) == 1, spent
    assert len(spent.queries) <= STATEMENTS, spent
    assert not _selects_from(spent.queries, "invoice_quotes"), spent  # a shop's foreign_id
    # The merchants' version is read before the transaction, beside the session: the ORM's
    # statement cost more than the signature.
    assert _selects_from(spent.direct, "merchants_version") == _selects_from(
        spent.queries, "merchants_version") != [], spent
    assert [c.outcome for c in callbacks_of(app)] == ["applied", "applied"]
    # The customer's poll shows the news with the 200: both transactions, the page paid.
    shown = json.loads(client.get(f"/p/{page_id}/status").get_data())
    assert shown["status"] == "confirmed"
    assert sorted(t["status"] for t in shown["transactions"]) == ["confirmed", "not_confirmed"]


def test_a_pages_fiat_value_reads_its_rate_without_an_orm_quote(
        app: Flask, merchant: Merchant) -> None:
    """The page's model reads its pair's rate at every change: two columns, no RateQuote
    object built for them."""
    _, page_id = issue_address(app)
    with app.app_context(), db.transaction() as s:
        s.add(RateQuote(currency_from="BTC", currency_to="EUR", rate="50000",
                        fetched_at=clock.now()))
        s.execute(update(Page).where(Page.id == page_id).values(fiat_currency="EUR"))
    built: list[RateQuote] = []

    def loaded(quote: RateQuote, _context: object) -> None:
        built.append(quote)

    event.listen(RateQuote, "load", loaded)
    try:
        assert post(app.test_client(),
                    deposit_body(1, "not_confirmed", txid="01" * 32)).status_code == 200
    finally:
        event.remove(RateQuote, "load", loaded)
    assert built == []
    shown = json.loads(app.test_client().get(f"/p/{page_id}/status").get_data())
    assert shown["fiat"]["currency"] == "EUR" and shown["fiat"]["rate"] == "50000", shown


def test_the_transactions_read_once_for_all_pages_of_an_address_split_as_each_page_counts(
        app: Flask, merchant: Merchant) -> None:
    """deposits_by_page (one read) gives each page what page_deposits (a read per page) gives:
    pages opened one after another and two opened at the same instant share an address."""
    start = system_now() - timedelta(hours=1)
    address_id, first = issue_address(app, created_at=start)
    opened = [start, start + timedelta(minutes=10), start + timedelta(minutes=10),
              start + timedelta(minutes=20)]
    with app.app_context(), db.transaction() as s:
        for number, at in enumerate(opened[1:], start=1):
            s.add(Page(id=f"{first[:40]}-{number}", kind="deposit", merchant_id=11,
                       foreign_id="f", currency="BTC", amount="0.01", amount_paid="0",
                       address_id=address_id, status="waiting", created_at=at, updated_at=at))
        for minutes in (-5, 0, 5, 10, 15, 20, 25):
            at = start + timedelta(minutes=minutes)
            s.add(Deposit(merchant_id=11, processor_id=100 + minutes, address_id=address_id,
                          currency="BTC", amount="0.001", status="confirmed",
                          created_at=at, updated_at=at))
    with app.app_context():
        s = db.session()
        pages = s.scalars(select(Page).where(Page.address_id == address_id)
                          .order_by(Page.created_at, Page.id)).all()
        assert len(pages) == 4
        each = {page.id: [d.id for d in deposit_kind.page_deposits(s, page)] for page in pages}
        once = {page_id: [d.id for d in found] for page_id, found
                in deposit_kind.deposits_by_page(s, address_id, pages).items()}
        assert once == each
        assert sum(len(found) for found in once.values()) == 6  # all but the one before


def test_on_sqlite_the_callbacks_of_a_process_take_turns_to_write(
        app: Flask, merchant: Merchant) -> None:
    """While one callback of this process writes, the next one waits for its turn in the
    process, not in SQLite's busy handler: it writes nothing until the turn is free, then
    goes through."""
    if app.extensions[db.EXTENSION + ".engine"].dialect.name != "sqlite":
        pytest.skip("PostgreSQL lets callbacks about different payments write side by side")
    issue_address(app)
    client = app.test_client()
    answers: list[int] = []

    def send() -> None:
        answers.append(post(client, deposit_body(5, "confirmed")).status_code)

    sender = threading.Thread(target=send)
    with app.app_context(), callbacks.writers_turn():
        sender.start()
        sender.join(timeout=0.5)  # what it does with the turn taken: nothing
        assert sender.is_alive()
        assert count(app, Callback) == 0
    sender.join(timeout=PATIENCE)
    assert answers == [200]
    assert [c.outcome for c in callbacks_of(app)] == ["applied"]


def test_what_a_refresh_read_is_not_reused_after_its_transaction(
        app: Flask, merchant: Merchant) -> None:
    """The transactions a callback read for its pages serve its own models only: once its
    transaction ends, a later read in the same session sees what others wrote meanwhile."""
    address_id, page_id = issue_address(app)
    with app.app_context():
        s = db.session()
        deposit_kind.refresh_for_address(s, address_id)
        s.commit()
        with db.engine().begin() as other:
            other.execute(Deposit.__table__.insert().values(
                merchant_id=11, processor_id=9, address_id=address_id, currency="BTC",
                amount="0.01", status="confirmed", created_at=system_now(),
                updated_at=system_now()))
        page = s.get(Page, page_id)
        assert page is not None
        assert [d.processor_id for d in deposit_kind.page_deposits(s, page)] == [9]


def test_a_page_refresh_writes_its_row_and_its_model_with_no_one_asking(
        app: Flask, merchant: Merchant) -> None:
    """The refresh writes what it recomputed itself, not through the ORM's flush (which
    told the snapshot which pages changed): it marks them itself, so whoever calls it, the
    commit writes their models too."""
    address_id, page_id = issue_address(app)
    with app.app_context(), db.transaction() as s:
        s.execute(Deposit.__table__.insert().values(
            merchant_id=11, processor_id=7, address_id=address_id, currency="BTC",
            amount="0.01", status="confirmed", created_at=system_now(),
            updated_at=system_now()))
        deposit_kind.refresh_for_address(s, address_id)
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None and page.status == "confirmed"
        assert json.loads(page.model_json or "{}")["status"] == "confirmed"
