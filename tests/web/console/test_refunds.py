"""Refunds in the back office: the list of those waiting (and the others), one refund's
decision: approve with the code asked again, then the one withdrawal through the embedded
sandbox; reject with a reason the customer reads. Every decision audited, and of two people
deciding at once, one decides."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.console import Clock, Person, add_person, csrf_of, sign_in
from kit.live import LiveServer
from kit.refunds import overpaid_page, requested_refund, state_of
from markupsafe import escape
from sqlalchemy import func, select, update

from checkout import db, merchants
from checkout.models import AuditEntry, Merchant
from checkout.sandbox import store as sandbox_store
from checkout.services import refunds as decisions_service


@pytest.fixture
def waiting(app: Flask, client: FlaskClient, live_server: LiveServer,
            merchant: Merchant) -> int:
    """A refund of merchant 11's overpaid page, waiting for a decision."""
    return requested_refund(app, overpaid_page(app, client, live_server))


def withdrawals(app: Flask) -> int:
    with sandbox_store.transaction(app) as s:
        return int(s.scalar(select(func.count()).select_from(sandbox_store.Operation).where(
            sandbox_store.Operation.scope == "withdrawal")) or 0)


def decisions(app: Flask) -> list[tuple[str, str, dict[str, object]]]:
    with app.app_context():
        rows = db.session().scalars(select(AuditEntry).where(
            AuditEntry.action.like("refund.%")).order_by(AuditEntry.id)).all()
        return [(r.action, r.actor, r.address) for r in rows]  # type: ignore[misc]


def test_the_list_shows_the_waiting_refunds_and_filters_by_state_and_merchant(
        app: Flask, client: FlaskClient, waiting: int, owner: Person, tick: Clock) -> None:
    sign_in(app, client, owner)
    page = client.get("/console/refunds")
    assert page.status_code == 200
    refund = state_of(app, waiting)
    assert f"/console/refunds/{waiting}" in page.text
    assert refund.address in page.text and f"/console/payments/{refund.page_id}" in page.text
    assert "0.00077 BTC" in page.text and "0.00067 BTC" in page.text
    # Another state shows none of them; "all" shows it; another merchant's filter none.
    assert f"/console/refunds/{waiting}" not in client.get("/console/refunds?state=sent").text
    assert f"/console/refunds/{waiting}" in client.get("/console/refunds?state=all").text
    assert f"/console/refunds/{waiting}" in client.get("/console/refunds?merchant=11").text
    assert f"/console/refunds/{waiting}" not in client.get(
        "/console/refunds?state=all&merchant=22").text
    for bad in ("state=paid", "merchant=x", "merchant=-1", "after=1e3"):
        assert client.get(f"/console/refunds?{bad}").status_code == 400


def test_approving_with_the_code_sends_one_withdrawal_and_says_so(
        app: Flask, client: FlaskClient, waiting: int, owner: Person, tick: Clock) -> None:
    sign_in(app, client, owner)
    form = client.get(f"/console/refunds/{waiting}")
    assert 'name="confirm_code"' in form.text
    answer = client.post(f"/console/refunds/{waiting}/approve", data={
        "csrf_token": csrf_of(form.text), "confirm_code": tick.code(owner)})
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/console/refunds/{waiting}?done=sent")
    shown = client.get(answer.headers["Location"])
    assert "Approved and sent" in shown.text and "approve-code" not in shown.text
    refund = state_of(app, waiting)
    assert refund.state == "sent" and refund.decided_by == owner.id
    assert withdrawals(app) == 1
    assert decisions(app) == [("refund.approve", owner.email, "127.0.0.1")]


