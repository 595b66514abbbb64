"""A payment's story: everything that happened to a deposit page and to an invoice page, driven
through the embedded sandbox processor over real HTTP (the processor's signed callbacks, a
question by transactions/info, the shop's webhook answering for real), listed in time order,
in a fixed number of statements however many callbacks there are."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import Shop, running_shop, use_shop
from kit.console import add_person
from kit.counters import count
from kit.deposits import LINK, open_link
from kit.invoices import TestShop, advance_sandbox, settle
from kit.live import LiveServer
from kit.payments import pay
from sqlalchemy import event, select

from checkout import db
from checkout.models import (
    AuditEntry,
    Delivery,
    DeliveryAttempt,
    Invoice,
    Merchant,
    Page,
    PaymentNote,
)
from checkout.sandbox import outbox
from checkout.services import deliveries, invoices, story

OPEN_LINK = {**LINK, "convert_to": None}


@pytest.fixture
def webhook(app: Flask, merchant: Merchant) -> Iterator[Shop]:
    """The shop's webhook: refuses the first event once (500), then takes everything."""
    with running_shop(script=[500]) as shop:
        use_shop(app, shop)
        yield shop


@pytest.fixture
def actor(app: Flask, merchant: Merchant) -> story.Actor:
    person = add_person(app, "support@shop.example", roles={11: "support"})
    return story.Actor(person.id, person.email, "192.0.2.7")


def story_of(app: Flask, page_id: str, merchants: list[int] | None = None) -> story.Story:
    with app.app_context():
        return story.load(db.session(), page_id, merchants)


def kinds(told: story.Story) -> list[str]:
    return [type(entry).__name__ for entry in told.entries]


def send_deliveries(app: Flask) -> None:
    """The worker's first attempt at each due delivery, then one more of any it must retry
    (the retry schedule's minute is not waited for here)."""
    with app.app_context():
        deliveries.run_due()
        for row in db.session().scalars(select(Delivery).where(
                Delivery.state == deliveries.PENDING)).all():
            deliveries.retry_now(row.id)


def test_a_deposit_pages_story_tells_everything_in_time_order(
        app: Flask, client: FlaskClient, live_server: LiveServer, webhook: Shop,
        actor: story.Actor) -> None:
    page_id = open_link(client, OPEN_LINK).rsplit("/", 1)[1]
    with app.app_context():
        address = db.session().get(Page, page_id).address  # type: ignore[union-attr]
    assert address
    # The payer pays; the processor's callback is not sent yet (lost, so far).
    pay(live_server.url, address, "0.00123", "confirmed")
    with app.app_context():
        answers = story.ask(db.session(), page_id, [11], actor)
    assert [(a.status, a.outcome) for a in answers] == [("confirmed", "applied")]
    # The processor's own callback comes late: kept as a replay, never applied twice.
    assert outbox.send_due(app) >= 1
    send_deliveries(app)
    with app.app_context():
        story.add_note(db.session(), page_id, [11], actor, "Customer <b>called</b>")

    told = story_of(app, page_id, [11])
    assert told.facts.page.status == "confirmed"
    assert told.facts.return_urls == ("https://shop.example/back",)
    opened, *rest = told.entries
    assert isinstance(opened, story.Opened) and opened.via == "link"
    assert ("foreign_id", "user-7") in opened.said and ("amount", "0.00123") in opened.said
    heard = [e for e in rest if isinstance(e, story.Heard)]
    assert [(h.source, h.outcome) for h in heard] == [("reconcile", "applied"),
                                                      ("processor", "duplicate")]
    assert all('"confirmed"' in h.body for h in heard)
    [queued] = [e for e in rest if isinstance(e, story.Queued)]
    tries = [e for e in rest if isinstance(e, story.Tried)]
    assert [(t.delivery_id, t.status) for t in tries] == [(queued.delivery_id, 500),
                                                          (queued.delivery_id, 200)]
    assert tries[0].next_attempt_at is not None and tries[1].next_attempt_at is None
    assert queued.state == "delivered" and told.resendable == queued.delivery_id
    [asked] = [e for e in rest if isinstance(e, story.Acted)]
    assert asked.action == story.ASKED and asked.actor == actor.email
    assert asked.detail["answers"][0]["outcome"] == "applied"
    # The order things followed from each other: the answer before the replay and before
    # the event it queued, that event before its attempts, the note last.
    assert set(kinds(told)) == {"Opened", "Heard", "Acted", "Queued", "Tried", "Noted"}
    order = [rest.index(e) for e in (heard[0], queued, tries[0], tries[1])]
    assert order == sorted(order)
    assert rest.index(heard[0]) < rest.index(heard[1])
    assert isinstance(rest[-1], story.Noted) and rest[-1].text == "Customer <b>called</b>"
    moments = [entry.at for entry in told.entries]
    assert moments == sorted(moments)


