"""Never twice, never too much: whatever happens around a refund (two people approving at once,
two workers sending at once, the processor's callback replayed, its answer lost on the way, a
worker killed in the middle of the call) the processor holds one withdrawal for it; and however
refunds are asked for, decided and failed, those holding money never exceed what the page owes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import refund_flow as flow
from kit.callbacks import signed_headers
from kit.console import Clock, Person, add_person
from kit.invoices import advance_sandbox, settle
from kit.live import LiveServer, wait_until
from kit.proxies import DROP, HOLD, between
from sqlalchemy import delete, select

from checkout import clock, db, refund_rules
from checkout.models import AuditEntry, Callback, Delivery, Merchant, Page, Refund
from checkout.pagekinds import owed
from checkout.sandbox import operations as sandbox_operations
from checkout.services import refund_news, refunds

ROOT = Path(__file__).resolve().parents[2]


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; each result, or the exception raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 (the test reads what each call ended with)
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def in_context(app: Flask, call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with app.app_context():
            try:
                return call()
            finally:
                db.session().rollback()
    return run


def approving(app: Flask, refund_id: int, person: Person) -> Callable[[], Any]:
    def approve() -> str:
        session = db.session()
        refunds.approve(session, refund_id, user_id=person.id, actor=person.email,
                        merchant_ids=[11])
        session.commit()
        return "approved"
    return in_context(app, approve)


def test_two_people_approving_at_once_make_one_approval(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id = flow.overpaid_page(app, client, live_server)
    refund_id = flow.request(app, page_id)
    owner = add_person(app, "owner@shop.example", roles={11: "owner"})
    admin = add_person(app, "admin@shop.example", roles={11: "admin"})
    results = at_once(approving(app, refund_id, owner), approving(app, refund_id, admin))
    assert sorted(map(str, results)) == ["approved", refunds.DECIDED]
    with app.app_context():
        approvals = db.session().scalars(select(AuditEntry.id).where(
            AuditEntry.action == "refund.approve")).all()
    assert len(approvals) == 1
    assert [e["status"] for e in flow.refund_events(app)] == ["requested", "approved"]


def test_two_workers_sending_at_once_make_one_withdrawal(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id, refund_id = flow.approved_refund(app, client, live_server)
    results = at_once(*(in_context(app, lambda: refunds.send(refund_id)) for _ in range(2)))
    assert sorted(results) == [refunds.BUSY, refunds.SENT]
    assert flow.withdrawals(app, flow.row(app, refund_id).foreign_id) == 1


def test_a_replayed_withdrawal_callback_moves_nothing_and_tells_the_shop_nothing(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id, refund_id = flow.approved_refund(app, client, live_server)
    with app.app_context():
        refunds.send(refund_id)
    advance_sandbox(live_server.url, 3600)
    settle(app)
    assert flow.row(app, refund_id).state == "confirmed"
    with app.app_context():
        confirmed = db.session().scalars(select(Callback.body).where(
            Callback.type == "withdrawal", Callback.status == "confirmed")).one()
        deliveries_before = len(db.session().scalars(select(Delivery.id)).all())
    for _ in range(2):
        answer = client.post("/callbacks/coinspaid", data=confirmed,
                             headers=signed_headers(confirmed))
        assert answer.status_code == 200
    with app.app_context():
        replays = db.session().scalars(select(Callback.outcome).where(
            Callback.type == "withdrawal", Callback.status == "confirmed")).all()
        assert len(db.session().scalars(select(Delivery.id)).all()) == deliveries_before
    assert sorted(replays) == ["applied", "duplicate", "duplicate"]
    assert [e["status"] for e in flow.refund_events(app)].count("confirmed") == 1


def test_a_withdrawal_whose_answer_was_lost_is_never_sent_twice(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    """The processor made the withdrawal but its answer never arrived: the refund waits out
    its lease, is sent again under the same foreign_id, which the processor refuses as
    taken, and the site asks it what became of the first."""
    page_id, refund_id = flow.approved_refund(app, client, live_server)
    with between(app, live_server.url, "/withdrawal/crypto", DROP) as proxy, \
            app.app_context():
        assert refunds.send(refund_id) == refunds.LATER
        assert refunds.send_due() == 0  # inside its lease: not sent again
    assert proxy.forwarded == 1
    waiting = flow.row(app, refund_id)
    assert waiting.state == "approved" and waiting.send_started_at is not None
    assert flow.withdrawals(app, waiting.foreign_id) == 1
    after_the_lease(app)
    with app.app_context():
        assert refunds.send_due() == 1
    assert flow.row(app, refund_id).state == "sent"
    advance_sandbox(live_server.url, 3600)
    settle(app)
    assert flow.row(app, refund_id).state == "confirmed"
    assert flow.withdrawals(app, waiting.foreign_id) == 1


def after_the_lease(app: Flask) -> None:
    moment = clock.system_now() + refunds.SEND_LEASE + timedelta(seconds=1)
    app.config["CLOCK"] = lambda: moment


SEND_IN_A_PROCESS = """
import sys
from checkout import create_app
from checkout.services import refunds
app = create_app({"DATABASE_URL": sys.argv[1], "PROCESSOR_URL": sys.argv[2],
                  "INSTANCE_PATH": sys.argv[3], "SANDBOX": True, "TESTING": True,
                  "SECRET_KEY": "a worker's"})
