"""The back office's usual cast: a clock the sign-in codes follow, the shop's owner, and the
owner signed in (the CSRF token of the session returned)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.console import Clock, Person, add_person, sign_in

from checkout.models import Merchant


@pytest.fixture
def tick(app: Flask) -> Clock:
    return Clock(app)


@pytest.fixture
def owner(app: Flask, merchant: Merchant) -> Person:
    return add_person(app, "owner@shop.example", roles={merchant.client_id: "owner"})


@pytest.fixture
def signed_in(app: Flask, client: FlaskClient, owner: Person, tick: Clock) -> str:
    return sign_in(app, client, owner)
