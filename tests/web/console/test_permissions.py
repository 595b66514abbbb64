"""Permissions by table: every back-office route, for every role, an operator, a user of
another merchant, and nobody signed in.

ROUTES names each route's capability and a request that uses merchant A's objects. The test
fails when the blueprint has a route the table does not name (or the table names one the
blueprint lacks), so a new view cannot ship without saying who may use it.

A user of merchant B gets, for anything of A, the same answer as for something that does
not exist, and nothing of A (its name, ids, addresses) in any answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.console import Person, add_person, sign_in
from sqlalchemy.orm import Session

from checkout import audit, clock, db, merchants, roles
from checkout.models import Callback, Delivery, Invoice, Page, Refund, User
from checkout.services import console_sessions
from checkout.services import people as people_service
from checkout.web.console import base

A, B = 11, 22


@dataclass(frozen=True)
class Route:
    capability: str | None  # None: public
    method: str
    path: str  # may name {page_a}, {merchant_a}
    form: tuple[tuple[str, str], ...] = ()  # what a POST sends besides its CSRF token


ROUTES: dict[str, Route] = {
    "login": Route(None, "GET", "/console/login"),
    "code": Route(None, "GET", "/console/login/code"),
    "logout": Route(None, "POST", "/console/logout"),
    "overview": Route(roles.READ, "GET", "/console/"),
    "deliveries": Route(roles.READ, "GET", "/console/deliveries"),
    "delivery_retry": Route(roles.DELIVERIES, "POST", "/console/deliveries/{delivery_a}/retry"),
    "deliveries_replay": Route(roles.DELIVERIES, "GET",
                               "/console/deliveries/replay?merchant={merchant_a}&state=given_up"),
    "deliveries_replay_confirm": Route(
        roles.DELIVERIES, "POST",
        "/console/deliveries/replay?merchant={merchant_a}&state=given_up&count=5"),
    "deliveries_pause": Route(roles.DELIVERIES, "POST",
                              "/console/deliveries/merchants/{merchant_a}/pause"),
    "deliveries_resume": Route(roles.DELIVERIES, "POST",
                               "/console/deliveries/merchants/{merchant_a}/resume"),
    "flagged": Route(roles.READ, "GET", "/console/flagged"),
    "payment": Route(roles.READ, "GET", "/console/payments/{page_a}"),
    "payment_resend": Route(roles.RESEND, "POST", "/console/payments/{page_a}/resend"),
    "payment_ask": Route(roles.RESEND, "POST", "/console/payments/{page_a}/ask"),
    "payment_note": Route(roles.NOTE, "POST", "/console/payments/{page_a}/notes",
                          (("text", "note-of-a"),)),
    "audit_log": Route(roles.AUDIT, "GET", "/console/audit"),
    # Exporting the log needs EXPORT and AUDIT at the same merchants (the gate checks EXPORT).
    "audit_csv": Route(roles.EXPORT, "GET", "/console/audit.csv"),
    "enrol": Route(None, "GET", "/console/enrol/{enrol_token}"),
    "sessions": Route(roles.READ, "GET", "/console/sessions"),
    "end_session": Route(roles.READ, "POST", "/console/sessions/end"),
    "end_other_sessions": Route(roles.READ, "POST", "/console/sessions/end-others"),
}

# The settings and users pages.
ROUTES.update({
    "settings": Route(roles.CONFIGURE, "GET", "/console/settings?merchant={merchant_a}"),
    "settings_brand": Route(roles.SETTINGS, "POST",
                            "/console/settings/brand?merchant={merchant_a}"),
    "settings_developer": Route(roles.DEVELOPER, "POST",
                                "/console/settings/developer?merchant={merchant_a}"),
    "settings_secret": Route(roles.DEVELOPER, "POST",
                             "/console/settings/secret?merchant={merchant_a}"),
    "settings_policies": Route(roles.SETTINGS, "POST",
                               "/console/settings/policies?merchant={merchant_a}"),
    "settings_preview": Route(roles.SETTINGS, "GET",
                              "/console/settings/preview.css?accent=%2308f"),
    "users": Route(roles.USERS, "GET", "/console/users?merchant={merchant_a}"),
    "users_invite": Route(roles.USERS, "POST", "/console/users/invite?merchant={merchant_a}"),
    "users_change": Route(roles.USERS, "POST", "/console/users/change?merchant={merchant_a}"),
    "users_disable": Route(roles.USERS, "POST", "/console/users/disable"),
})

# Text of merchant A that a user of B must never see.
SECRETS_OF_A = ("Shop A", "order-of-a", "addr-of-a", "callback-of-a", "note-of-a", "audit-of-a",
                "203.0.113.11", "agent-of-a", "198.51.100.11")

# The payments list and its export, searched and filtered by A's own keys (the form echoes
# the search, so it searches a key that is not a secret): a user of B gets the empty list
# any unknown key gets, never A's rows. A's invoice names its payer.
ROUTES.update({
    "payments": Route(roles.READ, "GET", f"/console/payments?q=invoice-of-a&merchant={A}"),
    "payments_csv": Route(roles.EXPORT, "GET",
                          f"/console/payments.csv?q=addr-of-a&merchant={A}&attention=1"),
})
SECRETS_OF_A += ("payer-of-a@example.org",)


# Refunds: the list (filtered by A), one refund of A, and the decisions on it. An allowed
# person's empty approval or rejection is refused by the form itself (no code, no reason).
ROUTES.update({
    "refunds": Route(roles.READ, "GET", f"/console/refunds?state=all&merchant={A}"),
    "refund": Route(roles.READ, "GET", "/console/refunds/{refund_a}"),
    "refund_approve": Route(roles.REFUND, "POST", "/console/refunds/{refund_a}/approve",
                            (("confirm_code", "000000"),)),
    "refund_reject": Route(roles.REFUND, "POST", "/console/refunds/{refund_a}/reject"),
})
SECRETS_OF_A += ("refund-addr-of-a",)


@dataclass(frozen=True)
class World:
    values: dict[str, str]
    people: dict[str, Person]  # role or "operator" or "other" (a user of B)


# Also A's API key and secret, its own return host, its owner (the settings and users pages).
SECRETS_OF_A += ("secret-11", "key-11", "a-shop.example", "owner@a.example")


def _page(merchant_id: int, foreign_id: str, address: str) -> Page:
    now = clock.now()
    # The id names no text of its merchant: an error page may show the path that was asked.
    return Page(id=hashlib.sha256(foreign_id.encode()).hexdigest()[:43], kind="deposit",
                merchant_id=merchant_id, foreign_id=foreign_id, currency="BTC",
                address=address, status="waiting", created_at=now, updated_at=now)


def _flagged_and_delivered(session: Session, merchant_id: int, text: str) -> int:
    """A flagged callback of the merchant, forwarded and given up on; the delivery's id."""
    body = json.dumps({"id": 1, "type": "deposit", "status": "confirmed", "note": text}).encode()
    callback = Callback(merchant_id=merchant_id, body=body, processor_id=1, type="deposit",
                        status="confirmed", outcome="flagged",
                        flag="tag differs from the tag we issued for this address",
                        received_at=clock.now())
    session.add(callback)
    session.flush()
    delivery = Delivery(merchant_id=merchant_id, callback_id=callback.id, url="http://x/",
                        body=body, state="failed", attempts=13, last_status=500,
                        last_error="HTTP 500", next_attempt_at=clock.now(),
                        created_at=clock.now())
    session.add(delivery)
    session.flush()
    return delivery.id


