"""The back office's refund queue: bounded by the merchants a person may see, newest first, a
page at a time by keyset, filtered by state and merchant, in one statement however many
refunds a page shows."""

from __future__ import annotations

import hashlib

import pytest
from flask import Flask
from kit.counters import statements

from checkout import clock, db, merchants
from checkout.models import Page, Refund
from checkout.services import refund_queue

A, B = 11, 22


def _world(app: Flask, refunds_each: int) -> dict[int, list[int]]:
    """Two merchants, each with a page and `refunds_each` refunds of it, alternating
    between requested and confirmed; their ids by merchant, oldest first."""
    ids: dict[int, list[int]] = {A: [], B: []}
    with app.app_context():
        for client_id in (A, B):
            merchants.add(merchants.NewMerchant(
                client_id=client_id, name=f"Shop {client_id}", key=f"key-{client_id}",
                secret=f"secret-{client_id}", return_hosts=("shop.example",),
                frame_origins=(), webhook_url=None))
        with db.transaction() as session:
            now = clock.now()
            for client_id in (A, B):
                page = Page(id=hashlib.sha256(str(client_id).encode()).hexdigest()[:43],
                            kind="deposit", merchant_id=client_id, foreign_id="o",
                            currency="BTC", status="confirmed", created_at=now, updated_at=now)
                session.add(page)
                session.flush()
            for n in range(refunds_each):
                for client_id in (A, B):
                    refund = Refund(
                        page_id=hashlib.sha256(str(client_id).encode()).hexdigest()[:43],
                        merchant_id=client_id, foreign_id=f"rf{client_id}-{n}",
                        cause="overpaid", state="requested" if n % 2 == 0 else "confirmed",
                        currency="BTC", balance_currency="BTC", amount="0.001",
                        amount_received="0.0009", address=f"addr-{client_id}-{n}",
                        txid=None if n % 2 == 0 else f"{n:064x}", requested_at=now,
                        updated_at=now)
                    session.add(refund)
                    session.flush()
                    ids[client_id].append(refund.id)
    return ids


def test_a_person_sees_only_the_refunds_of_their_merchants(app: Flask) -> None:
    ids = _world(app, 4)
    with app.app_context():
        session = db.session()
        every = refund_queue.Filter(state=refund_queue.ALL)
        of_a = refund_queue.listing(session, [A], every)
        assert [r.id for r in of_a.rows] == sorted(ids[A], reverse=True)
        assert {r.merchant_name for r in of_a.rows} == {"Shop 11"}
        # Asking for B's refunds by filter or by id, as a person of A, finds nothing.
        assert refund_queue.listing(session, [A], refund_queue.Filter(
            state=refund_queue.ALL, merchant_id=B)).rows == []
        for refund_id in ids[B]:
            with pytest.raises(refund_queue.NotFound):
                refund_queue.one(session, refund_id, [A])
        assert refund_queue.of_page(session, refund_queue.one(
            session, ids[B][0], None).page_id, [A]) == []
        # An operator (None) sees both.
        assert len(refund_queue.listing(session, None, every).rows) == 8
        assert refund_queue.listing(session, [], every).rows == []


def test_the_default_is_the_refunds_waiting_for_a_decision(app: Flask) -> None:
    ids = _world(app, 4)
    with app.app_context():
        rows = refund_queue.listing(db.session(), [A], refund_queue.Filter()).rows
        assert [r.id for r in rows] == [ids[A][2], ids[A][0]]
        assert all(r.waiting and r.state == "requested" for r in rows)
        done = refund_queue.listing(db.session(), [A], refund_queue.Filter(state="confirmed"),
                                    testnet=True).rows
        assert [r.id for r in done] == [ids[A][3], ids[A][1]]
        assert all(r.explorer_url and r.txid and r.txid in r.explorer_url for r in done)


def test_pages_follow_by_keyset_in_one_statement_each(app: Flask) -> None:
    ids = _world(app, 25)
    seen: list[int] = []
    with app.app_context():
        session = db.session()
        after = None
        pages = 0
        while True:
            with statements(app) as ran:
                listing = refund_queue.listing(session, [A], refund_queue.Filter(
                    state=refund_queue.ALL), after, size=10)
            assert len(ran) == 1  # rows and merchant names together: no query per row
            seen += [r.id for r in listing.rows]
            pages += 1
            if listing.after is None:
                break
            after = listing.after
    assert seen == sorted(ids[A], reverse=True) and pages == 3
