"""Pages' renderings, kept per process (pagecache.py) and stored for all (pagestore.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, template_rendered
from sqlalchemy import delete

from checkout import db
from checkout.models import PageRendering
from checkout.web import pagecache


def forget(app: Flask) -> None:
    """This process forgets every rendering it keeps, as a process that never served the
    page: its next view is its first here."""
    cache: pagecache.PageCache = app.extensions[pagecache.EXTENSION]
    cache.entries.clear()
    cache.digests.clear()


def unstore(app: Flask) -> None:
    """No rendering is stored for all processes."""
    with app.app_context(), db.transaction() as session:
        session.execute(delete(PageRendering))


def unrendered(app: Flask) -> None:
    """Nothing kept here, nothing stored (a link's first click or a currency pick renders
    its page ahead): the next view of any page renders it."""
    forget(app)
    unstore(app)


@pytest.fixture
def renders(app: Flask) -> Iterator[list[str]]:
    """The templates the app renders from now on."""
    seen: list[str] = []

    def record(_sender: Flask, template: Any, **_extra: Any) -> None:
        seen.append(str(template.name))

    template_rendered.connect(record, app)
    yield seen
    template_rendered.disconnect(record, app)
