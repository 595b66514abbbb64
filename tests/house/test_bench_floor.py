"""The bench's floor for a first click and `invoices/create` asks the embedded processor the
call the route stands for, as the issue defines that floor: the site's own sandbox, on the
site's database, answers it (not a stand-in's `ping`)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from flask import Flask
from kit.site import MERCHANT_KEY, MERCHANT_SECRET
from sqlalchemy import select

from checkout import db
from checkout.models import Merchant
from checkout.sandbox import loopback
from checkout.sandbox import store as sandbox_store

BARE = Path(__file__).resolve().parents[2] / "bench" / "bare.py"
ORDER = {"timer": True, "title": "Order", "currency": "EUR", "amount": "35",
         "url_success": "https://shop.example/paid", "url_failed": "https://shop.example/failed",
         "email_user": "buyer@example.com", "foreign_id": "shop-1", "sender_currency": "BTC"}


@pytest.fixture
def floor(app: Flask, merchant: Merchant, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """bench/bare.py loaded as gunicorn loads it, its processor the test app's database."""
    spec_file = tmp_path / "answers.json"
    spec_file.write_text(json.dumps({"answers": {}}))
    for name, value in {
            "BENCH_BARE_SPEC": str(spec_file),
            "BENCH_BARE_DATABASE_URL": f"sqlite:///{tmp_path / 'floor.db'}",
            "BENCH_BARE_PROCESSOR_DATABASE_URL": app.config["DATABASE_URL"],
            "BENCH_BARE_PROCESSOR_INSTANCE": str(tmp_path / "floor-instance"),
            "BENCH_BARE_PROCESSOR_KEY": MERCHANT_KEY,
            "BENCH_BARE_PROCESSOR_SECRET": MERCHANT_SECRET,
            "BENCH_BARE_ORIGIN": "http://127.0.0.1"}.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("bench_floor_app", BARE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
        stand_in = getattr(module, "_door", None)
        if stand_in is not None:
            stand_in.shutdown()
            stand_in.server_close()
        site = getattr(module, "_processor_site", None)
        if site is not None:
            loopback.stop(site)
            site.extensions[db.EXTENSION].remove()
            site.extensions[db.EXTENSION + ".engine"].dispose()


def test_a_first_clicks_floor_takes_an_address_from_the_embedded_processor(
        app: Flask, floor: ModuleType) -> None:
    floor.call_processor(b"")
    floor.call_processor(b"")
    with app.app_context():
        taken = db.session().scalars(select(sandbox_store.Address)).all()
    # Each call a new foreign_id, each a new address, for the merchant's account.
    assert len({address.foreign_id for address in taken}) == 2
    assert all(address.foreign_id.startswith("floor-") and address.currency == "BTC"
               and address.client_id == 11 for address in taken)


def test_an_invoices_floor_creates_the_shops_invoice_at_the_embedded_processor(
        app: Flask, floor: ModuleType) -> None:
    floor.call_processor(json.dumps(ORDER).encode())
    with app.app_context():
        invoice = db.session().scalars(select(sandbox_store.Invoice)).one()
    assert (invoice.title, invoice.currency, invoice.amount, invoice.sender_currency) == (
        "Order", "EUR", "35", "BTC")


def test_the_pinging_floor_asks_no_one_but_its_stand_in(
        app: Flask, floor: ModuleType) -> None:
    floor.ping_processor()
    assert floor._processor_site is None  # the embedded processor was never started
    with app.app_context():
        assert db.session().scalars(select(sandbox_store.Address)).all() == []
