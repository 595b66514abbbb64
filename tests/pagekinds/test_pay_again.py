"""'Make another payment' on a paid page: a deliberate form, bound to the page, never a GET,
never another site's doing, and never two fresh pages for one click sent twice.

Payments arrive as the processor's signed callbacks, through /callbacks/coinspaid.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.deposits import (
    BTC_ADDRESS,
    LINK,
    count,
    open_link,
    paid_page,
    token_of,
)

from checkout.models import Page

# An address taken before for this customer, and a fresh rate: the link needs no processor.
pytestmark = pytest.mark.usefixtures("address", "fresh_rate")






def test_paying_again_opens_a_fresh_page_that_the_link_then_opens(
        app: Flask, client: FlaskClient) -> None:
    page = paid_page(client)
    token = token_of(client.get(page).get_data(as_text=True))
    response = client.post(page + "/again", data={"csrf_token": token})
    assert response.status_code == 303
    fresh = response.headers["Location"].split("?")[0]
    assert fresh != page
    model = client.get(fresh + "/status").get_json()
    assert (model["phase"], model["amount_due"], model["address"]) == (
        "waiting", "0.00123", BTC_ADDRESS)
    assert open_link(client) == fresh
    assert client.get(page + "/status").get_json()["phase"] == "paid"  # the old one stays


def test_the_same_form_sent_twice_makes_one_fresh_page(
        app: Flask, client: FlaskClient) -> None:
    page = paid_page(client)
    token = token_of(client.get(page).get_data(as_text=True))
    first = client.post(page + "/again", data={"csrf_token": token}).headers["Location"]
    second = client.post(page + "/again", data={"csrf_token": token}).headers["Location"]
    assert first == second
    assert count(app, Page) == 2


@pytest.mark.parametrize("token", [None, "", "0" * 64, "x" * 5000, "\x00"])
def test_a_missing_or_forged_token_is_refused_and_makes_nothing(
        app: Flask, client: FlaskClient,
        token: str | None) -> None:
    page = paid_page(client)
    data = {} if token is None else {"csrf_token": token}
    response = client.post(page + "/again", data=data)
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    assert count(app, Page) == 1


def test_another_pages_token_does_not_work_here(
        app: Flask, client: FlaskClient) -> None:
    page = paid_page(client)
    other = open_link(client, {**LINK, "amount": "0.002", "foreign_id": "user-7"})
    other_token = token_of(client.get(other).get_data(as_text=True))
    assert client.post(page + "/again", data={"csrf_token": other_token}).status_code == 400
    assert count(app, Page) == 2


def test_an_unpaid_page_cannot_be_paid_again_and_a_get_does_nothing(
        app: Flask, client: FlaskClient) -> None:
    page = open_link(client)
    token = token_of(client.get(page).get_data(as_text=True))
    response = client.post(page + "/again", data={"csrf_token": token})
    assert (response.status_code, response.headers["Location"]) == (303, page)
    assert client.get(page + "/again").status_code == 405
    assert count(app, Page) == 1


def test_an_unknown_page_is_the_plain_404(app: Flask, client: FlaskClient) -> None:
    assert client.post("/p/" + "a" * 32 + "/again", data={"csrf_token": "x"}).status_code == 404
