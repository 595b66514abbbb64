"""The back office's view of the outbox: health figures, replay's bound and count, pausing
a merchant's deliveries, and one merchant's trouble never holding back another's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from kit.callbacks import Clock, running_shop, use_shop
from kit.console import add_person
from sqlalchemy import select, update

from checkout import db, merchants
from checkout.models import AuditEntry, Delivery, Merchant
from checkout.services import deliveries, delivery_health

A, B = 11, 22


@pytest.fixture
def clock(app: Flask) -> Clock:
    app.config["CLOCK"] = the_clock = Clock()
    return the_clock


@pytest.fixture
def actor(app: Flask) -> delivery_health.Actor:
    """Merchants A and B, and a developer of A who acts."""
    with app.app_context():
        for client_id in (A, B):
            merchants.add(merchants.NewMerchant(
                client_id=client_id, name=f"Shop {client_id}", key=f"key-{client_id}",
                secret=f"secret-{client_id}", return_hosts=("shop.example",), frame_origins=(),
                webhook_url="http://127.0.0.1:9/hook"))
    person = add_person(app, "dev@a.example", roles={A: "developer"})
    return delivery_health.Actor(person.id, person.email, "127.0.0.1")


def queue(app: Flask, merchant_id: int, count: int = 1) -> list[int]:
    with app.app_context(), db.transaction() as session:
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None
        made = [deliveries.enqueue_body(session, merchant, b'{"id": %d}' % n)
                for n in range(count)]
        return [d.id for d in made if d is not None]


def run_worker(app: Flask) -> int:
    with app.app_context():
        return deliveries.run_due()


def rows(app: Flask, merchant_id: int) -> list[Delivery]:
    with app.app_context():
        return list(db.session().scalars(select(Delivery).where(
            Delivery.merchant_id == merchant_id).order_by(Delivery.id)).all())


def give_up(app: Flask, ids: list[int]) -> None:
    """As the worker leaves a delivery whose every retry failed."""
    with app.app_context(), db.transaction() as session:
        session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(
            state=deliveries.FAILED, attempts=13, last_status=500, last_error="HTTP 500"))


def audit_actions(app: Flask) -> list[tuple[str, int | None, str | None]]:
    with app.app_context():
        return [(e.action, e.merchant_id, e.target) for e in db.session().scalars(
            select(AuditEntry).order_by(AuditEntry.id)).all()]


def test_a_paused_merchants_deliveries_wait_while_others_go_and_resume_later(
        app: Flask, actor: delivery_health.Actor, clock: Clock) -> None:
    with running_shop() as shop_a, running_shop() as shop_b:
        use_shop(app, shop_a, A)
        use_shop(app, shop_b, B)
        queue(app, A)
        queue(app, B)
        with app.app_context():
            assert delivery_health.set_paused(db.session(), None, A, True, actor)
        assert run_worker(app) == 1
        assert (len(shop_a.received), len(shop_b.received)) == (0, 1)
        held = rows(app, A)[0]
        assert (held.state, held.attempts) == ("pending", 0)
        clock.advance(timedelta(hours=6))
        assert run_worker(app) == 0
        assert not shop_a.received
        with app.app_context():
            assert delivery_health.set_paused(db.session(), [A], A, False, actor)
        assert run_worker(app) == 1
        assert len(shop_a.received) == 1
    assert rows(app, A)[0].state == "delivered"
    assert audit_actions(app) == [("deliveries.pause", A, f"merchant {A}"),
                                  ("deliveries.resume", A, f"merchant {A}")]


def test_one_merchants_failing_backlog_never_holds_back_another(
        app: Flask, actor: delivery_health.Actor, clock: Clock) -> None:
    with running_shop(script=[500] * 100) as failing, running_shop() as healthy:
        use_shop(app, failing, A)
        use_shop(app, healthy, B)
        queue(app, A, deliveries.BATCH + 5)  # older than B's: first by due time
        clock.advance(timedelta(seconds=1))
        queue(app, B)
        run_worker(app)
        assert len(healthy.received) == 1
        # The failing shop was tried once; the rest of its backlog waits for the next run.
        assert len(failing.received) == 1
    assert rows(app, B)[0].state == "delivered"


def test_health_counts_the_windows_deliveries_and_ages_the_oldest_waiting(
        app: Flask, actor: delivery_health.Actor, clock: Clock) -> None:
    with running_shop() as shop:
        use_shop(app, shop, A)
        queue(app, A)
        run_worker(app)  # delivered, but before the window
        clock.advance(delivery_health.HEALTH_WINDOW + timedelta(hours=1))
        shop.script = [200, 500]
        first, second = queue(app, A, 2)
        run_worker(app)
        start = clock.now
        queue(app, A)  # waiting
        clock.advance(timedelta(hours=2))
    with app.app_context():
        found = {h.merchant_id: h for h in delivery_health.health(db.session(), None,
                                                                  clock.now)}
    by_id = {d.id: d for d in rows(app, A)}
    assert (by_id[first].state, by_id[second].last_error) == ("delivered", "HTTP 500")
    health = found[A]
    assert (health.attempted, health.delivered, health.success_percent) == (2, 1, 50)
    assert health.last_error == "HTTP 500"
    assert health.oldest_waiting == clock.now - start
    assert health.paused_at is None
    assert (found[B].attempted, found[B].success_percent, found[B].oldest_waiting) == (
        0, None, None)
    with app.app_context():
        assert [h.merchant_id for h in delivery_health.health(db.session(), [B],
                                                              clock.now)] == [B]


def test_a_replay_is_bounded_and_never_sends_more_than_was_confirmed(
        app: Flask, actor: delivery_health.Actor, clock: Clock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery_health, "REPLAY_BOUND", 3)
    ids = queue(app, A, 4)
    give_up(app, ids)
    give_up(app, queue(app, B, 1))  # another merchant's: never part of A's replay
    chosen = delivery_health.Filter(state=delivery_health.GIVEN_UP, merchant_id=A)
    with app.app_context():
        session = db.session()
        assert delivery_health.replay_count(session, [A], chosen) == 4
        with pytest.raises(delivery_health.TooMany):
            delivery_health.replay(session, [A], chosen, 4, actor)
    give_up(app, [])
    with app.app_context(), db.transaction() as session:
        session.execute(update(Delivery).where(Delivery.id == ids[0]).values(
            state=deliveries.DELIVERED))
    with app.app_context():
        session = db.session()
        assert delivery_health.replay_count(session, [A], chosen) == 3
        with pytest.raises(delivery_health.CountChanged):
            delivery_health.replay(session, [A], chosen, 2, actor)
        assert [d.state for d in rows(app, A)].count("failed") == 3
        assert delivery_health.replay(db.session(), [A], chosen, 3, actor) == 3
    reopened = rows(app, A)[1:]
    assert {(d.state, d.attempts, d.next_attempt_at) for d in reopened} == {
        ("pending", 0, clock.now)}
    assert rows(app, B)[0].state == "failed"
    assert audit_actions(app) == [("delivery.replay", A, "3 deliveries")]
    with running_shop() as shop:
        use_shop(app, shop, A)
        run_worker(app)
        assert len(shop.received) == 3


def test_a_replay_for_merchants_out_of_reach_finds_nothing(
        app: Flask, actor: delivery_health.Actor, clock: Clock) -> None:
    give_up(app, queue(app, B, 2))
    chosen = delivery_health.Filter(state=delivery_health.GIVEN_UP, merchant_id=B)
    with app.app_context():
        assert delivery_health.replay_count(db.session(), [A], chosen) == 0
        assert delivery_health.replay(db.session(), [A], chosen, 5, actor) == 0
    assert [d.state for d in rows(app, B)] == ["failed", "failed"]


def test_a_retry_while_a_worker_sends_it_is_refused_and_sends_nothing(
        app: Flask, actor: delivery_health.Actor, clock: Clock) -> None:
    [delivery_id] = queue(app, A)
    with running_shop() as shop:
        use_shop(app, shop, A)
        with app.app_context():
            owner = deliveries.claim(db.session(), delivery_id, clock.now, 60)
            assert owner is not None  # a worker holds it, mid-send
            with pytest.raises(delivery_health.Busy):
                delivery_health.retry(db.session(), [A], delivery_id, actor)
        assert not shop.received
        clock.advance(timedelta(seconds=61))  # that worker died: its lease ran out
        with app.app_context():
            assert delivery_health.retry(db.session(), [A], delivery_id, actor).ok
        assert len(shop.received) == 1
    assert audit_actions(app) == [("delivery.retry", A, f"delivery {delivery_id}")]


def test_a_retry_of_a_delivery_out_of_reach_is_unknown(
        app: Flask, actor: delivery_health.Actor, clock: Clock) -> None:
    [delivery_id] = queue(app, B)
    with app.app_context(), pytest.raises(LookupError):
        delivery_health.retry(db.session(), [A], delivery_id, actor)
    assert rows(app, B)[0].attempts == 0


def test_the_list_pages_newest_first_by_keyset_within_the_merchants_allowed(
        app: Flask, actor: delivery_health.Actor, clock: Clock) -> None:
    ours = queue(app, A, 3)
    theirs = queue(app, B, 2)
    ours += queue(app, A, 2)
    seen: list[int] = []
    after = None
    with app.app_context():
        for _ in range(10):
            page = delivery_health.listing(db.session(), [A], delivery_health.Filter(),
                                           after, size=2)
            seen += [row.id for row in page.rows]
            assert len(page.rows) <= 2
            if page.after is None:
                break
            after = page.after
        everyone = delivery_health.listing(db.session(), None, delivery_health.Filter(
            merchant_id=B))
    assert seen == sorted(ours, reverse=True)
    assert [row.id for row in everyone.rows] == sorted(theirs, reverse=True)
    assert {row.state for row in everyone.rows} == {delivery_health.WAITING}
