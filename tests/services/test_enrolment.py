"""Enrolment links (once, 24 hours), recovery codes (each once), invitations, and the
sessions' idle and absolute timeouts, at the service layer with the site's clock."""

from __future__ import annotations

from flask import Flask
from kit.console import PASSWORD, Clock, add_person
from sqlalchemy import select

from checkout import db, totp
from checkout.models import ConsoleSession, Membership, Merchant, RecoveryCode, User
from checkout.services import console_sessions, enrolment, people, signin


def _new_user(app: Flask, email: str = "new@shop.example") -> str:
    with app.app_context(), db.transaction() as session:
        user = people.add_user(session, email, now=app.config["CLOCK"](), operator=True)
        return people.new_link(session, user, now=app.config["CLOCK"]())


def _enrol(app: Flask, token: str) -> enrolment.Done | None:
    now = app.config["CLOCK"]()
    with app.app_context(), db.transaction() as session:
        found = enrolment.open_link(session, token, now)
        assert found is not None
        link, user = found
        assert enrolment.set_password(session, user, PASSWORD, PASSWORD) is None
    with app.app_context(), db.transaction() as session:
        found = enrolment.open_link(session, token, now)
        assert found is not None
        link, user = found
        assert user.totp_secret is not None
        return enrolment.confirm_factor(session, link, user, totp.code_at(user.totp_secret, now),
                                        now=now)


def test_a_link_enrols_once_and_ten_recovery_codes_are_kept_as_digests(app: Flask) -> None:
    Clock(app)
    token = _new_user(app)
    done = _enrol(app, token)
    assert done is not None and len(set(done.recovery_codes)) == totp.RECOVERY_CODES
    with app.app_context():
        session = db.session()
        assert enrolment.open_link(session, token, app.config["CLOCK"]()) is None
        user = people.by_email(session, "new@shop.example")
        assert user is not None and user.enrolled_at is not None
        stored = session.scalars(select(RecoveryCode.code_digest)).all()
        assert sorted(stored) == sorted(totp.recovery_digest(c) for c in done.recovery_codes)
        live = console_sessions.load(session, done.token, app.config["CLOCK"]())
        assert live is not None and live[0].stage == console_sessions.SIGNED_IN


def test_a_link_expires_after_a_day(app: Flask) -> None:
    clock = Clock(app)
    token = _new_user(app)
    clock.advance(hours=23, minutes=59)
    with app.app_context():
        assert enrolment.open_link(db.session(), token, clock()) is not None
    clock.advance(minutes=1)
    with app.app_context():
        assert enrolment.open_link(db.session(), token, clock()) is None


def test_a_password_is_twelve_to_256_characters_given_twice(app: Flask) -> None:
    assert enrolment.password_problem("a" * 11, "a" * 11) == enrolment.TOO_SHORT
    assert enrolment.password_problem("a" * 257, "a" * 257) == enrolment.TOO_LONG
    assert enrolment.password_problem("a" * 12, "b" * 12) == enrolment.NOT_THE_SAME
    assert enrolment.password_problem("a" * 12, "a" * 12) is None


def test_each_recovery_code_signs_in_once(app: Flask) -> None:
    Clock(app)
    done = _enrol(app, _new_user(app))
    assert done is not None
    code = done.recovery_codes[3]
    now = app.config["CLOCK"]()
    with app.app_context(), db.transaction() as session:
        user = people.by_email(session, "new@shop.example")
        assert user is not None
        assert signin.check_factor(session, user, code.upper(), now=now) == "recovery code"
    with app.app_context(), db.transaction() as session:
        user = people.by_email(session, "new@shop.example")
        assert user is not None
        assert signin.check_factor(session, user, code, now=now) is None
        assert signin.recovery_codes_left(session, user.id) == totp.RECOVERY_CODES - 1


def test_an_invitation_adds_its_role_on_use(app: Flask, merchant: Merchant) -> None:
    clock = Clock(app)
    person = add_person(app, "someone@elsewhere.example", operator=False)
    with app.app_context(), db.transaction() as session:
        user = session.get(User, person.id)
        assert user is not None
        token = people.new_link(session, user, now=clock(), merchant_id=merchant.client_id,
                                 role="support")
    with app.app_context(), db.transaction() as session:
        found = enrolment.open_link(session, token, clock())
        assert found is not None
        link, user = found
        wrong = enrolment.accept_invitation(session, link, user, "not the password",
                                            totp.code_at(person.secret, clock()), now=clock())
        assert not isinstance(wrong, enrolment.Done)
    with app.app_context(), db.transaction() as session:
        found = enrolment.open_link(session, token, clock())
        assert found is not None
        link, user = found
        done = enrolment.accept_invitation(session, link, user, PASSWORD,
                                           totp.code_at(person.secret, clock()), now=clock())
        assert isinstance(done, enrolment.Done) and done.recovery_codes == ()
    with app.app_context():
        roles = db.session().execute(select(Membership.merchant_id, Membership.role).where(
            Membership.user_id == person.id)).all()
        assert [tuple(r) for r in roles] == [(merchant.client_id, "support")]
        assert enrolment.open_link(db.session(), token, clock()) is None


def _session_at(app: Flask, person_email: str) -> str:
    now = app.config["CLOCK"]()
    with app.app_context(), db.transaction() as session:
        user = people.by_email(session, person_email)
        assert user is not None
        return console_sessions.start(session, user, now=now, stage=console_sessions.SIGNED_IN)


def _alive(app: Flask, token: str) -> bool:
    with app.app_context(), db.transaction() as session:
        return console_sessions.load(session, token, app.config["CLOCK"]()) is not None


def test_a_session_ends_after_thirty_idle_minutes(app: Flask) -> None:
    clock = Clock(app)
    person = add_person(app, "owner@shop.example")
    token = _session_at(app, person.email)
    clock.advance(minutes=29)
    assert _alive(app, token)  # and touched: the idle time starts again
    clock.advance(minutes=29)
    assert _alive(app, token)
    clock.advance(minutes=30)
    assert not _alive(app, token)


def test_a_session_ends_twelve_hours_after_it_began_however_busy(app: Flask) -> None:
    clock = Clock(app)
    person = add_person(app, "owner@shop.example")
    token = _session_at(app, person.email)
    for _ in range(71):
        clock.advance(minutes=10)
        assert _alive(app, token)
    clock.advance(minutes=10)
    assert not _alive(app, token)
    with app.app_context():
        assert db.session().scalars(select(ConsoleSession)).one().ended_at is None
