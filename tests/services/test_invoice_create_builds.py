"""`invoices/create` builds its page's model once, whatever the type: a type 3 create commits
the invoice with its quote's foreign_id, then the processor's answer, in two transactions, yet
only the outcome is ever shown, so only the outcome is built (snapshot.one_change).

The real model builder is wrapped with a counter; commits are counted by SQLAlchemy's
`after_commit` on the app's sessions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from kit.invoices import ORDER, TYPE_3, TestShop
from kit.live import LiveServer
from sqlalchemy import event, select

from checkout import db, money, pagekinds
from checkout.models import Invoice, Page


@dataclass
class Work:
    builds: list[str] = field(default_factory=list)  # page ids, one per model built
    commits: int = 0


@pytest.fixture
def work(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Work]:
    counted = Work()
    real = pagekinds.page_model

    def build(session: Any, page: Page, *args: Any, **kwargs: Any) -> pagekinds.PageModel:
        counted.builds.append(page.id)
        return real(session, page, *args, **kwargs)

    def committed(_session: Any) -> None:
        counted.commits += 1

    monkeypatch.setattr(pagekinds, "page_model", build)
    factory = app.extensions[db.EXTENSION + ".factory"]
    event.listen(factory, "after_commit", committed)
    try:
        yield counted
    finally:
        event.remove(factory, "after_commit", committed)


def stored_and_fresh(app: Flask, invoice_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The page's stored model (moment-of-reading keys aside) and one built now."""
    with app.app_context():
        session = db.session()
        page_id = session.scalar(select(Invoice.page_id).where(Invoice.id == invoice_id))
        page = session.get(Page, page_id)
        assert page is not None and page.model_json is not None
        stored = json.loads(page.model_json)
        for key in ("_deadline", "_fiat_at", "seconds_left"):
            stored.pop(key)
        fresh = json.loads(money.dumps(pagekinds.page_model(session, page)))
        fresh.pop("seconds_left")
        return stored, fresh


@pytest.mark.parametrize("order", [ORDER, {**ORDER, "timer": True}, TYPE_3],
                         ids=["type 1", "type 2", "type 3"])
def test_invoices_create_builds_the_page_model_once(
        app: Flask, live_server: LiveServer, merchant: Any, work: Work,
        order: dict[str, Any]) -> None:
    answer = TestShop(live_server.url).create(order)
    assert answer.status_code == 200, answer.text
    made, commits = list(work.builds), work.commits

    assert len(made) == 1, (made, commits)
    # A type 3 create is two transactions (invoice and quote, then the processor's answer):
    # one build for both, at the last.
    assert commits == (2 if order is TYPE_3 else 1)
    stored, fresh = stored_and_fresh(app, answer.json()["data"]["id"])
    assert stored == fresh  # the one build is the outcome's
    assert stored["phase"] == ("waiting" if order is TYPE_3 else "choose")


def test_a_type_3_create_the_processor_refuses_builds_nothing(
        app: Flask, live_server: LiveServer, merchant: Any, work: Work) -> None:
    answer = TestShop(live_server.url).create(TYPE_3, amount="1")
    assert answer.status_code == 400, answer.text
    assert work.builds == []
    with app.app_context():
        assert db.session().scalar(select(Page.id)) is None
