"""Sign-in over HTTP: a blocked attempt answers 429 with Retry-After and a translated
message, the same for a known and an unknown email; recovery codes at the code step; signing
out is audited."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from kit.console import PASSWORD, Clock, add_person, csrf_of, enrol, sign_in
from sqlalchemy import select

from checkout import db
from checkout.models import AuditEntry, Merchant
from checkout.services import people, signin_throttle


def _post_login(client: FlaskClient, email: str, password: str, lang: str = "en") -> tuple[
        int, str, str | None]:
    page = client.get(f"/console/login?lang={lang}")
    answer = client.post(f"/console/login?lang={lang}", data={
        "email": email, "password": password, "csrf_token": csrf_of(page.text)})
    # Each browser's form token is its own; all else must be the same.
    text = answer.text.replace(email, "EMAIL").replace(csrf_of(page.text), "TOKEN")
    return answer.status_code, text, answer.headers.get("Retry-After")


def test_a_blocked_sign_in_answers_429_alike_for_known_and_unknown_emails(
        app: Flask, merchant: Merchant) -> None:
    Clock(app)
    add_person(app, "owner@shop.example", roles={merchant.client_id: "owner"})
    answers = {}
    for email, address in (("owner@shop.example", "192.0.2.1"),
                           ("nobody@shop.example", "192.0.2.2")):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        for _ in range(signin_throttle.FREE[signin_throttle.ACCOUNT]):
            assert _post_login(client, email, "wrong password!")[0] == 401
        answers[email] = _post_login(client, email, PASSWORD)
    known, unknown = answers["owner@shop.example"], answers["nobody@shop.example"]
    assert known[0] == unknown[0] == 429
    assert known[2] is not None and int(known[2]) > 0 and known[2] == unknown[2]
    assert known[1] == unknown[1]
    assert "Too many attempts" in known[1]


def test_the_block_is_said_in_the_visitors_language(app: Flask) -> None:
    Clock(app)
    client = app.test_client()
    for _ in range(signin_throttle.FREE[signin_throttle.ACCOUNT]):
        _post_login(client, "x@shop.example", "wrong password!")
    status, german, _ = _post_login(client, "x@shop.example", "wrong password!", "de")
    assert status == 429
    assert "Too many attempts" not in german and "Versuche" in german


def test_a_recovery_code_signs_in_at_the_code_step_once(app: Flask) -> None:
    Clock(app)
    with app.app_context(), db.transaction() as session:
        user = people.add_user(session, "ops@site.example", now=app.config["CLOCK"](),
                               operator=True)
        token = people.new_link(session, user, now=app.config["CLOCK"]())
    _, codes = enrol(app, app.test_client(), f"/console/enrol/{token}")

    def code_step(code: str) -> int:
        client = app.test_client()
        page = client.get("/console/login")
        client.post("/console/login", data={"email": "ops@site.example", "password": PASSWORD,
                                            "csrf_token": csrf_of(page.text)})
        page = client.get("/console/login/code")
        return client.post("/console/login/code", data={
            "code": code, "csrf_token": csrf_of(page.text)}).status_code

    assert code_step(codes[0]) == 302
    assert code_step(codes[0]) == 401
    assert code_step(codes[1]) == 302


def test_signing_out_ends_the_session_and_is_audited(app: Flask, merchant: Merchant) -> None:
    person = add_person(app, "owner@shop.example", roles={merchant.client_id: "owner"})
    client = app.test_client()
    token = sign_in(app, client, person)
    answer = client.post("/console/logout", data={"csrf_token": token})
    assert answer.status_code == 302
    assert client.get("/console/").status_code == 302
    with app.app_context():
        actions = db.session().scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["signin", "signout"]