with app.app_context():
    refunds.send(int(sys.argv[4]))
"""


def test_a_worker_killed_in_the_middle_of_the_call_leaves_one_withdrawal(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant,
        tmp_path: Path) -> None:
    page_id, refund_id = flow.approved_refund(app, client, live_server)
    with between(app, live_server.url, "/withdrawal/crypto", HOLD) as proxy:
        worker = subprocess.Popen(
            [sys.executable, "-c", SEND_IN_A_PROCESS, app.config["DATABASE_URL"],
             proxy.processor_url, str(tmp_path / "worker"), str(refund_id)],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            # The processor has the withdrawal; its answer is held: the worker is in the call.
            wait_until(lambda: proxy.forwarded == 1, what="the worker's withdrawal call")
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(30)
    killed = flow.row(app, refund_id)
    assert killed.state == "approved" and killed.send_started_at is not None
    assert flow.withdrawals(app, killed.foreign_id) == 1
    after_the_lease(app)
    with app.app_context():
        assert refunds.send_due() == 1
    advance_sandbox(live_server.url, 3600)
    settle(app)
    assert flow.row(app, refund_id).state == "confirmed"
    assert flow.withdrawals(app, killed.foreign_id) == 1


# ---------------------------------------------------------------------------------------------
# Never too much: a property of every sequence of requests, decisions and outcomes

ACTS = st.lists(st.tuples(
    st.sampled_from(["ask", "ask", "approve", "reject", "cancel", "fail", "confirm"]),
    st.integers(min_value=0, max_value=4),
    st.decimals(min_value=Decimal("0.00001"), max_value=Decimal("0.001"), places=5)),
    max_size=12)


@pytest.fixture
def owing_page(app: Flask, client: FlaskClient, live_server: LiveServer,
               merchant: Merchant) -> tuple[str, Person]:
    page_id = flow.overpaid_page(app, client, live_server)
    return page_id, add_person(app, "owner@shop.example", roles={11: "owner"})


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(acts=ACTS)
def test_refunds_holding_money_never_exceed_what_the_page_owes(
        app: Flask, owing_page: tuple[str, Person],
        acts: list[tuple[str, int, Decimal]]) -> None:
    page_id, person = owing_page
    Clock(app)
    with app.app_context():
        session = db.session()
        session.execute(delete(Refund))
        session.commit()
        page = session.get(Page, page_id)
        assert page is not None
        due = owed.owed(session, page)
        assert due is not None
        for act, pick, amount in acts:
            ids = session.scalars(select(Refund.id).order_by(Refund.id)).all()
            target = ids[pick % len(ids)] if ids else None
            try:
                apply_act(session, page, person, act, target, amount)
                session.commit()
            except refunds.Refused:
                session.rollback()
            held = refund_rules.held(owed.held(session, page_id))
            assert held <= due.total
            now_owed = owed.owed(session, page)
            assert now_owed is not None and now_owed.left == due.total - held


def apply_act(session: Any, page: Page, person: Person, act: str, target: int | None,
              amount: Decimal) -> None:
    if act == "ask":
        refunds.request(session, page, flow.WALLET, None, amount)
        return
    if target is None:
        return
    if act == "approve":
        refunds.approve(session, target, user_id=person.id, actor=person.email,
                        merchant_ids=[11])
    elif act == "reject":
        refunds.reject(session, target, "no", user_id=person.id, actor=person.email,
                       merchant_ids=[11])
    elif act == "cancel":
        refunds.cancel(session, page, target)
    else:  # the processor's word on a withdrawal sent
        refund = session.get(Refund, target)
        new = refund_rules.FAILED if act == "fail" else refund_rules.CONFIRMED
        refund_news.move(session, refund, refund_rules.SENT, clock.now())
        refund_news.move(session, refund, new, clock.now())


def test_a_refund_whose_callback_never_came_is_asked_about(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    """The processor confirmed the withdrawal but its callback was lost: once the refund has
    been quiet for a while, the worker asks the processor and learns its end."""
    page_id, refund_id = flow.approved_refund(app, client, live_server)
    with app.app_context():
        refunds.send(refund_id)
    advance_sandbox(live_server.url, 3600)
    assert sandbox_operations.confirm_due(app) >= 1  # confirmed there; no callback sent
    with app.app_context():
        assert refunds.send_due() == 0  # not quiet for long yet: nothing asked
    assert flow.row(app, refund_id).state == "sent"
    moment = clock.system_now() + refunds.ASK_AFTER + timedelta(seconds=1)
    app.config["CLOCK"] = lambda: moment
    with app.app_context():
        assert refunds.send_due() == 1
    done = flow.row(app, refund_id)
    assert done.state == "confirmed" and done.txid
