"""The back office in tests: enrolled users with roles, signed in through the real two steps
(password, then a TOTP code computed from the user's secret)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from checkout import clock, db, passwords, totp
from checkout.models import Membership, User

PASSWORD = "correct horse battery staple"
_HASHED: list[str] = []  # argon2 is slow by design: hash the one test password once


def _password_hash() -> str:
    if not _HASHED:
        _HASHED.append(passwords.hash_password(PASSWORD))
    return _HASHED[0]
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    secret: str


def add_person(app: Flask, email: str, *, operator: bool = False,
               roles: dict[int, str] | None = None) -> Person:
    """An enrolled user (password PASSWORD) with `roles` {merchant id: role}."""
    secret = totp.new_secret()
    with app.app_context(), db.transaction() as session:
        user = User(email=email.lower(), password_hash=_password_hash(),
                    totp_secret=secret, operator=operator, enrolled_at=clock.now())
        session.add(user)
        session.flush()
        for merchant_id, role in (roles or {}).items():
            session.add(Membership(user_id=user.id, merchant_id=merchant_id, role=role))
        return Person(user.id, user.email, secret)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def next_code(app: Flask, person: Person) -> str:
    """A code the site has not seen yet: each code is good once, so a second sign-in within
    the same 30 s uses the next step's (the site accepts one step of drift)."""
    with app.app_context():
        last = db.session().get(User, person.id).totp_last_step  # type: ignore[union-attr]
    step = clock.unix(clock.now()) // totp.STEP
    if last is not None and last >= step:
        step = last + 1
    return totp.code_of_step(person.secret, step)


def sign_in(app: Flask, client: FlaskClient, person: Person) -> str:
    """Sign `person` in on `client`; returns the CSRF token of the signed-in session."""
    page = client.get("/console/login")
    answer = client.post("/console/login", data={
        "email": person.email, "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 302, answer.text
    page = client.get("/console/login/code")
    answer = client.post("/console/login/code", data={
        "code": next_code(app, person), "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 302, answer.text
    return csrf_of(client.get("/console/").text)


def sign_in_browser(app: Flask, page: Any, base_url: str, person: Person,
                    on_each: Callable[[Any, str], None] | None = None) -> None:
    """Sign `person` in through the browser's own forms: the password typed, then the TOTP
    code of now. `on_each(page, name)` runs on the sign-in page and the code page as the
    person reaches them (an accessibility check, screenshots)."""
    page.goto(f"{base_url}/console/login")
    if on_each is not None:
        on_each(page, "login")
    page.fill("#email", person.email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/console/login/code**")
    if on_each is not None:
        on_each(page, "code")
    page.fill("#code", next_code(app, person))
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/console/login" not in url)
