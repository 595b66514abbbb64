"""The bench's floors for a first click and `invoices/create`: the one the goals are judged
against pings a stand-in processor of its own and inserts; its twin, for the record, asks
the embedded processor (the site's own sandbox, on the site's database) the call the route
stands for, under a new foreign_id each time, and inserts."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from flask import Flask
from kit.site import BENCH, MERCHANT_KEY, MERCHANT_SECRET, script_module
from sqlalchemy import create_engine, select, text

from checkout import db
from checkout.models import Merchant
from checkout.sandbox import loopback
from checkout.sandbox import store as sandbox_store

ORDER = {"timer": True, "title": "Order", "currency": "EUR", "amount": "35",
         "url_success": "https://shop.example/paid", "url_failed": "https://shop.example/failed",
         "email_user": "buyer@example.com", "foreign_id": "shop-1", "sender_currency": "BTC"}
CLICK, CREATE = "GET /terminal", "POST /api/v2/invoices/create fixed"

Floors = Callable[[str, str], ModuleType]


def recorded(work: str) -> dict[str, object]:
    return {"status": 200, "headers": [["Content-Type", "text/plain"]], "work": work,
            "body": base64.b64encode(b"answered").decode()}


@pytest.fixture
def floor(app: Flask, merchant: Merchant, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Floors]:
    """bench/bare.py loaded as gunicorn loads it, with the given work for a first click and
    for a fixed-currency `invoices/create`; its processor on the test app's database."""
    loaded: list[str] = []
    inserts = f"sqlite:///{tmp_path / 'floor.db'}"
    engine = create_engine(inserts)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_floor (id INTEGER PRIMARY KEY, note TEXT)"))
    engine.dispose()

    def load(click: str, create: str) -> ModuleType:
        spec_file = tmp_path / f"answers-{len(loaded)}.json"
        spec_file.write_text(json.dumps({"answers": {
            CLICK: recorded(click), CREATE: recorded(create)}}))
        for name, value in {
                "BENCH_BARE_SPEC": str(spec_file), "BENCH_BARE_DATABASE_URL": inserts,
                "BENCH_BARE_PROCESSOR_DATABASE_URL": app.config["DATABASE_URL"],
                "BENCH_BARE_PROCESSOR_INSTANCE": str(tmp_path / "floor-instance"),
                "BENCH_BARE_PROCESSOR_KEY": MERCHANT_KEY,
                "BENCH_BARE_PROCESSOR_SECRET": MERCHANT_SECRET,
                "BENCH_BARE_ORIGIN": "http://127.0.0.1:8000"}.items():
            monkeypatch.setenv(name, value)
        name = f"bench_floor_{len(loaded)}"
        loaded.append(name)
        return script_module(BENCH / "bare.py", name)

    try:
        yield load
    finally:
        for name in loaded:
            module = sys.modules.pop(name)  # registered before its script ran, even if it failed
            stand_in = getattr(module, "_door", None)
            if stand_in is not None:
                stand_in.shutdown()
                stand_in.server_close()
            site = getattr(module, "_processor_site", None)
            if site is not None:
                loopback.stop(site)
                site.extensions[db.EXTENSION].remove()
                site.extensions[db.EXTENSION + ".engine"].dispose()
            if getattr(module, "_engine", None) is not None:
                module._engine.dispose()


def sandbox_rows(app: Flask) -> tuple[list[sandbox_store.Address], list[sandbox_store.Invoice]]:
    with app.app_context():
        session = db.session()
        return (list(session.scalars(select(sandbox_store.Address))),
                list(session.scalars(select(sandbox_store.Invoice))))


def floor_rows(floor: ModuleType) -> int:
    with floor.engine().connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM bench_floor")).scalar_one())


def send(floor: ModuleType, key: str) -> None:
    client = floor.app.test_client()
    if key == CLICK:
        answered = client.get("/terminal?signed=1")
    else:
        answered = client.post("/api/v2/invoices/create", data=json.dumps(ORDER))
    assert (answered.status_code, answered.data) == (200, b"answered")


def test_the_judged_floor_pings_its_stand_in_and_asks_the_embedded_processor_nothing(
        app: Flask, floor: Floors) -> None:
    bare = floor("call+insert", "call+insert")
    for key in (CLICK, CLICK, CREATE):
        send(bare, key)
    assert floor_rows(bare) == 3
    assert bare._door is not None  # its stand-in answered the pings
    assert bare._processor_site is None  # never built: nothing asked of the sandbox
    assert sandbox_rows(app) == ([], [])


def test_the_asking_twin_takes_an_address_for_each_first_click(
        app: Flask, floor: Floors) -> None:
    asking = floor("take+insert", "invoice+insert")
    assert asking._processor_site is not None  # built before the first request
    send(asking, CLICK)
    send(asking, CLICK)
    addresses, invoices = sandbox_rows(app)
    # Each click a new foreign_id, each a new address, for the merchant's account.
    assert len({address.foreign_id for address in addresses}) == 2
    assert all(address.foreign_id.startswith("floor-") and address.currency == "BTC"
               and address.client_id == 11 for address in addresses)
    assert invoices == []
    assert floor_rows(asking) == 2


def test_the_asking_twin_creates_the_shops_invoice_for_each_invoices_create(
        app: Flask, floor: Floors) -> None:
    asking = floor("take+insert", "invoice+insert")
    send(asking, CREATE)
    send(asking, CREATE)  # the shop's foreign_id twice: the floor's own are new each time
    addresses, invoices = sandbox_rows(app)
    assert [(i.title, i.currency, i.amount, i.sender_currency) for i in invoices] == [
        ("Order", "EUR", "35", "BTC")] * 2
    assert floor_rows(asking) == 2
