"""Signing in to the back office: the password, then a TOTP code; the cookie it sets."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from kit.console import PASSWORD, add_person, csrf_of, next_code

from checkout.models import Merchant


def test_a_signed_out_visit_goes_to_the_sign_in(client: FlaskClient) -> None:
    answer = client.get("/console/")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/console/login")


def test_password_then_code_signs_in_with_a_cookie_scoped_to_the_back_office(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    person = add_person(app, "owner@shop.example", roles={merchant.client_id: "owner"})
    page = client.get("/console/login")
    answer = client.post("/console/login", data={
        "email": "Owner@Shop.example", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    cookie = answer.headers["Set-Cookie"]
    assert "Path=/console" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # The password alone signs nobody in.
    assert client.get("/console/").status_code == 302
    page = client.get("/console/login/code")
    client.post("/console/login/code", data={"code": next_code(app, person),
                                             "csrf_token": csrf_of(page.text)})
    assert "owner@shop.example" in client.get("/console/").text


def _code_step(client: FlaskClient, person_email: str, code: str) -> int:
    page = client.get("/console/login")
    client.post("/console/login", data={"email": person_email, "password": PASSWORD,
                                        "csrf_token": csrf_of(page.text)})
    page = client.get("/console/login/code")
    return client.post("/console/login/code", data={"code": code,
                                                    "csrf_token": csrf_of(page.text)}
                       ).status_code


def test_a_code_is_good_once(app: Flask, merchant: Merchant) -> None:
    person = add_person(app, "a@shop.example", roles={merchant.client_id: "viewer"})
    code = next_code(app, person)
    assert _code_step(app.test_client(), person.email, code) == 302
    assert _code_step(app.test_client(), person.email, code) == 401


def test_wrong_password_and_unknown_email_answer_alike(app: Flask, client: FlaskClient,
                                                       merchant: Merchant) -> None:
    add_person(app, "b@shop.example", roles={merchant.client_id: "viewer"})
    token = csrf_of(client.get("/console/login").text)
    wrong = client.post("/console/login", data={"email": "b@shop.example", "password": "x" * 12,
                                                "csrf_token": token})
    unknown = client.post("/console/login", data={"email": "nobody@shop.example",
                                                  "password": "x" * 12, "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.text.replace("b@shop.example", "") == unknown.text.replace(
        "nobody@shop.example", "")


def test_a_post_without_the_token_is_refused(client: FlaskClient) -> None:
    client.get("/console/login")
    assert client.post("/console/login", data={"email": "x@y.z", "password": "p"}
                       ).status_code == 400


def test_errors_in_the_back_office_are_its_own_pages(app: Flask, client: FlaskClient) -> None:
    client.get("/console/login")
    expired = client.post("/console/login", data={"email": "x@y.z", "password": "p"})
    missing = client.get("/console/no-such-part")
    for answer in (expired, missing):
        assert "Back office" in answer.text
        assert answer.headers["Cache-Control"] == "no-store"
    assert "This form has expired" in expired.text
    assert missing.status_code == 404


def test_outside_sandbox_mode_the_cookies_are_secure(make_app: Callable[..., Flask]) -> None:
    site = make_app(SANDBOX=False, PROCESSOR_URL="http://127.0.0.1:9/api/v2")
    client = site.test_client()
    form_cookie = client.get("/console/login", base_url="https://site.example").headers[
        "Set-Cookie"]
    assert "Secure" in form_cookie and "Path=/console" in form_cookie
    assert "HttpOnly" in form_cookie and "SameSite=Strict" in form_cookie
