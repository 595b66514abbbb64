"""`flask --app checkout user add|list|disable`: the first users from the command line, with
clear refusals (exit code 1 or 2) that change nothing, audited as "command line"."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from kit.console import add_person, sign_in
from sqlalchemy import func, select

from checkout import db
from checkout.models import AuditEntry, Merchant, User


def _users(app: Flask) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(User)) or 0


def test_add_prints_a_link_under_the_public_url(make_app: Callable[..., Flask]) -> None:
    app = make_app(PUBLIC_URL="https://pay.example")
    result = app.test_cli_runner().invoke(args=["user", "add", "--email", "ops@site.example",
                                                "--operator"])
    assert result.exit_code == 0, result.output
    assert "https://pay.example/console/enrol/" in result.output
    with app.app_context():
        entry = db.session().scalars(select(AuditEntry)).one()
    assert (entry.action, entry.actor, entry.target) == ("user_added", "command line",
                                                         "ops@site.example")


@pytest.mark.parametrize(("args", "says"), [
    (["--client-id", "999", "--role", "owner"], "no merchant with client_id 999"),
    (["--client-id", "11", "--role", "boss"], "unknown role"),
    (["--client-id", "11", "--role", "owner", "--operator"], "either --operator"),
    ([], "either --operator"),
    (["--client-id", "11"], "--client-id needs --role"),
])
def test_add_refuses_clearly_and_adds_nobody(app: Flask, runner: FlaskCliRunner,
                                             merchant: Merchant, args: list[str],
                                             says: str) -> None:
    result = runner.invoke(args=["user", "add", "--email", "x@shop.example",
                                 "--base-url", "https://pay.example", *args])
    assert result.exit_code != 0
    assert says in result.output
    assert _users(app) == 0


def test_add_refuses_an_existing_email(app: Flask, runner: FlaskCliRunner) -> None:
    base = ["user", "add", "--operator", "--base-url", "https://pay.example", "--email"]
    assert runner.invoke(args=[*base, "ops@site.example"]).exit_code == 0
    again = runner.invoke(args=[*base, "OPS@site.example"])
    assert again.exit_code != 0 and "exists already" in again.output
    assert _users(app) == 1


def test_add_without_a_public_url_says_how(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["user", "add", "--email", "a@b.example", "--operator"])
    assert result.exit_code != 0 and "CHECKOUT_PUBLIC_URL" in result.output
    assert _users(app) == 0


def test_list_shows_roles_enrolment_and_disabled(app: Flask, runner: FlaskCliRunner,
                                                 merchant: Merchant) -> None:
    add_person(app, "owner@shop.example", roles={merchant.client_id: "owner"})
    runner.invoke(args=["user", "add", "--email", "ops@site.example", "--operator",
                        "--base-url", "https://pay.example"])
    runner.invoke(args=["user", "disable", "--email", "owner@shop.example"])
    lines = runner.invoke(args=["user", "list"]).output.splitlines()
    assert lines[0].startswith("ops@site.example\toperator\tnot enrolled")
    assert lines[1].startswith(f"owner@shop.example\towner@{merchant.client_id}\tenrolled")
    assert "disabled" in lines[1] and "disabled" not in lines[0]


def test_disable_ends_the_users_sessions(app: Flask, runner: FlaskCliRunner,
                                         merchant: Merchant) -> None:
    person = add_person(app, "owner@shop.example", roles={merchant.client_id: "owner"})
    client = app.test_client()
    sign_in(app, client, person)
    result = runner.invoke(args=["user", "disable", "--email", "Owner@shop.example"])
    assert result.exit_code == 0 and "sessions ended: 1" in result.output
    assert client.get("/console/").status_code == 302
    unknown = runner.invoke(args=["user", "disable", "--email", "nobody@shop.example"])
    assert unknown.exit_code != 0 and "no user" in unknown.output
    with app.app_context():
        actions = db.session().scalars(select(AuditEntry.action).where(
            AuditEntry.actor == "command line")).all()
    assert actions == ["user_disabled"]