@pytest.mark.parametrize("code", ["", "000000", "12345", "١٢٣٤٥٦", "1" * 20])
def test_a_wrong_code_is_refused_and_nothing_moves(
        app: Flask, client: FlaskClient, waiting: int, owner: Person, tick: Clock,
        code: str) -> None:
    sign_in(app, client, owner)
    form = client.get(f"/console/refunds/{waiting}")
    answer = client.post(f"/console/refunds/{waiting}/approve", data={
        "csrf_token": csrf_of(form.text), "confirm_code": code})
    assert answer.status_code == 422
    assert "That code is not right: nothing was changed." in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert state_of(app, waiting).state == "requested"
    assert withdrawals(app) == 0 and decisions(app) == []


def test_rejecting_needs_a_reason_which_the_customer_reads(
        app: Flask, client: FlaskClient, waiting: int, owner: Person, tick: Clock) -> None:
    sign_in(app, client, owner)
    form = client.get(f"/console/refunds/{waiting}")
    token = csrf_of(form.text)
    assert "The customer reads this on the payment page" in form.text
    for bad in ("", "   ", "x" * 501, "no\x00way"):
        answer = client.post(f"/console/refunds/{waiting}/reject",
                             data={"csrf_token": token, "reason": bad})
        assert answer.status_code == 422 and 'aria-invalid="true"' in answer.text
    assert state_of(app, waiting).state == "requested" and decisions(app) == []
    reason = "The order was cancelled and paid back by bank transfer <b>already</b>."
    answer = client.post(f"/console/refunds/{waiting}/reject",
                         data={"csrf_token": token, "reason": f"  {reason}\n"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("done=rejected")
    refund = state_of(app, waiting)
    assert (refund.state, refund.reason) == ("rejected", reason)
    shown = client.get(answer.headers["Location"]).text
    assert "&lt;b&gt;already&lt;/b&gt;" in shown and "<b>already" not in shown
    assert withdrawals(app) == 0
    assert decisions(app) == [("refund.reject", owner.email, "127.0.0.1")]
    # Decided: no form is offered any more, and a late approval is told so.
    assert "approve-code" not in shown
    late = client.post(f"/console/refunds/{waiting}/approve",
                       data={"csrf_token": token, "confirm_code": tick.code(owner)})
    assert late.headers["Location"].endswith("done=decided")
    assert state_of(app, waiting).state == "rejected"


def test_two_people_approving_at_once_make_one_approval(
        app: Flask, waiting: int, owner: Person, tick: Clock) -> None:
    admin = add_person(app, "admin@shop.example", roles={11: "admin"})
    first, second = app.test_client(), app.test_client()
    sign_in(app, first, owner)
    sign_in(app, second, admin)
    # Both see it waiting, with the form, before either decides.
    forms = [c.get(f"/console/refunds/{waiting}") for c in (first, second)]
    assert all("approve-code" in f.text for f in forms)
    answers = [c.post(f"/console/refunds/{waiting}/approve", data={
        "csrf_token": csrf_of(f.text), "confirm_code": tick.code(p)})
        for c, f, p in ((first, forms[0], owner), (second, forms[1], admin))]
    assert answers[0].headers["Location"].endswith("done=sent")
    assert answers[1].headers["Location"].endswith("done=decided")
    assert "already decided by someone else" in second.get(answers[1].headers["Location"]).text
    assert withdrawals(app) == 1
    assert [d[:2] for d in decisions(app)] == [("refund.approve", owner.email)]


@pytest.mark.parametrize("role", ["support", "accountant", "viewer", "developer"])
def test_who_may_not_decide_sees_the_refund_but_no_form(
        app: Flask, client: FlaskClient, waiting: int, tick: Clock, role: str) -> None:
    person = add_person(app, f"{role}@shop.example", roles={11: role})
    token = sign_in(app, client, person)
    page = client.get(f"/console/refunds/{waiting}")
    assert page.status_code == 200 and "approve-code" not in page.text
    assert client.post(f"/console/refunds/{waiting}/approve", data={
        "csrf_token": token, "confirm_code": tick.code(person)}).status_code == 403
    assert client.post(f"/console/refunds/{waiting}/reject", data={
        "csrf_token": token, "reason": "no"}).status_code == 403
    assert state_of(app, waiting).state == "requested"


def test_the_payment_page_lists_its_refunds(
        app: Flask, client: FlaskClient, waiting: int, owner: Person, tick: Clock) -> None:
    sign_in(app, client, owner)
    page_id = state_of(app, waiting).page_id
    story = client.get(f"/console/payments/{page_id}").text
    assert f"/console/refunds/{waiting}" in story and "Waiting for a decision" in story


def test_when_the_processor_does_not_answer_the_approval_stands_and_is_sent_once_later(
        app: Flask, client: FlaskClient, waiting: int, owner: Person, tick: Clock) -> None:
    sign_in(app, client, owner)
    form = client.get(f"/console/refunds/{waiting}")
    app.config["PROCESSOR_URL"] = "http://127.0.0.1:9"  # nothing listens there
    answer = client.post(f"/console/refunds/{waiting}/approve", data={
        "csrf_token": csrf_of(form.text), "confirm_code": tick.code(owner)})
    assert answer.headers["Location"].endswith("done=later")
    assert "The processor did not answer" in client.get(answer.headers["Location"]).text
    assert state_of(app, waiting).state == "approved" and withdrawals(app) == 0
    # The processor is back; the worker sends it once the call's lease ran out, once.
    app.config["PROCESSOR_URL"] = None
    tick.advance(minutes=10)
    with app.app_context():
        assert decisions_service.send_due() == 1
        assert decisions_service.send_due() == 0
    assert state_of(app, waiting).state == "sent" and withdrawals(app) == 1


def test_a_user_of_another_merchant_finds_nothing_of_these_refunds(
        app: Flask, client: FlaskClient, waiting: int, tick: Clock) -> None:
    with app.app_context():
        merchants.add(merchants.NewMerchant(client_id=22, name="Other", key="key-22",
                                            secret="secret-22", return_hosts=(),
                                            frame_origins=(), webhook_url=None))
    other = add_person(app, "owner@other.example", roles={22: "owner"})
    token = sign_in(app, client, other)
    refund = state_of(app, waiting)
    for path in ("/console/refunds", "/console/refunds?state=all",
                 "/console/refunds?state=all&merchant=11"):
        page = client.get(path)
        assert page.status_code == 200 and refund.address not in page.text
        assert f"/console/refunds/{waiting}" not in page.text
    assert client.get(f"/console/refunds/{waiting}").status_code == 404
    for action, form in (("approve", {"confirm_code": tick.code(other)}),
                         ("reject", {"reason": "no"})):
        answer = client.post(f"/console/refunds/{waiting}/{action}",
                             data={"csrf_token": token, **form})
        assert answer.status_code == 404 and refund.address not in answer.text
    assert state_of(app, waiting).state == "requested" and withdrawals(app) == 0


def test_a_withdrawal_the_processor_refuses_fails_with_its_reason(
        app: Flask, client: FlaskClient, waiting: int, owner: Person, tick: Clock) -> None:
    # The merchant's balance at the processor spent elsewhere: the withdrawal is refused.
    with sandbox_store.transaction(app) as s:
        s.execute(update(sandbox_store.Balance).where(
            sandbox_store.Balance.client_id == 11).values(amount="0"))
    sign_in(app, client, owner)
    form = client.get(f"/console/refunds/{waiting}")
    answer = client.post(f"/console/refunds/{waiting}/approve", data={
        "csrf_token": csrf_of(form.text), "confirm_code": tick.code(owner)})
    assert answer.headers["Location"].endswith("done=failed")
    refund = state_of(app, waiting)
    assert refund.state == "failed" and refund.reason and "amount" in refund.reason
    shown = client.get(answer.headers["Location"]).text
    assert "the processor refused the withdrawal" in shown
    assert str(escape(refund.reason)) in shown
