"""The back office in tests: enrolled users with roles, signed in through the real two steps
(password, then a TOTP code computed from the user's secret)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
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
    with app.app_context():  # the site's clock: a test may have set it
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
class Clock:
    """The site's clock in a test (app.config["CLOCK"]): still until moved."""

    def __init__(self, app: Flask) -> None:
        self.moment = clock.system_now().replace(microsecond=0)
        app.config["CLOCK"] = self

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **how_long: float) -> None:
        self.moment += timedelta(**how_long)

    def code(self, person: Person) -> str:
        """The code of the next step on this clock, moved on to it: each confirmation
        needs a code not used yet."""
        self.advance(seconds=totp.STEP)
        return totp.code_at(person.secret, self.moment)


_SECRET = re.compile(r'data-field="totp-secret">([A-Z2-7 ]+)<')
_RECOVERY = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")


def enrol(app: Flask, client: FlaskClient, link: str,
          password: str = PASSWORD) -> tuple[str, list[str]]:
    """Enrol through a one-time link's page as a person would: the password twice, the key
    read off the page, a code from it; returns the TOTP secret and the recovery codes."""
    page = client.get(link)
    assert page.status_code == 200, page.text
    answer = client.post(link, data={"step": "password", "password": password,
                                     "again": password, "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303, answer.text
    page = client.get(link)
    found = _SECRET.search(page.text)
    assert found, "no secret on the enrolment page"
    secret = found.group(1).replace(" ", "")
    with app.app_context():
        code = totp.code_at(secret, clock.now())
    answer = client.post(link, data={"step": "factor", "code": code,
                                     "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 200, answer.text
    return secret, _RECOVERY.findall(answer.text)
