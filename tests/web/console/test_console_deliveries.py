"""Deliveries and flagged callbacks in the back office, over HTTP: what the lists show, the
acts (CSRF, 303, audited, a second click harmless), hostile filters, and nothing of another
merchant by any id."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import (
    OUR_FOREIGN_ID,
    Shop,
    deposit_body,
    invoice_body,
    issue_address,
    issue_invoice,
    post,
    running_shop,
    use_shop,
)
from kit.console import Person, add_person, csrf_of, sign_in
from sqlalchemy import select, update

from checkout import db, merchants
from checkout.models import AuditEntry, Delivery, Merchant
from checkout.services import deliveries

A, B = 11, 22


@pytest.fixture
def other(app: Flask, merchant: Merchant) -> Merchant:
    with app.app_context():
        return merchants.add(merchants.NewMerchant(
            client_id=B, name="Other Shop", key="key-b", secret="secret-b",
            return_hosts=("b.example",), frame_origins=(), webhook_url="http://127.0.0.1:9/b"))


@pytest.fixture
def shop(app: Flask, merchant: Merchant) -> Shop:
    with running_shop() as the_shop:
        use_shop(app, the_shop, A)
        yield the_shop


def developer(app: Flask) -> Person:
    return add_person(app, "dev@a.example", roles={A: "developer"})


def a_failing_delivery(app: Flask, client: FlaskClient, shop: Shop,
                       processor_id: int = 1) -> tuple[int, str]:
    """A real deposit callback for our page, forwarded to a shop that answered 500."""
    address, foreign_id = f"bc1-ours-{processor_id}", f"user-{processor_id}"
    _, page_id = issue_address(app, address=address, foreign_id=foreign_id)
    assert post(client, deposit_body(processor_id, "confirmed", address=address,
                                     foreign_id=foreign_id)).status_code == 200
    shop.script = [500]
    with app.app_context():
        deliveries.run_due()
    with app.app_context():
        row = db.session().scalars(select(Delivery).order_by(Delivery.id.desc())).first()
        assert row is not None and row.last_error == "HTTP 500"
        return row.id, page_id


def audit_of(app: Flask) -> list[AuditEntry]:
    """The entries of acts on deliveries (signing in is audited too, and not counted here)."""
    with app.app_context():
        return list(db.session().scalars(
            select(AuditEntry).where(AuditEntry.action.like("deliver%"))
            .order_by(AuditEntry.id)).all())


def state_of(app: Flask, delivery_id: int) -> tuple[str, int]:
    with app.app_context():
        row = db.session().get(Delivery, delivery_id)
        assert row is not None
        return row.state, row.attempts


def test_the_list_shows_a_failing_delivery_with_its_payment_and_health(
        app: Flask, client: FlaskClient, shop: Shop) -> None:
    delivery_id, page_id = a_failing_delivery(app, client, shop)
    browser = app.test_client()
    sign_in(app, browser, add_person(app, "viewer@a.example", roles={A: "viewer"}))
    html = browser.get("/console/deliveries?state=failing").text
    assert f'href="/console/payments/{page_id}"' in html
    assert "HTTP 500" in html and "Failing" in html
    # The health: one tried, none delivered, the error, and a viewer has no buttons.
    assert "0 %" in html and "(0/1)" in html
    assert "Retry now" not in html and "Pause" not in html
    assert "No deliveries match." in browser.get("/console/deliveries?state=delivered").text


def test_an_invoice_event_links_to_the_invoices_page(
        app: Flask, client: FlaskClient, shop: Shop) -> None:
    page_id = issue_invoice(app, 88, "inv-88")
    assert post(client, invoice_body(88, "confirmed", "inv-88")).status_code == 200
    browser = app.test_client()
    sign_in(app, browser, add_person(app, "viewer@a.example", roles={A: "viewer"}))
    html = browser.get("/console/deliveries?state=waiting").text
    assert f'href="/console/payments/{page_id}"' in html


def test_an_error_text_is_shown_escaped(app: Flask, client: FlaskClient, shop: Shop) -> None:
    delivery_id, _ = a_failing_delivery(app, client, shop)
    with app.app_context(), db.transaction() as session:
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(
            last_error="<img src=x onerror=alert(1)>"))
    browser = app.test_client()
    sign_in(app, browser, add_person(app, "viewer@a.example", roles={A: "viewer"}))
    html = browser.get("/console/deliveries").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html


def test_a_retry_sends_now_is_audited_and_answers_303(
        app: Flask, client: FlaskClient, shop: Shop) -> None:
    delivery_id, _ = a_failing_delivery(app, client, shop)
    browser = app.test_client()
    person = developer(app)
    token = sign_in(app, browser, person)
    answer = browser.post(f"/console/deliveries/{delivery_id}/retry",
                          data={"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/console/deliveries?merchant={A}&done=retried"
    assert len(shop.received) == 2
    assert state_of(app, delivery_id) == ("delivered", 2)
    [entry] = audit_of(app)
    assert (entry.action, entry.actor, entry.user_id, entry.merchant_id, entry.target) == (
        "delivery.retry", person.email, person.id, A, f"delivery {delivery_id}")
    assert entry.address == "127.0.0.1"
    assert "The delivery was sent again and the shop accepted it." in browser.get(
        answer.headers["Location"]).text


def test_acts_without_the_form_token_change_nothing(
        app: Flask, client: FlaskClient, shop: Shop) -> None:
    delivery_id, _ = a_failing_delivery(app, client, shop)
    browser = app.test_client()
    sign_in(app, browser, developer(app))
    for path in (f"/console/deliveries/{delivery_id}/retry",
                 f"/console/deliveries/merchants/{A}/pause",
                 f"/console/deliveries/replay?merchant={A}&state=failing&count=1"):
        assert browser.post(path, data={}).status_code == 400, path
        assert browser.post(path, data={"csrf_token": "0" * 64}).status_code == 400, path
    assert len(shop.received) == 1
    assert state_of(app, delivery_id) == ("pending", 1)
    assert audit_of(app) == []
    with app.app_context():
        assert db.session().get(Merchant, A).deliveries_paused_at is None  # type: ignore[union-attr]


def test_pause_twice_is_one_pause_and_resume_shows_in_the_health(
        app: Flask, client: FlaskClient, shop: Shop) -> None:
    browser = app.test_client()
    token = sign_in(app, browser, developer(app))
    first = browser.post(f"/console/deliveries/merchants/{A}/pause", data={"csrf_token": token})
    again = browser.post(f"/console/deliveries/merchants/{A}/pause", data={"csrf_token": token})
    assert (first.status_code, again.status_code) == (303, 303)
    assert first.headers["Location"].endswith("done=paused")
    assert again.headers["Location"].endswith("done=unchanged")
    html = browser.get("/console/deliveries").text
    assert "Paused" in html and "Resume" in html
    browser.post(f"/console/deliveries/merchants/{A}/resume", data={"csrf_token": token})
    assert "Running" in browser.get("/console/deliveries").text
    assert [e.action for e in audit_of(app)] == ["deliveries.pause", "deliveries.resume"]


def _give_up(app: Flask, ids: list[int]) -> None:
    with app.app_context(), db.transaction() as session:
        session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(
            state=deliveries.FAILED))


def test_a_replay_shows_its_count_first_and_a_second_post_replays_nothing_more(
        app: Flask, client: FlaskClient, shop: Shop) -> None:
    ids = [a_failing_delivery(app, client, shop, n)[0] for n in (1, 2)]
    _give_up(app, ids)
    browser = app.test_client()
    sign_in(app, browser, developer(app))
    preview = browser.get(f"/console/deliveries/replay?merchant={A}&state=given_up")
    assert preview.status_code == 200
    assert "2 deliveries will be sent again now." in preview.text
    assert re.search(r'name="count" value="2"', preview.text)
    form = {"csrf_token": csrf_of(preview.text), "merchant": str(A), "state": "given_up",
            "from": "", "to": "", "count": "2"}
    assert [state_of(app, i)[0] for i in ids] == ["failed", "failed"]  # the preview sent nothing
    done = browser.post("/console/deliveries/replay", data=form)
    assert done.status_code == 303
    assert done.headers["Location"] == f"/console/deliveries?merchant={A}&done=replayed&count=2"
    again = browser.post("/console/deliveries/replay", data=form)
    assert again.headers["Location"].endswith("count=0")
    assert [state_of(app, i) for i in ids] == [("pending", 0)] * 2
    with app.app_context():
        deliveries.run_due()
    assert len(shop.received) == 2 + 2
    assert [(e.action, e.target) for e in audit_of(app)] == [
        ("delivery.replay", "2 deliveries"), ("delivery.replay", "0 deliveries")]


def test_a_replay_refuses_more_than_was_confirmed(
        app: Flask, client: FlaskClient, shop: Shop) -> None:
    ids = [a_failing_delivery(app, client, shop, n)[0] for n in (1, 2)]
    _give_up(app, ids)
    browser = app.test_client()
    token = sign_in(app, browser, developer(app))
    answer = browser.post("/console/deliveries/replay", data={
        "csrf_token": token, "merchant": str(A), "state": "given_up", "count": "1"})
    assert answer.status_code == 303
    assert "changed=1" in answer.headers["Location"]
    assert "More deliveries match now than you confirmed." in browser.get(
        answer.headers["Location"]).text
    assert [state_of(app, i)[0] for i in ids] == ["failed", "failed"]
    assert audit_of(app) == []


@pytest.mark.parametrize("query", [
    "merchant=abc", "merchant=-1", "merchant=0", "merchant=99999999999999999999",
    "state=%3Cscript%3Ealert(1)%3C/script%3E", "state=pending", "from=2026-13-45",
    "to=yesterday", "from=2026-1-1", "after=1e3", "after=%00", "merchant=1%27%20OR%201=1",
])
def test_hostile_filters_get_a_clear_error_and_nothing_unescaped(
        app: Flask, shop: Shop, query: str) -> None:
    browser = app.test_client()
    sign_in(app, browser, developer(app))
    for path in ("/console/deliveries", "/console/flagged"):
        answer = browser.get(f"{path}?{query}")
        if path.endswith("flagged") and query.startswith("state="):
            assert answer.status_code == 200  # no such filter there: ignored
            continue
        assert answer.status_code == 400, (path, query)
        assert "That filter is not valid." in answer.text
        assert "<script>" not in answer.text


def test_nothing_of_another_merchant_by_any_id(
        app: Flask, client: FlaskClient, shop: Shop, other: Merchant) -> None:
    delivery_id, page_id = a_failing_delivery(app, client, shop)
    browser = app.test_client()
    token = sign_in(app, browser, add_person(app, "owner@b.example", roles={B: "owner"}))
    form = {"csrf_token": token}
    assert browser.post(f"/console/deliveries/{delivery_id}/retry", data=form).status_code == 404
    assert browser.post(f"/console/deliveries/{delivery_id + 1000}/retry",
                        data=form).status_code == 404
    for act in ("pause", "resume"):
        assert browser.post(f"/console/deliveries/merchants/{A}/{act}",
                            data=form).status_code == 404
    assert browser.get(f"/console/deliveries/replay?merchant={A}&state=failing"
                       ).status_code == 404
    assert browser.post("/console/deliveries/replay", data={
        **form, "merchant": str(A), "state": "failing", "count": "5"}).status_code == 404
    for path in (f"/console/deliveries?merchant={A}", "/console/deliveries?state=failing",
                 f"/console/flagged?merchant={A}"):
        html = browser.get(path).text
        assert page_id not in html and "HTTP 500" not in html and "Shop (11)" not in html
    assert len(shop.received) == 1 and audit_of(app) == []
    with app.app_context():
        assert db.session().get(Merchant, A).deliveries_paused_at is None  # type: ignore[union-attr]


def test_flagged_callbacks_say_what_the_site_did_and_keep_the_body_escaped(
        app: Flask, client: FlaskClient, shop: Shop) -> None:
    issue_address(app, foreign_id=OUR_FOREIGN_ID)
    post(client, deposit_body(1, "confirmed"))
    post(client, deposit_body(1, "confirmed"))  # a replay
    post(client, deposit_body(2, "confirmed", tag="<script>alert(1)</script>"))
    post(client, deposit_body(3, "confirmed", address="bc1-never-issued"))
    browser = app.test_client()
    sign_in(app, browser, add_person(app, "viewer@a.example", roles={A: "viewer"}))
    html = browser.get("/console/flagged").text
    assert "A replay: this news was applied before." in html
    assert "The tag differs from the tag we issued for this address." in html
    assert "An address or invoice this site never issued" in html
    assert "Stored only, not applied" in html and "Forwarded only" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert html.count("<details>") == 3  # the applied one is not flagged
    german = browser.get("/console/flagged?lang=de").text
    assert "Das Tag weicht von dem Tag ab, das wir für diese Adresse ausgegeben haben." in german
    assert "No flagged callbacks match." in browser.get(
        "/console/flagged?from=2999-01-01").text
