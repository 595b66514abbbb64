"""Your sessions: the live ones listed (this one marked), any other signed out, all others
at once; nobody else's session can be ended; idle and absolute timeouts by the site's clock."""

from __future__ import annotations

from flask import Flask
from kit.console import Clock, add_person, sign_in
from sqlalchemy import select

from checkout import db
from checkout.models import AuditEntry, ConsoleSession, Merchant


def _ids(app: Flask, user_id: int) -> list[int]:
    with app.app_context():
        return list(db.session().scalars(select(ConsoleSession.id).where(
            ConsoleSession.user_id == user_id, ConsoleSession.ended_at.is_(None))
            .order_by(ConsoleSession.id)))


def test_the_list_shows_ones_sessions_and_signs_out_another(app: Flask,
                                                           merchant: Merchant) -> None:
    person = add_person(app, "owner@shop.example", roles={merchant.client_id: "viewer"})
    laptop, phone = app.test_client(), app.test_client()
    phone.environ_base["HTTP_USER_AGENT"] = (
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36")
    phone.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    sign_in(app, phone, person)
    token = sign_in(app, laptop, person)
    page = laptop.get("/console/sessions")
    assert page.status_code == 200
    assert "Chrome · Android" in page.text and "203.0.113.9" in page.text
    assert page.text.count("This session") == 1
    first, _ = _ids(app, person.id)
    answer = laptop.post("/console/sessions/end", data={"session": str(first),
                                                        "csrf_token": token})
    assert answer.status_code == 303
    assert "signed out" in laptop.get(answer.headers["Location"]).text
    assert phone.get("/console/").status_code == 302  # back to the sign-in
    assert laptop.get("/console/").status_code == 200
    with app.app_context():
        assert "session_ended" in db.session().scalars(select(AuditEntry.action)).all()


def test_sign_out_everywhere_else_keeps_this_session(app: Flask, merchant: Merchant) -> None:
    clock = Clock(app)
    person = add_person(app, "owner@shop.example", roles={merchant.client_id: "viewer"})
    others = [app.test_client() for _ in range(2)]
    for other in others:
        sign_in(app, other, person)
        clock.advance(seconds=30)  # a code is good once: the next sign-in needs the next
    mine = app.test_client()
    token = sign_in(app, mine, person)
    assert mine.post("/console/sessions/end-others",
                     data={"csrf_token": token}).status_code == 303
    assert [other.get("/console/").status_code for other in others] == [302, 302]
    assert mine.get("/console/").status_code == 200
    assert len(_ids(app, person.id)) == 1


def test_another_persons_session_cannot_be_ended(app: Flask, merchant: Merchant) -> None:
    victim = add_person(app, "victim@shop.example", roles={merchant.client_id: "owner"})
    attacker = add_person(app, "attacker@shop.example", roles={merchant.client_id: "viewer"})
    victim_client, attacker_client = app.test_client(), app.test_client()
    sign_in(app, victim_client, victim)
    token = sign_in(app, attacker_client, attacker)
    (victims,) = _ids(app, victim.id)
    answer = attacker_client.post("/console/sessions/end", data={"session": str(victims),
                                                                 "csrf_token": token})
    assert "done=gone" in answer.headers["Location"]
    assert victim_client.get("/console/").status_code == 200


def test_idle_and_absolute_timeouts_sign_out(app: Flask, merchant: Merchant) -> None:
    clock = Clock(app)
    person = add_person(app, "owner@shop.example", roles={merchant.client_id: "viewer"})
    client = app.test_client()
    sign_in(app, client, person)
    clock.advance(minutes=31)
    assert client.get("/console/sessions").status_code == 302  # idle too long
    sign_in(app, client, person)
    for _ in range(12 * 4 - 1):  # busy all day: a request every quarter of an hour
        clock.advance(minutes=15)
        assert client.get("/console/sessions").status_code == 200
    clock.advance(minutes=15)
    assert client.get("/console/sessions").status_code == 302
