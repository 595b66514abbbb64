"""A payment's story in the back office, over HTTP: the page, and its three acts (resend the
latest event, ask the processor, add a note), each a CSRF-checked POST answered with a 303,
audited, safe to send twice, and refused for a page of another merchant as for no page."""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import Shop
from kit.console import Person, add_person, csrf_of, sign_in
from kit.counters import count
from kit.deposits import LINK, open_link
from kit.invoices import TestShop, settle
from kit.live import LiveServer
from kit.payments import pay
from sqlalchemy import select

from checkout import db, merchants
from checkout.models import AuditEntry, Delivery, Invoice, Merchant, Page, PaymentNote
from checkout.sandbox import outbox
from checkout.services import deliveries, invoices, story

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'


@pytest.fixture
def page_id(app: Flask, live_server: LiveServer, webhook: Shop) -> str:
    """A deposit page of merchant 11, opened by its link and paid in full; the shop was told."""
    location = open_link(app.test_client(), {**LINK, "convert_to": None})
    page = location.rsplit("/", 1)[1]
    with app.app_context():
        address = db.session().get(Page, page).address  # type: ignore[union-attr]
    pay(live_server.url, address or "", "0.00123", "confirmed")
    outbox.send_due(app)
    with app.app_context():
        deliveries.run_due()
    return page


@pytest.fixture
def support(app: Flask, merchant: Merchant) -> Person:
    return add_person(app, "support@shop.example", roles={11: "support"})


@pytest.fixture
def signed(app: Flask, support: Person) -> tuple[FlaskClient, str]:
    client = app.test_client()
    return client, sign_in(app, client, support)


def done_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["done"][0]


def audit_actions(app: Flask) -> list[tuple[str, str | None, int | None, str]]:
    with app.app_context():
        return [(e.action, e.target, e.merchant_id, e.actor) for e in db.session().scalars(
            select(AuditEntry).where(AuditEntry.action.in_(story.ACTIONS))
            .order_by(AuditEntry.id)).all()]


def test_the_story_page_shows_the_payment_and_what_happened(
        app: Flask, page_id: str, signed: tuple[FlaskClient, str]) -> None:
    client, _ = signed
    answer = client.get(f"/console/payments/{page_id}")
    assert answer.status_code == 200
    text = answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    for shown in ("user-7", "0.00123", "Callback from the processor", "Signature verified",
                  "Event queued for the shop", "HTTP 200", "https://shop.example/back",
                  "this site does not see whether the customer followed it"):
        assert shown in html.unescape(text), shown
    # The raw callback, as received, escaped inside <pre>.
    assert "&#34;status&#34;:&#34;confirmed&#34;" in text or "&quot;status&quot;" in text
    assert text.count('name="csrf_token"') >= 4  # sign out, resend, ask, note


def test_a_viewer_reads_the_story_without_the_forms_of_acts_it_may_not_do(
        app: Flask, page_id: str) -> None:
    client = app.test_client()
    sign_in(app, client, add_person(app, "viewer@shop.example", roles={11: "viewer"}))
    text = client.get(f"/console/payments/{page_id}").text
    assert "/resend" not in text and "/ask" not in text and "/notes" not in text
    for action in ("resend", "ask", "notes"):
        token = csrf_of(text)
        assert client.post(f"/console/payments/{page_id}/{action}",
                           data={"csrf_token": token, "text": "hi"}).status_code == 403
    assert audit_actions(app) == []


@pytest.mark.parametrize("action", ["resend", "ask", "notes"])
def test_every_act_needs_the_csrf_token(app: Flask, page_id: str,
                                        signed: tuple[FlaskClient, str], action: str) -> None:
    client, _ = signed
    for token in (None, "0" * 64):
        data = {"text": "a note"} | ({"csrf_token": token} if token else {})
        assert client.post(f"/console/payments/{page_id}/{action}",
                           data=data).status_code == 400
    assert audit_actions(app) == [] and count(app, PaymentNote) == 0
    assert count(app, Delivery) == 1


def test_resend_queues_the_latest_event_once_and_the_shop_receives_it_signed(
        app: Flask, page_id: str, signed: tuple[FlaskClient, str], webhook: Shop,
        support: Person) -> None:
    client, token = signed
    url = f"/console/payments/{page_id}/resend"
    first = client.post(url, data={"csrf_token": token})
    assert first.status_code == 303 and done_of(first.headers["Location"]) == "resent"
    again = client.post(url, data={"csrf_token": token})  # a double click
    assert again.status_code == 303 and done_of(again.headers["Location"]) == "waiting"
    assert count(app, Delivery) == 2
    assert audit_actions(app) == [(story.RESENT, page_id, 11, support.email)]
    page = client.get(first.headers["Location"]).text
    assert "queued for the shop again" in page and 'role="status"' in page
    with app.app_context():
        deliveries.run_due()
    assert len(webhook.received) == 2
    assert webhook.received[1].body == webhook.received[0].body
    assert webhook.verifies(webhook.received[1])


