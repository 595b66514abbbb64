"""Every change to a page or a merchant is announced on PostgreSQL once it commits
(checkout/page_notices.py), whichever way it is written: the ORM's flush, an UPDATE of the
pages, raw SQL; a rollback announces nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import insert, make_url, text, update

from checkout import db, page_notices
from checkout.models import Merchant, MerchantLogo, Page

DATABASE_URL = os.environ.get("CHECKOUT_DATABASE_URL", "")
pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(not DATABASE_URL.startswith("postgresql"),
                       reason="notices are PostgreSQL's (CHECKOUT_DATABASE_URL)"),
]


class Ear:
    """A listener of our own, as another process's would be."""

    def __init__(self, url: str) -> None:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.connection = psycopg.connect(dsn, autocommit=True)
        engine = db.make_engine(url)
        self.connection.execute(f"LISTEN {page_notices.channel(engine)}")
        engine.dispose()

    def next(self) -> str:
        for notice in self.connection.notifies(timeout=30, stop_after=1):
            return notice.payload
        raise AssertionError("no notice within 30 s")



def announce(app: Flask, page_id: str) -> None:
    """A change that is announced: whatever was announced before it is heard first."""
    with app.app_context(), db.transaction() as s:
        s.execute(update(Page).where(Page.id == page_id).values(amount="9"))


@pytest.fixture
def ear(database_url: str) -> Iterator[Ear]:
    found = Ear(database_url)
    yield found
    found.connection.close()


def new_page(app: Flask, page_id: str) -> str:
    with app.app_context(), db.transaction() as s:
        s.add(Page(id=page_id, kind="deposit", merchant_id=11, foreign_id="f",
                   currency="BTC", status="waiting"))
    return page_id


@pytest.fixture
def pages(app: Flask, merchant: Merchant) -> tuple[str, str]:
    return new_page(app, "A" * 32), new_page(app, "B" * 32)


def test_a_page_changed_by_the_orm_is_announced_by_its_id(
        app: Flask, pages: tuple[str, str], ear: Ear) -> None:
    with app.app_context(), db.transaction() as s:
        found = s.get(Page, pages[0])
        assert found is not None
        found.foreign_id = "changed"
    assert ear.next() == pages[0]


def test_pages_updated_by_id_are_named_in_one_notice(
        app: Flask, pages: tuple[str, str], ear: Ear) -> None:
    with app.app_context(), db.transaction() as s:
        for page_id in pages:
            s.execute(update(Page).where(Page.id == page_id, Page.kind == "deposit")
                      .values(foreign_id="changed"))
    assert sorted(ear.next().split()) == sorted(pages)
    announce(app, pages[0])
    assert ear.next() == pages[0]  # one notice for the transaction, not one per statement


@pytest.mark.parametrize("change", [
    lambda s, ids: s.execute(update(Page).where(Page.kind == "deposit").values(amount="1")),
    lambda s, ids: s.execute(update(Page).where((Page.id == ids[0]) | (Page.id == ids[1]))
                             .values(amount="1")),
    lambda s, ids: s.execute(text("UPDATE pages SET amount = '2' WHERE id = :i"), {"i": ids[0]}),
    lambda s, ids: s.connection().exec_driver_sql("delete from PAGES"),
    lambda s, ids: s.execute(update(Merchant).values(display_name="Another")),
    # A first logo changes no merchant row: the logo's own INSERT is announced.
    lambda s, ids: s.execute(insert(MerchantLogo).values(
        merchant_id=11, digest="d" * 64, png=b"png", width=1, height=1)),
    lambda s, ids: s.execute(text("UPDATE merchants_version SET version = version + 1")),
    lambda s, ids: s.execute(text(
        "INSERT INTO pages SELECT * FROM pages WHERE id = :i "
        "ON CONFLICT (id) DO UPDATE SET amount = '3'"), {"i": ids[0]}),
    lambda s, ids: s.connection().exec_driver_sql("TRUNCATE page_renderings, pages CASCADE"),
])
def test_a_change_not_named_page_by_page_is_announced_for_every_page(
        app: Flask, pages: tuple[str, str], ear: Ear, change: Any) -> None:
    with app.app_context(), db.transaction() as s:
        change(s, pages)
    assert ear.next() == page_notices.EVERY


def test_a_rolled_back_change_is_not_announced(
        app: Flask, pages: tuple[str, str], ear: Ear) -> None:
    with app.app_context():
        s = db.session()
        s.execute(update(Page).where(Page.id == pages[0]).values(amount="1"))
        s.rollback()
        with db.transaction() as s:
            s.execute(update(Page).where(Page.id == pages[1]).values(amount="1"))
    assert ear.next() == pages[1]  # the first notice heard is the committed change's


def test_other_tables_are_not_announced(app: Flask, pages: tuple[str, str], ear: Ear) -> None:
    with app.app_context(), db.transaction() as s:
        s.execute(text("UPDATE page_renderings SET html = html WHERE page_id = 'x'"))
        s.execute(text("UPDATE rate_quotes SET rate = rate WHERE id = 0"))
    announce(app, pages[1])
    assert ear.next() == pages[1]


def test_ids_that_would_need_several_notices_are_announced_as_every_page() -> None:
    ids = [f"{n:032d}" for n in range(400)]
    assert page_notices.payloads(ids[:3]) == [" ".join(ids[:3])]
    assert page_notices.payloads(ids) == [page_notices.EVERY]
    assert page_notices.payloads([ids[0], page_notices.EVERY]) == [page_notices.EVERY]
    assert page_notices.payloads([]) == []


def test_a_page_made_and_changed_in_one_transaction_is_not_announced(
        app: Flask, pages: tuple[str, str], ear: Ear) -> None:
    """No process can keep a page before the transaction that makes it commits: a first
    click or a new invoice inserts its page and writes its model, with no notice. A page
    that existed before, changed in the same transaction, is still announced."""
    with app.app_context(), db.transaction() as s:
        s.add(Page(id="C" * 32, kind="deposit", merchant_id=11, foreign_id="f",
                   currency="BTC", status="waiting"))
        s.flush()
        s.execute(update(Page).where(Page.id == "C" * 32).values(amount="1"))
    with app.app_context(), db.transaction() as s:
        s.add(Page(id="D" * 32, kind="deposit", merchant_id=11, foreign_id="f",
                   currency="BTC", status="waiting"))
        s.flush()
        s.execute(update(Page).where(Page.id.in_(["D" * 32, pages[0]])).values(amount="1"))
    assert ear.next() == page_notices.EVERY  # an IN list is not read id by id
    with app.app_context(), db.transaction() as s:
        s.add(Page(id="E" * 32, kind="deposit", merchant_id=11, foreign_id="f",
                   currency="BTC", status="waiting"))
        s.flush()
        s.execute(update(Page).where(Page.id == "E" * 32).values(amount="2"))
        s.execute(update(Page).where(Page.id == pages[0]).values(amount="2"))
    assert ear.next() == pages[0]  # the page made in it is not named beside it