def test_an_invoice_pages_story_has_its_quotes_callbacks_and_the_shops_events(
        app: Flask, live_server: LiveServer, webhook: Shop, actor: story.Actor) -> None:
    settle(app)  # the rates the currency picker offers
    data = TestShop(live_server.url).create().json()["data"]
    with app.app_context():
        invoice = db.session().get(Invoice, data["id"])
        assert invoice is not None
        page_id = invoice.page_id
        invoices.choose_currency(page_id, "BTC")
        quote = invoices.choose_currency(page_id, "LTC")  # a re-quote
    pay(live_server.url, quote.address or "", quote.sender_amount or "", None)
    settle(app)
    advance_sandbox(live_server.url, 120)  # the sandbox confirms after 10 s of its clock
    settle(app)
    send_deliveries(app)
    with app.app_context():
        answers = story.ask(db.session(), page_id, [11], actor)
    # Asked about both quotes: the first was cancelled, the second's news is known already.
    assert sorted((a.status, a.outcome) for a in answers) == [("confirmed", "duplicate"),
                                                              ("failed", "duplicate")]

    told = story_of(app, page_id, None)
    opened, *rest = told.entries
    assert isinstance(opened, story.Opened) and opened.via == "api"
    assert ("title", "Order 7") in opened.said
    assert ("email_user", "buyer@example.com") in opened.said
    quoted = [e for e in rest if isinstance(e, story.Quoted)]
    assert [(q.sender_currency, q.requote, q.current) for q in quoted] == [
        ("BTC", False, False), ("LTC", True, True)]
    heard = [e for e in rest if isinstance(e, story.Heard)]
    assert {(h.status, h.outcome) for h in heard} >= {("processing", "applied"),
                                                      ("confirmed", "applied")}
    assert all(h.source == "processor" for h in heard)
    queued = [e for e in rest if isinstance(e, story.Queued)]
    assert [q.state for q in queued] == ["delivered", "delivered"]
    assert all(f'"id":{data["id"]}' in q.body for q in queued)  # the shop's own ids
    tries = [e for e in rest if isinstance(e, story.Tried)]
    assert [t.status for t in tries] == [500, 200, 200]
    assert [e.action for e in rest if isinstance(e, story.Acted)] == [story.ASKED]
    assert rest.index(quoted[1]) < rest.index(heard[-1]) < rest.index(queued[-1])
    moments = [entry.at for entry in told.entries]
    assert moments == sorted(moments)


def test_a_page_of_a_merchant_one_may_not_see_is_not_found_like_no_page(
        app: Flask, client: FlaskClient, live_server: LiveServer, webhook: Shop) -> None:
    page_id = open_link(client, OPEN_LINK).rsplit("/", 1)[1]
    for merchants, page in (([22], page_id), ([], page_id), ([11], "no-such-page"),
                            (None, "bad\x00id")):
        with app.app_context(), pytest.raises(story.NotFound):
            story.load(db.session(), page, merchants)


