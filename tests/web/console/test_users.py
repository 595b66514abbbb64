"""A merchant's users in the back office: invitations by a one-time link (emailed through a
real SMTP server when one is set), roles changed, users removed, the last owner kept, an
operator's view of everybody and their disabling; each act asks the code again."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from flask import Flask
from flask.testing import FlaskClient
from kit.console import Clock, Person, add_person, sign_in
from sqlalchemy import select

from checkout import audit, clock, db, merchants, totp
from checkout.models import AuditEntry, Enrolment, Membership, Merchant, User
from checkout.services import people

USERS = "/console/users?merchant=11"
INVITE = "/console/users/invite?merchant=11"
CHANGE = "/console/users/change?merchant=11"
_LINK = re.compile(r"https?://[^\s<\"]+/console/enrol/([A-Za-z0-9_-]+)")


@pytest.fixture
def token(app: Flask, client: FlaskClient, owner: Person, tick: Clock) -> str:
    return sign_in(app, client, owner)


def role_of(app: Flask, user_id: int, merchant_id: int = 11) -> str | None:
    with app.app_context():
        found = db.session().get(Membership, (user_id, merchant_id))
        return found.role if found is not None else None


def actions(app: Flask) -> list[tuple[str, dict[str, Any]]]:
    """The entries of acts on users (signing in is audited too, and not counted here)."""
    with app.app_context():
        return [(r.action, audit.detail(r)) for r in
                db.session().scalars(select(AuditEntry).where(AuditEntry.action.like("users.%"))
                                     .order_by(AuditEntry.id))]


def test_an_owner_invites_by_a_one_time_link_shown_once(app: Flask, client: FlaskClient,
                                                       owner: Person, token: str,
                                                       tick: Clock) -> None:
    data = {"csrf_token": token, "email": "New@Shop.example", "role": "support"}
    wrong = client.post(INVITE, data={**data, "confirm_code": "000000"})
    assert wrong.status_code == 422 and "That code is not right" in wrong.text
    with app.app_context():
        assert people.by_email(db.session(), "new@shop.example") is None
    answer = client.post(INVITE, data={**data, "confirm_code": tick.code(owner)})
    assert answer.status_code == 200
    found = _LINK.search(answer.text)
    assert found, "the link is shown to copy"
    with app.app_context():
        opened = people.open_link(db.session(), found.group(1), clock.now())
        assert opened is not None and opened[1].email == "new@shop.example"
        new_id = opened[1].id
    assert role_of(app, new_id) == "support"
    assert found.group(1) not in client.get(USERS).text  # shown once
    assert "new@shop.example" in client.get(USERS).text
    assert [a for a, _ in actions(app)] == ["users.invite"]


def test_an_existing_user_is_invited_with_the_role_on_the_link(app: Flask,
                                                              client: FlaskClient,
                                                              owner: Person, token: str,
                                                              tick: Clock) -> None:
    with app.app_context():
        merchants.add(merchants.NewMerchant(22, "Other", "key-22", "secret-22"))
    elsewhere = add_person(app, "dev@other.example", roles={22: "developer"})
    answer = client.post(INVITE, data={"csrf_token": token, "email": elsewhere.email,
                                       "role": "developer",
                                       "confirm_code": tick.code(owner)})
    assert answer.status_code == 200
    assert role_of(app, elsewhere.id) is None  # until they accept
    with app.app_context():
        link = db.session().scalars(select(Enrolment)).one()
        assert (link.user_id, link.merchant_id, link.role) == (elsewhere.id, 11, "developer")
    assert "Pending invitations" in client.get(USERS).text
    # Invited again while a member already: refused.
    with app.app_context(), db.transaction() as s:
        s.add(Membership(user_id=elsewhere.id, merchant_id=11, role="viewer"))
    again = client.post(INVITE, data={"csrf_token": token, "email": elsewhere.email,
                                      "role": "viewer", "confirm_code": tick.code(owner)})
    assert again.status_code == 422 and "already" in again.text


def test_bad_invitations_are_refused_field_by_field(app: Flask, client: FlaskClient,
                                                   token: str) -> None:
    answer = client.post(INVITE, data={"csrf_token": token, "email": "not an email",
                                       "role": "emperor", "confirm_code": "1"})
    assert answer.status_code == 422
    assert "not an email address" in answer.text and "unknown role" in answer.text
    with app.app_context():
        assert db.session().scalar(select(User).where(User.email == "not an email")) is None


def test_roles_change_and_users_go_but_the_last_owner_stays(app: Flask, client: FlaskClient,
                                                          owner: Person, token: str,
                                                          tick: Clock) -> None:
    other = add_person(app, "two@shop.example", roles={11: "viewer"})
    demote = client.post(CHANGE, data={"csrf_token": token, "user_id": owner.id,
                                       "role": "admin", "action": "role",
                                       "confirm_code": tick.code(owner)})
    assert demote.status_code == 422 and "at least one owner" in demote.text
    remove = client.post(CHANGE, data={"csrf_token": token, "user_id": owner.id,
                                       "action": "remove",
                                       "confirm_code": tick.code(owner)})
    assert remove.status_code == 422 and role_of(app, owner.id) == "owner"
    wrong = client.post(CHANGE, data={"csrf_token": token, "user_id": other.id,
                                      "role": "owner", "action": "role",
                                      "confirm_code": "000000"})
    assert wrong.status_code == 422 and role_of(app, other.id) == "viewer"
    promote = client.post(CHANGE, data={"csrf_token": token, "user_id": other.id,
                                        "role": "owner", "action": "role",
                                        "confirm_code": tick.code(owner)})
    assert promote.status_code == 303 and role_of(app, other.id) == "owner"
    # Two owners now: one may step down.
    assert client.post(CHANGE, data={"csrf_token": token, "user_id": other.id,
                                     "action": "remove",
                                     "confirm_code": tick.code(owner)}
                       ).status_code == 303
    assert role_of(app, other.id) is None
    assert [(a, d.get("role")) for a, d in actions(app)] == [
        ("users.role", "owner"), ("users.remove", "owner")]


def test_a_user_of_another_merchant_reaches_nobody_here(app: Flask, client: FlaskClient,
                                                       owner: Person, tick: Clock) -> None:
    with app.app_context():
        merchants.add(merchants.NewMerchant(22, "Other", "key-22", "secret-22"))
    stranger = add_person(app, "boss@other.example", roles={22: "owner"})
    token = sign_in(app, client, stranger)
    assert client.get(USERS).status_code == 404
    assert client.post(CHANGE, data={"csrf_token": token, "user_id": owner.id,
                                     "action": "remove",
                                     "confirm_code": tick.code(stranger)}
                       ).status_code == 404
    # Nor through their own merchant, naming a user of ours.
    answer = client.post("/console/users/change?merchant=22", data={
        "csrf_token": token, "user_id": owner.id, "role": "viewer", "action": "role",
        "confirm_code": tick.code(stranger)})
    assert answer.status_code == 404
    assert role_of(app, owner.id) == "owner"
    assert "owner@shop.example" not in client.get("/console/users").text


def test_an_operator_sees_everybody_and_disables_a_user(app: Flask, owner: Person,
                                                       tick: Clock) -> None:
    with app.app_context():
        merchants.add(merchants.NewMerchant(22, "Other", "key-22", "secret-22"))
    add_person(app, "boss@other.example", roles={22: "owner"})
    operator = add_person(app, "op@site.example", operator=True)
    victim_client = app.test_client()
    sign_in(app, victim_client, owner)
    client = app.test_client()
    token = sign_in(app, client, operator)
    page = client.get("/console/users").text
    assert "owner@shop.example" in page and "boss@other.example" in page
    answer = client.post("/console/users/disable", data={
        "csrf_token": token, "user_id": owner.id, "confirm_code": tick.code(operator)})
    assert answer.status_code == 303
    with app.app_context():
        assert db.session().get(User, owner.id).disabled_at is not None  # type: ignore[union-attr]
    assert victim_client.get("/console/").status_code == 302  # signed out
    assert [a for a, _ in actions(app)] == ["users.disable"]


def test_an_owner_cannot_disable_anyone(app: Flask, client: FlaskClient, owner: Person,
                                        token: str, tick: Clock) -> None:
    other = add_person(app, "two@shop.example", roles={11: "viewer"})
    assert client.post("/console/users/disable", data={
        "csrf_token": token, "user_id": other.id, "confirm_code": tick.code(owner)}
                       ).status_code == 403


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802
                          envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as probe:  # a free port (the controller checks it by connecting)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_with_a_mail_server_the_link_is_emailed_not_shown(
        app: Flask, client: FlaskClient, owner: Person, token: str, tick: Clock,
        smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{port}/?from=office@site.example"
    answer = client.post(INVITE, data={"csrf_token": token, "email": "mailme@shop.example",
                                       "role": "viewer", "confirm_code": tick.code(owner)})
    assert answer.status_code == 200 and "emailed to mailme@shop.example" in answer.text
    assert not _LINK.search(answer.text)
    [envelope] = inbox.messages
    assert envelope.rcpt_tos == ["mailme@shop.example"]
    body = message_from_bytes(envelope.original_content or b"").get_payload(decode=True)
    found = _LINK.search(body.decode())  # type: ignore[union-attr]
    assert found
    with app.app_context():
        assert people.open_link(db.session(), found.group(1), clock.now()) is not None


def test_a_mail_server_that_does_not_answer_leaves_the_link_to_copy(
        app: Flask, client: FlaskClient, owner: Person, token: str, tick: Clock) -> None:
    app.config["SMTP_URL"] = "smtp://127.0.0.1:9/"  # discard port: nothing listens
    answer = client.post(INVITE, data={"csrf_token": token, "email": "x@shop.example",
                                       "role": "viewer", "confirm_code": tick.code(owner)})
    assert answer.status_code == 200 and _LINK.search(answer.text)
    assert "could not be sent" in answer.text


def test_a_repeated_invitation_post_creates_nothing_more(app: Flask, client: FlaskClient,
                                                        owner: Person, token: str,
                                                        tick: Clock) -> None:
    data = {"csrf_token": token, "email": "twice@shop.example", "role": "viewer",
            "confirm_code": tick.code(owner)}
    assert client.post(INVITE, data=data).status_code == 200
    again = client.post(INVITE, data=data)  # a double click: the code is spent
    assert again.status_code == 422 and not _LINK.search(again.text)
    with app.app_context():
        assert len(db.session().scalars(select(Enrolment)).all()) == 1
    assert [a for a, _ in actions(app)] == ["users.invite"]


@pytest.mark.parametrize("field", [
    {"user_id": "1 OR 1=1"}, {"user_id": "-1"}, {"user_id": "9" * 30},
    {"role": "<script>alert(1)</script>"}, {"action": "drop", "role": "root"}])
def test_hostile_changes_are_refused_and_change_nothing(app: Flask, client: FlaskClient,
                                                       owner: Person, token: str,
                                                       tick: Clock,
                                                       field: dict[str, str]) -> None:
    other = add_person(app, "two@shop.example", roles={11: "viewer"})
    data = {"csrf_token": token, "user_id": str(other.id), "role": "admin",
            "action": "role", "confirm_code": tick.code(owner), **field}
    answer = client.post(CHANGE, data=data)
    assert answer.status_code in (404, 422)
    assert "<script>alert" not in answer.text
    assert role_of(app, other.id) == "viewer" and actions(app) == []


def test_user_forms_without_the_form_token_change_nothing(app: Flask, client: FlaskClient,
                                                         owner: Person, token: str,
                                                         tick: Clock) -> None:
    other = add_person(app, "two@shop.example", roles={11: "viewer"})
    code = tick.code(owner)
    assert client.post(INVITE, data={"email": "x@shop.example", "role": "viewer",
                                     "confirm_code": code}).status_code == 400
    assert client.post(CHANGE, data={"user_id": other.id, "action": "remove",
                                     "confirm_code": code, "csrf_token": "f" * 64}
                       ).status_code == 400
    assert role_of(app, other.id) == "viewer" and actions(app) == []


def test_someone_who_has_not_enrolled_cannot_be_invited(app: Flask, client: FlaskClient,
                                                        owner: Person, token: str,
                                                        tick: Clock) -> None:
    """An invitation link for an account without a password would let whoever holds it set
    one, and take the account's other roles: an operator's here."""
    with app.app_context(), db.transaction() as session:
        root = people.add_user(session, "root@site.example", now=clock.now(), operator=True)
        root_id = root.id
    answer = client.post(INVITE, data={"csrf_token": token, "email": "root@site.example",
                                       "role": "viewer",
                                       "confirm_code": tick.code(owner)})
    assert answer.status_code == 422
    assert "cannot be invited now" in answer.text
    assert _LINK.search(answer.text) is None
    with app.app_context():
        assert db.session().scalars(select(Enrolment).where(
            Enrolment.user_id == root_id)).all() == []


def test_an_invitation_link_of_someone_not_enrolled_opens_nothing(app: Flask,
                                                                  merchant: Merchant) -> None:
    with app.app_context(), db.transaction() as session:
        someone = people.add_user(session, "half@site.example", now=clock.now(),
                                  operator=True)
        link = people.new_link(session, someone, now=clock.now(), merchant_id=11,
                               role="viewer")
    assert app.test_client().get(f"/console/enrol/{link}").status_code in (404, 410)


def test_a_second_pending_invitation_is_refused(app: Flask, client: FlaskClient,
                                                owner: Person, token: str,
                                                tick: Clock) -> None:
    with app.app_context():
        merchants.add(merchants.NewMerchant(22, "Other", "key-22", "secret-22"))
    elsewhere = add_person(app, "dev@other.example", roles={22: "developer"})
    data = {"csrf_token": token, "email": elsewhere.email}
    first = client.post(INVITE, data={**data, "role": "owner",
                                      "confirm_code": tick.code(owner)})
    second = client.post(INVITE, data={**data, "role": "viewer",
                                       "confirm_code": tick.code(owner)})
    assert first.status_code == 200 and second.status_code == 422
    assert "has an invitation to this merchant already" in second.text


def test_wrong_confirmation_codes_are_limited(app: Flask, client: FlaskClient,
                                             owner: Person, token: str, tick: Clock) -> None:
    """A stolen session cannot guess the code asked again: past five wrong ones, no code is
    checked for a while, the right one included."""
    data = {"csrf_token": token, "email": "new@shop.example", "role": "viewer"}
    for _ in range(5):
        wrong = client.post(INVITE, data={**data, "confirm_code": "000000"})
        assert wrong.status_code == 422 and "That code is not right" in wrong.text
    # The next step's code (one step of drift is accepted), the clock not moved on.
    right = totp.code_at(owner.secret, tick.moment + timedelta(seconds=totp.STEP))
    blocked = client.post(INVITE, data={**data, "confirm_code": right})
    assert blocked.status_code == 422 and "Too many wrong codes" in blocked.text
    with app.app_context():
        assert people.by_email(db.session(), "new@shop.example") is None
    tick.moment += timedelta(minutes=16)
    allowed = client.post(INVITE, data={**data, "confirm_code": tick.code(owner)})
    assert allowed.status_code == 200