def _refund(session: Session, page: Page, address: str) -> int:
    """A refund of the page waiting for a decision; its id."""
    now = clock.now()
    refund = Refund(page_id=page.id, merchant_id=page.merchant_id,
                    foreign_id="rf" + page.id[:20], cause="overpaid", state="requested",
                    currency="BTC", balance_currency="BTC", amount="0.001",
                    amount_received="0.0009", address=address, requested_at=now,
                    updated_at=now)
    session.add(refund)
    session.flush()
    return refund.id


@pytest.fixture
def world(app: Flask) -> World:
    with app.app_context():
        for client_id, name in ((A, "Shop A"), (B, "Shop B")):
            merchants.add(merchants.NewMerchant(
                client_id=client_id, name=name, key=f"key-{client_id}",
                secret=f"secret-{client_id}", return_hosts=("shop.example",),
                # Nothing listens there: a retry is refused at once, never sent anywhere.
                frame_origins=(), webhook_url="http://127.0.0.1:9/hook"))
        with db.transaction() as session:
            page_a, page_b = _page(A, "order-of-a", "addr-of-a"), _page(B, "order-of-b",
                                                                        "addr-of-b")
            session.add_all([page_a, page_b])
            session.flush()
            delivery_a = _flagged_and_delivered(session, A, "callback-of-a")
            _flagged_and_delivered(session, B, "callback-of-b")
            audit.record(session, "settings.change", actor="someone@a.example", merchant_id=A,
                         target="audit-of-a", detail={"note": "audit-of-a"},
                         address="203.0.113.11")
            invoice_page = _page(A, "invoice-of-a", "addr-of-a-invoice")
            invoice_page.kind, invoice_page.status, invoice_page.reason = (
                "invoice", "confirmed", "underpaid")
            session.add(invoice_page)
            session.flush()
            refund_a = _refund(session, page_a, "refund-addr-of-a")
            _refund(session, page_b, "refund-addr-of-b")
            session.add(Invoice(merchant_id=A, foreign_id="invoice-of-a", page_id=invoice_page.id,
                                title="Order", currency="EUR", amount="26",
                                email_user="payer-of-a@example.org",
                                url_success="https://shop.example/ok",
                                url_failed="https://shop.example/failed", status="confirmed"))
    people = {role: add_person(app, f"{role}@a.example", roles={A: role}) for role in roles.ROLES}
    people["operator"] = add_person(app, "op@site.example", operator=True)
    with app.app_context():
        merchants.edit(A, merchants.MerchantEdit(add_return_hosts=("a-shop.example",)))
    people["other"] = add_person(app, "owner@b.example", roles={B: "owner"})
    with app.app_context(), db.transaction() as session:
        # A session of A's owner elsewhere, and a newcomer's enrolment link (no merchant).
        owner_a = session.get(User, people["owner"].id)
        assert owner_a is not None
        console_sessions.start(session, owner_a, now=clock.now(), address="198.51.100.11",
                               user_agent="agent-of-a", stage=console_sessions.SIGNED_IN)
        newcomer = User(email="newcomer@site.example", created_at=clock.now())
        session.add(newcomer)
        session.flush()
        enrol_token = people_service.new_link(session, newcomer, now=clock.now())
    return World({"page_a": page_a.id, "merchant_a": str(A), "delivery_a": str(delivery_a),
                  "enrol_token": enrol_token, "refund_a": str(refund_a)},
                 people)


