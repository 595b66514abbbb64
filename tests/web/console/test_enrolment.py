"""The one-time link's page: enrol (password twice, the QR and the key, a code, recovery
codes once), then signed in; the link works once; an invitation for someone enrolled is
accepted by signing in on its page."""

from __future__ import annotations

import base64
import re

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from kit.console import PASSWORD, Clock, add_person, csrf_of, enrol, next_code
from sqlalchemy import select

from checkout import db
from checkout.models import AuditEntry, Membership, Merchant
from checkout.services import people

LINK = re.compile(r"https://back\.example(/console/enrol/[A-Za-z0-9_-]+)")


def _added(runner: FlaskCliRunner, *args: str) -> str:
    result = runner.invoke(args=["user", "add", "--base-url", "https://back.example", *args])
    assert result.exit_code == 0, result.output
    found = LINK.search(result.output)
    assert found, result.output
    return found.group(1)


def test_enrolment_by_the_printed_link_ends_signed_in(app: Flask, client: FlaskClient,
                                                     runner: FlaskCliRunner,
                                                     merchant: Merchant) -> None:
    Clock(app)
    link = _added(runner, "--email", "Owner@Shop.example", "--client-id",
                  str(merchant.client_id), "--role", "owner")
    page = client.get(link)
    assert "owner@shop.example" in page.text and 'type="password"' in page.text
    secret, codes = enrol(app, client, link)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "owner@shop.example" in client.get("/console/").text  # signed in
    # The link is spent: the key and the codes are never shown again.
    again = client.get(link)
    assert again.status_code == 404
    assert secret not in again.text and codes[0] not in again.text


def test_the_factor_step_shows_the_qr_as_an_image_and_the_key_as_text(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> None:
    Clock(app)
    link = _added(runner, "--email", "ops@site.example", "--operator")
    page = client.get(link)
    client.post(link, data={"step": "password", "password": PASSWORD, "again": PASSWORD,
                            "csrf_token": csrf_of(page.text)})
    page = client.get(link)
    image = re.search(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page.text)
    assert image, page.text
    svg = base64.b64decode(image.group(1)).decode()
    assert svg.startswith("<?xml") and "<path" in svg
    key = re.search(r'data-field="totp-secret">([A-Z2-7 ]+)<', page.text)
    assert key and len(key.group(1).replace(" ", "")) >= 16
    assert "style=" not in page.text  # the strict CSP allows no inline style


def test_a_short_or_mismatched_password_is_refused_clearly(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> None:
    link = _added(runner, "--email", "ops@site.example", "--operator")
    page = client.get(link)
    token = csrf_of(page.text)
    short = client.post(link, data={"step": "password", "password": "short",
                                    "again": "short", "csrf_token": token})
    assert short.status_code == 400 and "at least 12 characters" in short.text
    different = client.post(link, data={"step": "password", "password": PASSWORD,
                                        "again": PASSWORD + "!", "csrf_token": token})
    assert different.status_code == 400 and "not the same" in different.text
    assert 'value="password"' in client.get(link).text  # still at the first step


def test_a_wrong_code_keeps_the_link_and_the_user_unenrolled(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> None:
    link = _added(runner, "--email", "ops@site.example", "--operator")
    page = client.get(link)
    client.post(link, data={"step": "password", "password": PASSWORD, "again": PASSWORD,
                            "csrf_token": csrf_of(page.text)})
    answer = client.post(link, data={"step": "factor", "code": "123456",
                                     "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 400 and "not right" in answer.text
    with app.app_context():
        user = people.by_email(db.session(), "ops@site.example")
        assert user is not None and user.enrolled_at is None
    assert client.get(link).status_code == 200


def test_an_enrolled_user_accepts_an_invitation_by_signing_in_on_its_page(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    clock = Clock(app)
    person = add_person(app, "helper@agency.example")
    with app.app_context(), db.transaction() as session:
        user = people.by_email(session, person.email)
        assert user is not None
        token = people.new_link(session, user, now=clock(), merchant_id=merchant.client_id,
                                role="support")
    link = f"/console/enrol/{token}"
    page = client.get(link)
    assert "Shop" in page.text and "support" in page.text
    wrong = client.post(link, data={"step": "invitation", "password": "wrong password!",
                                    "code": next_code(app, person),
                                    "csrf_token": csrf_of(page.text)})
    assert wrong.status_code == 400
    answer = client.post(link, data={"step": "invitation", "password": PASSWORD,
                                     "code": next_code(app, person),
                                     "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303
    assert "helper@agency.example" in client.get("/console/").text
    with app.app_context():
        role = db.session().scalar(select(Membership.role).where(
            Membership.user_id == person.id, Membership.merchant_id == merchant.client_id))
        actions = db.session().scalars(select(AuditEntry.action)).all()
    assert role == "support"
    assert "invitation_accepted" in actions and "signin" in actions
    assert client.get(link).status_code == 404


def test_an_unknown_link_is_a_clear_404(client: FlaskClient) -> None:
    answer = client.get("/console/enrol/not-a-link")
    assert answer.status_code == 404 and "24 hours" in answer.text
