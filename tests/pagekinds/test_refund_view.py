"""The page model's `refund` part: what is owed back, each refund's state as the customer
sees it (with the txid's explorer link once on the chain), the underpaid page that stops
asking for the rest once its customer chose a refund, and the queries it costs: none for
refunds on a page that cannot owe. Payments arrive as the processor's signed callbacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from kit import direct_reads
from kit.deposits import open_link, send_deposit
from sqlalchemy import event, select

from checkout import clock, currencies, db, refund_rules
from checkout.models import Page, Refund
from checkout.pagekinds import deposit, page_model
from checkout.services import refunds
from checkout.services.refund_news import Change, move

pytestmark = pytest.mark.usefixtures("address", "fresh_rate")
WALLET = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
TXID = "ab" * 32


def page_paid(app: Flask, amount: str) -> str:
    page_id = open_link(app.test_client()).rsplit("/", 1)[1]
    assert send_deposit(app, 1, "confirmed", amount) == "applied"
    return page_id


def model_of(app: Flask, page_id: str) -> dict[str, Any]:
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None
        return dict(page_model(db.session(), page))


def ask(app: Flask, page_id: str, amount: str | None = None) -> int:
    with app.app_context():
        session = db.session()
        page = session.get(Page, page_id)
        assert page is not None
        refund = refunds.request(session, page, WALLET, None,
                                 None if amount is None else Decimal(amount))
        session.commit()
        return refund.id


def advance(app: Flask, refund_id: int, *states: str, **change: Any) -> None:
    with app.app_context():
        session = db.session()
        refund = session.get(Refund, refund_id)
        assert refund is not None
        for state in states:
            assert move(session, refund, state, clock.now(), Change(**change))
        session.commit()


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    sent: list[str] = []
    engine = app.extensions[db.EXTENSION + ".engine"]

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with direct_reads.heard(engine, sent.append):
            yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_page_paid_as_asked_owes_nothing_and_reads_no_refunds(app: Flask) -> None:
    page_id = page_paid(app, "0.00123")
    with statements(app) as sent:
        model = model_of(app, page_id)
    assert model["refund"] is None
    assert not [s for s in sent if "refunds" in s.lower()], sent


def test_an_overpaid_page_reads_its_refunds_in_one_query(app: Flask) -> None:
    page_id = page_paid(app, "0.002")
    with statements(app) as sent:
        model = model_of(app, page_id)
    assert len([s for s in sent if "refunds" in s.lower()]) == 1, sent
    owed = model["refund"]["owed"]
    fee = refund_rules.FEE_RESERVE["BTC"]
    assert owed == {"cause": "overpaid", "currency": "BTC", "amount": "0.00077",
                    "receive": str(Decimal("0.00077") - fee), "fee": str(fee),
                    "minimum": owed["minimum"], "too_small": False}


def test_each_state_reaches_the_model_with_the_txid_and_its_link_at_the_end(
        app: Flask) -> None:
    page_id = page_paid(app, "0.002")
    refund_id = ask(app, page_id)
    part = model_of(app, page_id)["refund"]
    assert part["owed"] is None  # all of it is held by the request
    [shown] = part["refunds"]
    assert shown["state"] == "requested" and shown["amount"] == "0.00077"
    assert shown["amount_received"] == "0.00067" and shown["address"] == WALLET
    assert shown["txid"] is None and shown["explorer_url"] is None
    assert shown["requested_at"].endswith("Z") and "." not in shown["requested_at"]
    for state in ("approved", "sent", "pending"):
        advance(app, refund_id, state)
        assert model_of(app, page_id)["refund"]["refunds"][0]["state"] == state
    advance(app, refund_id, "confirmed", txid=TXID, amount_received="0.00067")
    [done] = model_of(app, page_id)["refund"]["refunds"]
    assert done["state"] == "confirmed" and done["txid"] == TXID
    assert done["explorer_url"] == currencies.explorer_url("BTC", TXID, testnet=True)


def test_a_failed_refund_owes_the_money_again_with_the_reason(app: Flask) -> None:
    page_id = page_paid(app, "0.002")
    refund_id = ask(app, page_id)
    advance(app, refund_id, "approved")
    advance(app, refund_id, "failed", reason="address: invalid")
    part = model_of(app, page_id)["refund"]
    assert part["refunds"][0]["reason"] == "address: invalid"
    assert Decimal(part["owed"]["amount"]) == Decimal("0.00077")


def test_the_model_is_stored_anew_on_every_refund_move(app: Flask) -> None:
    page_id = page_paid(app, "0.002")
    refund_id = ask(app, page_id)
    advance(app, refund_id, "rejected", reason="Paid in cash")
    client = app.test_client()
    [shown] = client.get(f"/p/{page_id}/status").get_json()["refund"]["refunds"]
    assert (shown["state"], shown["reason"]) == ("rejected", "Paid in cash")


def test_an_underpaid_page_stops_asking_for_the_rest_once_a_refund_is_asked_for(
        app: Flask) -> None:
    page_id = page_paid(app, "0.001")
    before = model_of(app, page_id)
    assert (before["phase"], before["pay_now"]) == ("partial", True)
    assert before["refund"]["owed"]["cause"] == "underpaid"
    refund_id = ask(app, page_id)
    model = model_of(app, page_id)
    assert (model["phase"], model["pay_now"], model["amount_due"]) == ("refunding", False, None)
    advance(app, refund_id, "approved", "sent")
    assert model_of(app, page_id)["phase"] == "refunding"
    advance(app, refund_id, "confirmed", txid=TXID)
    assert model_of(app, page_id)["phase"] == "refunded"


@pytest.mark.parametrize("ending", ["rejected", "cancelled"])
def test_an_underpaid_page_asks_for_the_rest_again_when_the_refund_ends_without_paying(
        app: Flask, ending: str) -> None:
    page_id = page_paid(app, "0.001")
    refund_id = ask(app, page_id)
    advance(app, refund_id, ending, reason="no")
    model = model_of(app, page_id)
    assert (model["phase"], model["pay_now"]) == ("partial", True)
    assert model["refund"]["owed"] is not None


def test_phase_of_follows_the_refunds_only_on_an_underpaid_page() -> None:
    asked, paid = Decimal("0.00123"), Decimal("0.001")
    assert deposit.phase_of("confirmed", "underpaid", asked, paid,
                            refunding={"failed", "sent"}) == "refunding"
    assert deposit.phase_of("confirmed", "underpaid", asked, paid,
                            refunding={"failed"}) == "partial"
    assert deposit.phase_of("confirmed", "overpaid", asked, Decimal("0.002"),
                            refunding={"requested"}) == "overpaid"


def test_a_refund_too_small_to_send_is_said_so(app: Flask) -> None:
    page_id = page_paid(app, "0.00128")  # 0.00005 over: the fee reserve takes it all
    owed = model_of(app, page_id)["refund"]["owed"]
    assert owed["too_small"] is True and owed["receive"] is None
    with app.app_context():
        assert db.session().scalars(select(Refund)).all() == []
