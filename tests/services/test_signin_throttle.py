"""Sign-in throttling: per account (known email or not) and per address, with a wait that
doubles from the first block, capped, forgotten after a quiet day; a blocked attempt does no
work at all, even with the right password."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from kit.console import PASSWORD, Clock, Person, add_person, next_code
from sqlalchemy import select

from checkout import db
from checkout.models import AuditEntry, ConsoleSession
from checkout.services import console_sessions, signin, signin_throttle

HOME = "192.0.2.10"


def _try(app: Flask, email: str, password: str, address: str = HOME) -> signin.Attempt:
    with app.app_context(), db.transaction() as session:
        return signin.with_password(session, email, password, now=app.config["CLOCK"](),
                                    address=address)


def _fail_until_blocked(app: Flask, email: str, address: str = HOME) -> int:
    """Wrong passwords until a block answers; how many failures it took."""
    for failures in range(1, 100):
        if _try(app, email, "wrong password!", address).wait is not None:
            return failures - 1
    raise AssertionError("never blocked")


def test_an_account_is_blocked_after_its_free_failures_and_the_wait_doubles(app: Flask) -> None:
    clock = Clock(app)
    add_person(app, "owner@shop.example")
    free = _fail_until_blocked(app, "owner@shop.example")
    assert free == signin_throttle.FREE[signin_throttle.ACCOUNT]
    first = _try(app, "owner@shop.example", PASSWORD).wait
    assert first is not None and first > timedelta(0)
    # The right password, blocked, is not even looked at: no session.
    assert _try(app, "owner@shop.example", PASSWORD).token is None
    clock.advance(seconds=first.total_seconds())
    assert _try(app, "owner@shop.example", "wrong again!!").wait is None
    second = _try(app, "owner@shop.example", PASSWORD).wait
    assert second == 2 * first
    for _ in range(20):  # the wait never grows past the longest
        assert second is not None
        clock.advance(seconds=second.total_seconds())
        _try(app, "owner@shop.example", "wrong again!!")
        second = _try(app, "owner@shop.example", PASSWORD).wait
    assert second == signin_throttle.LONGEST


def test_an_unknown_email_is_counted_and_blocked_exactly_like_a_known_one(app: Flask) -> None:
    Clock(app)
    add_person(app, "known@shop.example")
    known = _fail_until_blocked(app, "known@shop.example", "192.0.2.1")
    unknown = _fail_until_blocked(app, "nobody@shop.example", "192.0.2.2")
    assert known == unknown
    assert (_try(app, "known@shop.example", "x", "192.0.2.1").wait
            == _try(app, "nobody@shop.example", "x", "192.0.2.2").wait)
    with app.app_context():
        keys = set(db.session().scalars(select(signin_throttle.SigninThrottle.key)))
    assert signin_throttle.account_key("NOBODY@shop.example ") in keys
    assert not any("nobody" in key for key in keys)  # a digest, never the email


def test_one_address_trying_many_accounts_is_blocked(app: Flask) -> None:
    Clock(app)
    add_person(app, "victim@shop.example")
    for n in range(signin_throttle.FREE[signin_throttle.ADDRESS]):
        assert _try(app, f"guess{n}@shop.example", "wrong password!").wait is None
    assert _try(app, "victim@shop.example", PASSWORD).wait is not None
    # Elsewhere, the account itself is fine.
    assert _try(app, "victim@shop.example", PASSWORD, "198.51.100.1").token is not None


def test_an_ipv6_client_counts_by_its_64_block() -> None:
    assert (signin_throttle.address_key("2001:db8:1:2::1")
            == signin_throttle.address_key("2001:db8:1:2:ffff::9"))
    assert (signin_throttle.address_key("2001:db8:1:2::1")
            != signin_throttle.address_key("2001:db8:1:3::1"))
    assert signin_throttle.address_key("::ffff:192.0.2.7") == signin_throttle.address_key(
        "192.0.2.7")


def _sign_in(app: Flask, person: Person) -> None:
    token = _try(app, person.email, PASSWORD).token
    assert token is not None
    with app.app_context(), db.transaction() as session:
        row = session.scalars(select(ConsoleSession).where(
            ConsoleSession.token_digest == console_sessions.digest(token))).one()
        assert signin.second_factor(session, row, next_code(app, person),
                                    now=app.config["CLOCK"](), address=HOME).ok


def test_a_full_sign_in_clears_the_account_count(app: Flask) -> None:
    Clock(app)
    person = add_person(app, "owner@shop.example")
    almost = signin_throttle.FREE[signin_throttle.ACCOUNT] - 1
    for _ in range(almost):
        _try(app, person.email, "wrong password!")
    _sign_in(app, person)
    for _ in range(almost):
        _try(app, person.email, "wrong password!")
    assert _try(app, person.email, PASSWORD).wait is None


def test_a_quiet_day_forgets_the_failures(app: Flask) -> None:
    clock = Clock(app)
    almost = signin_throttle.FREE[signin_throttle.ACCOUNT] - 1
    for _ in range(almost):
        _try(app, "someone@shop.example", "wrong password!")
    clock.advance(days=1, seconds=1)
    for _ in range(almost):
        _try(app, "someone@shop.example", "wrong password!")
    assert _try(app, "someone@shop.example", "wrong password!").wait is None


def test_wrong_codes_count_too_and_a_blocked_code_step_takes_nothing(app: Flask) -> None:
    Clock(app)
    person = add_person(app, "owner@shop.example")
    token = _try(app, person.email, PASSWORD).token
    assert token is not None
    with app.app_context(), db.transaction() as session:
        row = session.scalars(select(ConsoleSession)).one()
        results = [signin.second_factor(session, row, "000000", now=app.config["CLOCK"](),
                                        address=HOME) for _ in range(10)]
    assert any(result.wait is not None for result in results)
    with app.app_context(), db.transaction() as session:
        row = session.scalars(select(ConsoleSession)).one()
        right = signin.second_factor(session, row, next_code(app, person),
                                     now=app.config["CLOCK"](), address=HOME)
        assert right.wait is not None and not right.ok
        assert row.stage != "signed_in"


def test_failures_and_sign_ins_are_audited(app: Flask) -> None:
    Clock(app)
    person = add_person(app, "owner@shop.example")
    _try(app, "nobody@shop.example", "wrong password!")
    _try(app, person.email, "wrong password!")
    _try(app, person.email, PASSWORD)
    with app.app_context(), db.transaction() as session:
        row = session.scalars(select(ConsoleSession)).one()
        assert signin.second_factor(session, row, next_code(app, person),
                                    now=app.config["CLOCK"](), address=HOME).ok
    with app.app_context():
        entries = db.session().scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.user_id, e.address) for e in entries] == [
        ("signin_failed", None, HOME), ("signin_failed", person.id, HOME),
        ("signin", person.id, HOME)]


def test_a_block_is_audited_once_and_turned_away_attempts_write_nothing(app: Flask) -> None:
    Clock(app)
    free = _fail_until_blocked(app, "nobody@shop.example")
    for _ in range(5):
        assert _try(app, "nobody@shop.example", "wrong password!").wait is not None
    with app.app_context():
        actions = db.session().scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["signin_failed"] * free + ["signin_blocked"]
