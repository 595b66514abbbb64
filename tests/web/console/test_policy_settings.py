"""A merchant's policies for money that did not arrive as asked, in the back office and by
`merchant edit`: the same parsers refuse the same hostile values in the same words and
nothing is stored; the automatic approval of refunds (money leaving without a person) asks
the code again; every change audited."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from kit.console import Clock, Person, add_person, sign_in
from markupsafe import escape
from sqlalchemy import select

from checkout import audit, db
from checkout.models import AuditEntry, Merchant

URL = "/console/settings?merchant=11"
POLICIES = "/console/settings/policies?merchant=11"
COLUMNS = ("underpaid_percent", "underpaid_fiat", "policy_currency", "late_accept",
           "refund_auto_below")


def stored(app: Flask) -> dict[str, Any]:
    with app.app_context():
        m = db.session().get(Merchant, 11)
        assert m is not None
        row = {column: getattr(m, column) for column in COLUMNS}
        db.session().rollback()
        return row


def audited(app: Flask) -> list[dict[str, Any]]:
    with app.app_context():
        rows = db.session().scalars(select(AuditEntry).where(
            AuditEntry.action == "settings.policies").order_by(AuditEntry.id)).all()
        return [audit.detail(r) for r in rows]


def form(token: str, code: str = "", **changes: str) -> dict[str, str]:
    values = {"csrf_token": token, "underpaid_percent": "0", "underpaid_fiat": "0",
              "policy_currency": "EUR", "late_accept": "1", "refund_auto_below": "0",
              "confirm_code": code}
    values.update(changes)
    return values


def test_the_defaults_are_the_safe_side_and_shown(app: Flask, client: FlaskClient,
                                                  signed_in: str) -> None:
    assert stored(app) == {"underpaid_percent": "0", "underpaid_fiat": "0",
                           "policy_currency": "EUR", "late_accept": True,
                           "refund_auto_below": "0"}
    page = client.get(URL).text
    assert 'name="underpaid_percent"' in page and 'id="late-accept" name="late_accept" ' \
        'value="1" checked' in page


def test_tolerance_and_late_payments_change_without_the_code_and_are_audited(
        app: Flask, client: FlaskClient, signed_in: str) -> None:
    answer = client.post(POLICIES, data=form(signed_in, underpaid_percent="1.5",
                                             underpaid_fiat="2.50", policy_currency="usd",
                                             late_accept=""))
    assert answer.status_code == 303 and answer.headers["Location"].endswith("done=policies")
    assert stored(app) == {"underpaid_percent": "1.5", "underpaid_fiat": "2.5",
                           "policy_currency": "USD", "late_accept": False,
                           "refund_auto_below": "0"}
    [entry] = audited(app)
    assert sorted(entry["fields"]) == sorted(["underpaid_percent", "underpaid_fiat",
                                              "policy_currency", "late_accept"])
    # The same form again changes nothing and writes nothing.
    again = client.post(POLICIES, data=form(signed_in, underpaid_percent="1.50",
                                            underpaid_fiat="2.5", policy_currency="USD",
                                            late_accept=""))
    assert again.headers["Location"].endswith("done=unchanged") and len(audited(app)) == 1


def test_the_automatic_approval_asks_the_code_again(
        app: Flask, client: FlaskClient, signed_in: str, owner: Person, tick: Clock) -> None:
    for code in ("", "000000", "١٢٣٤٥٦"):
        answer = client.post(POLICIES, data=form(signed_in, code, refund_auto_below="20"))
        assert answer.status_code == 422
        assert "That code is not right: nothing was changed." in answer.text
        assert stored(app)["refund_auto_below"] == "0" and audited(app) == []
    answer = client.post(POLICIES, data=form(signed_in, tick.code(owner),
                                             refund_auto_below="20"))
    assert answer.status_code == 303
    assert stored(app)["refund_auto_below"] == "20"
    assert audited(app)[0]["fields"] == ["refund_auto_below"]
    # Another currency changes what a limit in force means: the code again.
    answer = client.post(POLICIES, data=form(signed_in, refund_auto_below="20",
                                             policy_currency="JPY"))
    assert answer.status_code == 422 and stored(app)["policy_currency"] == "EUR"


# Hostile values: exponents, signs, not-a-number, other scripts' digits, too many digits.
HOSTILE = ["1e3", "-1", "NaN", "٣", "1" * 20, "Infinity", "0x10", "1,5", " ", "2.5.1",
           "<script>"]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(("option", "field"), [("--underpaid-percent", "underpaid_percent"),
                                               ("--underpaid-fiat", "underpaid_fiat"),
                                               ("--refund-auto-below", "refund_auto_below")])
def test_a_hostile_value_is_refused_by_the_command_and_the_form_alike(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner, signed_in: str,
        owner: Person, tick: Clock, option: str, field: str, value: str) -> None:
    before = stored(app)
    result = runner.invoke(args=["merchant", "edit", "--client-id", "11", option, value])
    assert result.exit_code != 0
    message = result.output.strip().removeprefix("Error: ")
    answer = client.post(POLICIES, data=form(signed_in, tick.code(owner), **{field: value}))
    assert answer.status_code == 422
    assert str(escape(message)) in answer.text  # the parser's own words, under the field
    assert f'id="{field.replace("_", "-")}-error"' in answer.text
    assert stored(app) == before and audited(app) == []


@pytest.mark.parametrize(("field", "value", "words"), [
    ("underpaid_percent", "10.5", "at most 10 percent"),
    ("underpaid_fiat", "1.005", "two decimal places"),
    ("policy_currency", "BTC", "not a fiat currency"),
    ("policy_currency", "XXX", "not a fiat currency"),
])
def test_values_out_of_bounds_are_refused_with_the_reason(
        app: Flask, client: FlaskClient, signed_in: str, field: str, value: str,
        words: str) -> None:
    before = stored(app)
    answer = client.post(POLICIES, data=form(signed_in, **{field: value}))
    assert answer.status_code == 422 and words in answer.text
    assert stored(app) == before


def test_merchant_edit_sets_every_policy_and_says_so(app: Flask, runner: FlaskCliRunner,
                                                     merchant: Merchant) -> None:
    result = runner.invoke(args=["merchant", "edit", "--client-id", "11",
                                 "--underpaid-percent", "2", "--underpaid-fiat", "5.00",
                                 "--policy-currency", "gbp", "--no-late-accept",
                                 "--refund-auto-below", "15.5"])
    assert result.exit_code == 0, result.output
    assert stored(app) == {"underpaid_percent": "2", "underpaid_fiat": "5",
                           "policy_currency": "GBP", "late_accept": False,
                           "refund_auto_below": "15.5"}
    assert "refund auto below: 15.5" in result.output
    assert "refunds approved below: 15.5 GBP" in result.output
    result = runner.invoke(args=["merchant", "edit", "--client-id", "11", "--late-accept"])
    assert result.exit_code == 0 and stored(app)["late_accept"] is True
    # All or nothing: one bad value, nothing of the good ones.
    result = runner.invoke(args=["merchant", "edit", "--client-id", "11",
                                 "--underpaid-percent", "3", "--policy-currency", "DOGE"])
    assert result.exit_code != 0 and stored(app)["underpaid_percent"] == "2"


def test_a_viewer_and_a_developer_cannot_change_policies(
        app: Flask, merchant: Merchant, tick: Clock) -> None:
    for role in ("viewer", "developer", "support", "accountant"):
        person = add_person(app, f"{role}@shop.example", roles={11: role})
        client = app.test_client()
        token = sign_in(app, client, person)
        answer = client.post(POLICIES, data=form(token, tick.code(person),
                                                 refund_auto_below="1000"))
        assert answer.status_code == 403, role
    assert stored(app)["refund_auto_below"] == "0"