def test_the_table_names_every_route_of_the_back_office(app: Flask) -> None:
    rules = {rule.endpoint.removeprefix("console.") for rule in app.url_map.iter_rules()
             if rule.endpoint.startswith("console.")}
    assert rules == set(ROUTES)
    assert {name: base.REQUIRED[name] for name in rules} == {
        name: route.capability for name, route in ROUTES.items()}


def _ask(client: FlaskClient, route: Route, world: World, token: str | None) -> int:
    path = route.path.format(**world.values)
    if route.method == "GET":
        return client.get(path).status_code
    return client.post(path, data={**dict(route.form), "csrf_token": token or ""}).status_code


def _cases() -> Iterator[tuple[str, str]]:
    for endpoint in ROUTES:
        for who in (*roles.ROLES, "operator"):
            yield endpoint, who


@pytest.mark.parametrize(("endpoint", "who"), list(_cases()))
def test_each_role_gets_what_its_capabilities_allow(app: Flask, world: World, endpoint: str,
                                                    who: str) -> None:
    route = ROUTES[endpoint]
    client = app.test_client()
    token = sign_in(app, client, world.people[who])
    status = _ask(client, route, world, token)
    allowed = route.capability is None or who == "operator" or roles.allows(who,
                                                                             route.capability)
    if allowed:
        # 422: past the gate, the (empty) form itself was refused.
        assert status < 400 or status == 422, (endpoint, who, status)
    else:
        assert status == 403, (endpoint, who, status)


@pytest.mark.parametrize("endpoint", [e for e, r in ROUTES.items() if r.capability])
def test_nobody_signed_in_gets_nothing(app: Flask, world: World, endpoint: str) -> None:
    route = ROUTES[endpoint]
    status = _ask(app.test_client(), route, world, None)
    assert status in (302, 400, 401)


@pytest.mark.parametrize("endpoint", list(ROUTES))
def test_a_user_of_another_merchant_sees_nothing_of_it(app: Flask, world: World,
                                                       endpoint: str) -> None:
    route = ROUTES[endpoint]
    client = app.test_client()
    token = sign_in(app, client, world.people["other"])
    path = route.path.format(**world.values)
    answer = (client.get(path) if route.method == "GET"
              else client.post(path, data={**dict(route.form), "csrf_token": token}))
    if "{" in route.path and route.capability is not None:  # a public link is nobody's
        assert answer.status_code in (403, 404), (endpoint, answer.status_code)
    for text in SECRETS_OF_A:
        assert text not in answer.get_data(as_text=True), (endpoint, text)
