"""Opening a link writes each change once: the page's stored model is built once per page
the request changes, in as few commits as correctness needs (a fresh page, its rate and
its link in one; a link let go by a paid page does not rewrite that page's model)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.deposits import (
    LINK,
    link_query,
    open_link,
    paid_page,
    send_deposit,
    token_of,
)
from sqlalchemy import event

from checkout import clock, db, pagekinds
from checkout.models import CurrencyLimit

# The customer's address, the pair's rate and the minimum deposits are known already: what
# an ordinary click finds (a fresh install fetches the minimums once, with its own commits).
pytestmark = pytest.mark.usefixtures("address", "fresh_rate", "known_minimums")


@pytest.fixture
def known_minimums(app: Flask) -> None:
    with app.app_context(), db.transaction() as s:
        s.add(CurrencyLimit(currency="BTC", minimum_amount="0.0001", precision=8,
                            fetched_at=clock.now()))


@dataclass
class Writes:
    """What one request did to the database: page models built, commits made."""

    builds: int = 0
    commits: int = 0
    counting: bool = field(default=False)

    def during(self, request: Callable[[], Any]) -> Any:
        self.builds = self.commits = 0
        self.counting = True
        try:
            return request()
        finally:
            self.counting = False


@pytest.fixture
def writes(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Writes]:
    """Counts the real model builder's calls and the app's sessions' commits."""
    seen = Writes()
    build = pagekinds.page_model

    def counted_build(*args: Any, **kwargs: Any) -> dict[str, Any]:
        if seen.counting:
            seen.builds += 1
        return build(*args, **kwargs)

    def counted_commit(_session: Any) -> None:
        if seen.counting:
            seen.commits += 1

    monkeypatch.setattr(pagekinds, "page_model", counted_build)
    factory = app.extensions[db.EXTENSION + ".factory"]
    event.listen(factory, "after_commit", counted_commit)
    try:
        yield seen
    finally:
        event.remove(factory, "after_commit", counted_commit)


def test_a_first_click_builds_the_page_model_once_and_commits_it_with_the_page(
        client: FlaskClient, writes: Writes) -> None:
    response = writes.during(lambda: client.get("/terminal", query_string=link_query(LINK)))
    assert response.status_code == 303
    # The page with its one model; then the page's rendering for the view the 303 leads to.
    assert (writes.builds, writes.commits) == (1, 2)
    model = client.get(response.headers["Location"] + "/status").get_json()
    assert model["fiat"]["currency"] == "EUR"  # the rate is in the one model written


def test_a_repeated_click_writes_nothing(client: FlaskClient, writes: Writes) -> None:
    page = open_link(client)
    again = writes.during(lambda: open_link(client))
    assert again == page
    assert (writes.builds, writes.commits) == (0, 0)


def test_a_link_let_go_by_its_cancelled_page_opens_a_fresh_one_in_one_write(
        app: Flask, client: FlaskClient, writes: Writes) -> None:
    cancelled = open_link(client)
    send_deposit(app, 1, "cancelled")
    cancelled_model = client.get(cancelled + "/status").get_data()
    fresh = writes.during(lambda: open_link(client))
    assert fresh != cancelled
    assert (writes.builds, writes.commits) == (1, 2)  # the fresh page; its rendering
    assert client.get(cancelled + "/status").get_data() == cancelled_model
    assert client.get(fresh + "/status").get_json()["status"] == "waiting"


def test_paying_again_builds_only_the_fresh_pages_model(
        client: FlaskClient, writes: Writes) -> None:
    page = paid_page(client)
    paid_model = client.get(page + "/status").get_data()
    token = token_of(client.get(page).get_data(as_text=True))
    response = writes.during(lambda: client.post(page + "/again", data={"csrf_token": token}))
    assert response.status_code == 303
    assert (writes.builds, writes.commits) == (1, 1)
    # The paid page's stored model did not need rewriting: it is what it was.
    assert client.get(page + "/status").get_data() == paid_model
    assert open_link(client) == response.headers["Location"].split("?")[0]