def test_a_resend_queues_the_latest_event_once_and_is_audited(
        app: Flask, client: FlaskClient, live_server: LiveServer, webhook: Shop,
        actor: story.Actor) -> None:
    page_id = open_link(client, OPEN_LINK).rsplit("/", 1)[1]
    with app.app_context():
        with pytest.raises(story.Refused) as refused:
            story.resend(db.session(), page_id, [11], actor)
        assert refused.value.reason == "nothing"
        address = db.session().get(Page, page_id).address  # type: ignore[union-attr]
    pay(live_server.url, address or "", "0.00123", "confirmed")
    outbox.send_due(app)
    send_deliveries(app)
    before = len(webhook.received)
    with app.app_context():
        fresh = story.resend(db.session(), page_id, [11], actor)
        with pytest.raises(story.Refused) as refused:  # the same click again
            story.resend(db.session(), page_id, [11], actor)
        assert refused.value.reason == "waiting"
        [entry] = db.session().scalars(select(AuditEntry).where(
            AuditEntry.action == story.RESENT)).all()
        assert (entry.target, entry.merchant_id, entry.actor) == (page_id, 11, actor.email)
    send_deliveries(app)
    assert len(webhook.received) == before + 1
    assert webhook.received[-1].body == webhook.received[before - 1].body
    assert webhook.verifies(webhook.received[-1])
    told = story_of(app, page_id, [11])
    assert told.resendable == fresh


def test_a_note_is_kept_once_bounded_and_audited(app: Flask, client: FlaskClient,
                                                 live_server: LiveServer, webhook: Shop,
                                                 actor: story.Actor) -> None:
    page_id = open_link(client, OPEN_LINK).rsplit("/", 1)[1]
    with app.app_context():
        session = db.session()
        assert story.add_note(session, page_id, [11], actor, "  first\r\nsecond  ")
        assert not story.add_note(session, page_id, [11], actor, "first\nsecond")
        for bad, reason in (("", "empty"), ("   ", "empty"), (None, "empty"),
                            ("x" * 2001, "too_long"), ("a\x00b", "unreadable")):
            with pytest.raises(story.Refused) as refused:
                story.add_note(session, page_id, [11], actor, bad)
            assert refused.value.reason == reason
        assert story.add_note(session, page_id, [11], actor, "x" * 2000)
    assert count(app, PaymentNote) == 2
    with app.app_context():
        notes = db.session().scalars(select(AuditEntry).where(
            AuditEntry.action == story.NOTED)).all()
    assert len(notes) == 2 and all(n.target == page_id for n in notes)
    told = story_of(app, page_id, [11])
    assert [e.text for e in told.entries if isinstance(e, story.Noted)] == [
        "first\nsecond", "x" * 2000]


def _statements(app: Flask, page_id: str) -> int:
    counted = []
    with app.app_context():
        engine = db.session().get_bind()

        def tick(*_args: object) -> None:
            counted.append(1)

        event.listen(engine, "before_cursor_execute", tick)
        try:
            story.load(db.session(), page_id, [11])
        finally:
            event.remove(engine, "before_cursor_execute", tick)
    return len(counted)


def test_the_story_costs_the_same_statements_however_many_callbacks(
        app: Flask, client: FlaskClient, live_server: LiveServer, webhook: Shop,
        actor: story.Actor) -> None:
    page_id = open_link(client, OPEN_LINK).rsplit("/", 1)[1]
    with app.app_context():
        address = db.session().get(Page, page_id).address  # type: ignore[union-attr]
    pay(live_server.url, address or "", "0.0001", "confirmed")
    outbox.send_due(app)
    send_deliveries(app)
    few = _statements(app, page_id)
    for _ in range(8):
        pay(live_server.url, address or "", "0.0001", "confirmed")
    outbox.send_due(app)
    send_deliveries(app)
    with app.app_context():
        story.add_note(db.session(), page_id, [11], actor, "many")
    told = story_of(app, page_id, [11])
    assert len([e for e in told.entries if isinstance(e, story.Heard)]) == 9
    assert len([e for e in told.entries if isinstance(e, story.Tried)]) >= 10
    assert _statements(app, page_id) == few <= 14
    assert count(app, DeliveryAttempt) >= 10
