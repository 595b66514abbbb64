"""Permissions by table: every back-office route, for every role, an operator, a user of
another merchant, and nobody signed in.

ROUTES names each route's capability and a request that uses merchant A's objects. The test
fails when the blueprint has a route the table does not name (or the table names one the
blueprint lacks), so a new view cannot ship without saying who may use it.

A user of merchant B gets, for anything of A, the same answer as for something that does
not exist, and nothing of A (its name, ids, addresses) in any answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.console import Person, add_person, sign_in

from checkout import clock, db, merchants, roles
from checkout.models import Invoice, Page
from checkout.web.console import base

A, B = 11, 22


@dataclass(frozen=True)
class Route:
    capability: str | None  # None: public
    method: str
    path: str  # may name {page_a}, {merchant_a}


ROUTES: dict[str, Route] = {
    "login": Route(None, "GET", "/console/login"),
    "code": Route(None, "GET", "/console/login/code"),
    "logout": Route(None, "POST", "/console/logout"),
    "overview": Route(roles.READ, "GET", "/console/"),
}

# Text of merchant A that a user of B must never see.
SECRETS_OF_A = ("Shop A", "order-of-a", "addr-of-a")

# The payments list and its export, searched and filtered by A's own keys (the form echoes
# the search, so it searches a key that is not a secret): a user of B gets the empty list
# any unknown key gets, never A's rows. A's invoice names its payer.
ROUTES.update({
    "payments": Route(roles.READ, "GET", f"/console/payments?q=invoice-of-a&merchant={A}"),
    "payments_csv": Route(roles.EXPORT, "GET",
                          f"/console/payments.csv?q=addr-of-a&merchant={A}&attention=1"),
})
SECRETS_OF_A += ("payer-of-a@example.org",)


@dataclass(frozen=True)
class World:
    values: dict[str, str]
    people: dict[str, Person]  # role or "operator" or "other" (a user of B)


def _page(merchant_id: int, foreign_id: str, address: str) -> Page:
    now = clock.now()
    return Page(id=f"{foreign_id}-page".ljust(43, "x")[:43], kind="deposit",
                merchant_id=merchant_id, foreign_id=foreign_id, currency="BTC",
                address=address, status="waiting", created_at=now, updated_at=now)


@pytest.fixture
def world(app: Flask) -> World:
    with app.app_context():
        for client_id, name in ((A, "Shop A"), (B, "Shop B")):
            merchants.add(merchants.NewMerchant(
                client_id=client_id, name=name, key=f"key-{client_id}",
                secret=f"secret-{client_id}", return_hosts=("shop.example",),
                frame_origins=(), webhook_url="https://shop.example/hook"))
        with db.transaction() as session:
            page_a = _page(A, "order-of-a", "addr-of-a")
            session.add_all([page_a, _page(B, "order-of-b", "addr-of-b")])
            invoice_page = _page(A, "invoice-of-a", "addr-of-a-invoice")
            invoice_page.kind, invoice_page.status, invoice_page.reason = (
                "invoice", "confirmed", "underpaid")
            session.add(invoice_page)
            session.flush()
            session.add(Invoice(merchant_id=A, foreign_id="invoice-of-a", page_id=invoice_page.id,
                                title="Order", currency="EUR", amount="26",
                                email_user="payer-of-a@example.org",
                                url_success="https://shop.example/ok",
                                url_failed="https://shop.example/failed", status="confirmed"))
    people = {role: add_person(app, f"{role}@a.example", roles={A: role}) for role in roles.ROLES}
    people["operator"] = add_person(app, "op@site.example", operator=True)
    people["other"] = add_person(app, "owner@b.example", roles={B: "owner"})
    return World({"page_a": page_a.id, "merchant_a": str(A)}, people)


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
    return client.post(path, data={"csrf_token": token or ""}).status_code


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
        assert status < 400, (endpoint, who, status)
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
              else client.post(path, data={"csrf_token": token}))
    if "{" in route.path:
        assert answer.status_code in (403, 404), (endpoint, answer.status_code)
    for text in SECRETS_OF_A:
        assert text not in answer.get_data(as_text=True), (endpoint, text)
