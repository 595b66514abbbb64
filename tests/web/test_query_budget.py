"""What the hot routes do, not only what they answer: the SQL statements each sends and the
calls it makes to the processor. The status poll is one SELECT by primary key and never
reaches the processor; a page view reads a few rows and never reaches it either. The poll,
a page viewed again and the QR image are answered in front of Flask: one statement each,
nothing committed, signed or asked of the processor, and Flask never entered."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from kit import budgets, kept_rows
from kit.links import page_of
from kit.site import MERCHANT_SECRET, flask_requests, sql_statements
from werkzeug.serving import make_server

from checkout import clock, db, merchants
from checkout.models import DepositAddress, RateQuote

BTC_ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "user-7", "amount": "0.00123",
        "convert_to": "EUR"}


class Processor:
    """A real HTTP server standing where the processor is: it counts what reaches it."""

    def __init__(self) -> None:
        self.hits: list[str] = []

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            self.hits.append(environ["PATH_INFO"])
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [b'{"errors":{"error":"down"}}']

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/v2"
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()


@pytest.fixture
def processor() -> Iterator[Processor]:
    counting = Processor()
    yield counting
    counting.server.shutdown()
    counting.server.server_close()


@pytest.fixture
def site(make_app: Any, processor: Processor) -> Flask:
    app = make_app(PROCESSOR_URL=processor.url, PROCESSOR_TIMEOUT=0.5, SANDBOX=False)
    with app.app_context():
        merchants.add(merchants.NewMerchant(11, "Shop", "k-11", MERCHANT_SECRET, ()))
        with db.transaction() as s:
            s.add(DepositAddress(merchant_id=11, foreign_id="user-7", currency="BTC",
                                 convert_to="EUR", address=BTC_ADDRESS))
            s.add(RateQuote(currency_from="BTC", currency_to="EUR", rate="48715.62",
                            fetched_at=clock.now()))
    return app


def statements_of(app: Flask, path: str) -> tuple[int, list[str]]:
    client = app.test_client()
    status: int
    status, sent = sql_statements(app, lambda: client.get(path).status_code)
    return status, sent


def open_page(app: Flask) -> str:
    return page_of(app.test_client(), LINK)


def test_the_status_poll_is_one_select_and_never_reaches_the_processor(
        site: Flask, processor: Processor) -> None:
    page = open_page(site)
    processor.hits.clear()
    status, sent = statements_of(site, page + "/status")
    assert status == 200
    assert sent == ["SELECT"], sent
    assert processor.hits == []


def test_a_page_view_reads_a_few_rows_and_never_reaches_the_processor(
        site: Flask, processor: Processor) -> None:
    page = open_page(site)
    processor.hits.clear()
    status, sent = statements_of(site, page)
    assert status == 200
    assert set(sent) == {"SELECT"} and len(sent) <= 12, sent
    assert processor.hits == []


def test_the_qr_image_never_reaches_the_processor(site: Flask, processor: Processor) -> None:
    page = open_page(site)
    processor.hits.clear()
    status, sent = statements_of(site, page + "/qr.svg")
    assert status == 200 and sent == ["SELECT"], sent
    assert processor.hits == []


@pytest.mark.parametrize("route", ["{page}/status", "{page}", "{page}/qr.svg", "{page}/qr.png"])
def test_the_routes_in_front_of_flask_spend_one_statement_and_never_enter_it(
        site: Flask, processor: Processor, route: str) -> None:
    """One SELECT each; on PostgreSQL none once the process keeps the page's row (the
    poll's, read by the QR too) or its state (a page view's, kept by the first view)."""
    client = site.test_client()
    keeps = kept_rows.listening(site) is not None
    path = route.format(page=open_page(site))
    assert client.get(path).status_code == 200  # a page's first view is Flask's, then kept
    processor.hits.clear()
    handled = flask_requests(site)
    for _ in range(2):
        with budgets.spent(site) as spent:
            assert client.get(path).status_code == 200
        if keeps:
            assert spent.queries == [], spent
        else:
            assert len(spent.queries) == 1 and spent.queries[0].lstrip().upper().startswith(
                "SELECT"), spent
        assert spent.commits == 0 and spent.hmacs == 0 and spent.processor_calls == [], spent
    assert handled == []
    assert processor.hits == []
