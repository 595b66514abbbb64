"""What applying a callback costs: the page it changes gets its model built once, in the one
commit that stores the callback; a replay of news already applied builds nothing.

The snapshot hook (checkout/snapshot.py) writes a page's model on flush/commit, so a news
engine that flushed, committed or re-marked a page more than it needs would build the model
(deposits, quotes, limits, rates) again for nothing. Counted on the real builder, through the
real endpoint, signed as the processor signs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import (
    callbacks_of,
    deposit_body,
    invoice_body,
    issue_address,
    issue_invoice,
    post,
)
from sqlalchemy import event
from sqlalchemy.orm import Session

from checkout import pagekinds
from checkout.models import Merchant, Page


@dataclass
class Work:
    builds: list[str] = field(default_factory=list)  # page ids whose model was built
    commits: int = 0


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Iterator[Work]:
    counted = Work()
    real = pagekinds.page_model

    def build(session: Session, page: Page, *args: Any, **kwargs: Any) -> dict[str, Any]:
        counted.builds.append(page.id)
        return real(session, page, *args, **kwargs)

    def committed(_session: Session) -> None:
        counted.commits += 1

    monkeypatch.setattr(pagekinds, "page_model", build)
    event.listen(Session, "after_commit", committed)
    try:
        yield counted
    finally:
        event.remove(Session, "after_commit", committed)


def apply(client: FlaskClient, work: Work, body: bytes) -> Work:
    """Post one signed callback; the work it alone caused."""
    work.builds.clear()
    work.commits = 0
    assert post(client, body).status_code == 200
    return Work(list(work.builds), work.commits)


def test_a_deposit_callback_builds_its_page_once_and_a_replay_builds_nothing(
        app: Flask, client: FlaskClient, merchant: Merchant, work: Work) -> None:
    _, page_id = issue_address(app)
    body = deposit_body(7101, "confirmed")

    first = apply(client, work, body)
    assert callbacks_of(app)[-1].outcome == "applied"
    assert (first.builds, first.commits) == ([page_id], 1)

    replay = apply(client, work, body)
    assert callbacks_of(app)[-1].outcome == "duplicate"
    assert (replay.builds, replay.commits) == ([], 1)  # the replay is kept, nothing shown moves


def test_an_invoice_callback_builds_its_page_once_and_a_replay_builds_nothing(
        app: Flask, client: FlaskClient, merchant: Merchant, work: Work) -> None:
    page_id = issue_invoice(app, 8101, "quote-8101")
    body = invoice_body(8101, "confirmed", "quote-8101")

    first = apply(client, work, body)
    assert callbacks_of(app)[-1].outcome == "applied"
    assert (first.builds, first.commits) == ([page_id], 1)

    replay = apply(client, work, body)
    assert callbacks_of(app)[-1].outcome == "duplicate"
    assert (replay.builds, replay.commits) == ([], 1)


def test_older_news_about_a_deposit_builds_nothing(
        app: Flask, client: FlaskClient, merchant: Merchant, work: Work) -> None:
    issue_address(app)
    apply(client, work, deposit_body(7102, "confirmed"))

    older = apply(client, work, deposit_body(7102, "not_confirmed"))
    assert callbacks_of(app)[-1].outcome == "stale"
    assert (older.builds, older.commits) == ([], 1)
