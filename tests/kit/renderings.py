"""Pages' renderings, kept per process (pagecache.py) and stored for all (pagestore.py)."""

from __future__ import annotations

from flask import Flask
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