def test_ask_asks_the_processor_and_shows_what_it_answered(
        app: Flask, page_id: str, signed: tuple[FlaskClient, str], support: Person) -> None:
    client, token = signed
    answer = client.post(f"/console/payments/{page_id}/ask", data={"csrf_token": token})
    assert answer.status_code == 303 and done_of(answer.headers["Location"]) == "asked"
    assert audit_actions(app) == [(story.ASKED, page_id, 11, support.email)]
    page = html.unescape(client.get(answer.headers["Location"]).text)
    assert f"{support.email} asked the processor" in page
    assert "confirmed" in page and "a replay: applied before" in page


def test_ask_says_so_when_the_processor_cannot_be_reached(
        app: Flask, page_id: str, signed: tuple[FlaskClient, str]) -> None:
    client, token = signed
    app.config["PROCESSOR_URL"] = "http://127.0.0.1:9"  # nothing listens there
    answer = client.post(f"/console/payments/{page_id}/ask", data={"csrf_token": token})
    assert answer.status_code == 303 and done_of(answer.headers["Location"]) == "unavailable"
    assert [a[0] for a in audit_actions(app)] == [story.ASKED]
    assert "could not be asked now" in client.get(answer.headers["Location"]).text


def test_a_note_is_added_once_shown_escaped_and_audited(
        app: Flask, page_id: str, signed: tuple[FlaskClient, str], support: Person) -> None:
    client, token = signed
    url = f"/console/payments/{page_id}/notes"
    first = client.post(url, data={"csrf_token": token, "text": HOSTILE})
    assert first.status_code == 303 and done_of(first.headers["Location"]) == "noted"
    again = client.post(url, data={"csrf_token": token, "text": HOSTILE})
    assert done_of(again.headers["Location"]) == "repeated"
    assert count(app, PaymentNote) == 1
    assert audit_actions(app) == [(story.NOTED, page_id, 11, support.email)]
    page = client.get(first.headers["Location"]).text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert html.escape(HOSTILE, quote=False).replace('"', "&#34;") in page
    assert f"Note by {support.email}" in page


def test_a_bad_note_is_refused_and_loses_nothing(
        app: Flask, page_id: str, signed: tuple[FlaskClient, str]) -> None:
    client, token = signed
    long = "<b>" + "y" * 2000
    answer = client.post(f"/console/payments/{page_id}/notes",
                         data={"csrf_token": token, "text": long})
    assert answer.status_code == 400
    assert "at most 2000 characters" in answer.text
    assert html.escape(long, quote=False) in answer.text  # the text comes back to be cut
    assert client.post(f"/console/payments/{page_id}/notes",
                       data={"csrf_token": token, "text": "  "}).status_code == 400
    assert count(app, PaymentNote) == 0 and audit_actions(app) == []


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("POST", "/resend"),
                                                 ("POST", "/ask"), ("POST", "/notes")])
def test_a_page_of_another_merchant_is_answered_as_no_page(
        app: Flask, page_id: str, method: str, suffix: str) -> None:
    with app.app_context():
        merchants.add(merchants.NewMerchant(
            client_id=22, name="Other shop", key="key-22", secret="secret-22",
            return_hosts=("other.example",), frame_origins=(), webhook_url=None))
    client = app.test_client()
    token = sign_in(app, client, add_person(app, "owner@other.example", roles={22: "owner"}))
    answers = []
    for target in (page_id, "no-such-page-at-all"):
        path = f"/console/payments/{target}{suffix}"
        answer = (client.get(path) if method == "GET"
                  else client.post(path, data={"csrf_token": token, "text": "hi"}))
        answers.append((answer.status_code, answer.text.replace(target, "ID")))
    assert answers[0] == answers[1] and answers[0][0] == 404
    assert "user-7" not in answers[0][1]
    assert audit_actions(app) == [] and count(app, PaymentNote) == 0


def test_an_invoice_story_shows_its_request_and_its_quotes(
        app: Flask, live_server: LiveServer, webhook: Shop,
        signed: tuple[FlaskClient, str]) -> None:
    settle(app)  # the rates the currency picker offers
    data = TestShop(live_server.url).create().json()["data"]
    with app.app_context():
        invoice = db.session().get(Invoice, data["id"])
        assert invoice is not None
        page_id = invoice.page_id
        invoices.choose_currency(page_id, "BTC")
        quote = invoices.choose_currency(page_id, "LTC")
    client, _ = signed
    page = html.unescape(client.get(f"/console/payments/{page_id}").text)
    for shown in ("Opened through the API (invoices/create)", "Order 7", "buyer@example.com",
                  "Quoted: ", "Quoted again: ", f"{quote.sender_amount} LTC",
                  "https://shop.example/paid?order=7", "https://shop.example/failed?order=7"):
        assert shown in page, shown
