"""What a link's first click and `invoices/create` spend: commits, statements, HMACs and
processor calls, counted in the request's own thread (kit.budgets).

A first click on a new link commits three times: the address's claim before the processor is
asked (many first clicks on one new link ask it once), then the address, the claim's end and
the page with its model, then the page's rendering for the view the 303 leads to (stored for
every process, so that view is one SELECT: web/pagestore.py). Minimum deposits and the
link's rate come from this process's copy while fresh. An invoice is one commit; a type 3
invoice two: the invoice with its quote's foreign_id before the processor is asked, then the
answer with the page's model.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from kit import budgets
from kit.invoices import ORDER, TYPE_3, shop_signature
from kit.site import MERCHANT_KEY, MERCHANT_SECRET
from sqlalchemy import select

from checkout import clock, db, money, terminal
from checkout.models import CurrencyLimit, Merchant, Page
from checkout.pagekinds import page_model, snapshot

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "budget-1", "amount": "0.00123",
        "convert_to": "EUR"}


def click(client: FlaskClient, **changes: Any) -> str:
    response = client.get("/terminal", query_string=terminal.encode_link(
        {**LINK, **changes}, MERCHANT_SECRET))
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return str(response.headers["Location"])


def touching(spent: budgets.Spent, table: str) -> list[str]:
    return [s for s in spent.queries if f" {table}" in s]


def page_writes(spent: budgets.Spent) -> tuple[int, int]:
    """INSERTs of a page row, and UPDATEs of one (the model's write, or a rewrite)."""
    return (sum(s.startswith("INSERT INTO pages") for s in spent.queries),
            sum(s.startswith("UPDATE pages") for s in spent.queries))


def rendering_stored(spent: budgets.Spent) -> bool:
    return any(s.startswith("INSERT INTO page_renderings") for s in spent.queries)


def warm(client: FlaskClient) -> None:
    """A first click on another link: the minimum deposits and the link's rate are fetched
    and this process holds them."""
    click(client, foreign_id="someone-else")


def test_a_first_click_with_warm_limits_commits_twice_and_asks_the_processor_once(
        app: Flask, merchant: Merchant) -> None:
    client = app.test_client()
    warm(client)
    with budgets.spent(app) as spent:
        click(client)
    assert spent.commits == 3, spent  # the claim; address + claim's end + page; rendering
    assert spent.processor_calls == ["addresses/take"], spent
    assert spent.hmacs == 2, spent  # the link verified once, the processor call signed once
    assert touching(spent, "currency_limits") == [], spent  # this process's copy
    assert len(touching(spent, "rate_quotes")) <= 1, spent  # the page model's, not the link's
    assert page_writes(spent) == (1, 1), spent  # inserted, its model written once
    assert len(touching(spent, "address_claims")) == 2, spent  # claimed, let go: no release
    assert rendering_stored(spent), spent
    assert len(spent.queries) <= 17, spent


def test_a_first_click_on_a_known_address_is_one_commit_and_no_processor_call(
        app: Flask, merchant: Merchant) -> None:
    client = app.test_client()
    warm(client)
    click(client, amount="0.002")  # takes the address of budget-1
    with budgets.spent(app) as spent:
        click(client)  # another amount: another link, the same customer's address
    assert spent.commits == 2, spent  # the page with its model; its rendering
    assert spent.processor_calls == [], spent
    assert spent.hmacs == 1, spent
    assert touching(spent, "currency_limits") == [] and touching(spent, "address_claims") == []
    assert page_writes(spent) == (1, 1), spent
    assert rendering_stored(spent), spent
    assert len(spent.queries) <= 12, spent


def test_a_stale_copy_of_the_minimums_is_read_again(app: Flask, merchant: Merchant) -> None:
    client = app.test_client()
    warm(client)
    # The worker (another process) raises the minimum once this process's copy is stale.
    moment = clock.now() + timedelta(seconds=int(app.config["LIMITS_MAX_AGE"]) + 1)
    app.config["CLOCK"] = lambda: moment
    with app.app_context(), db.transaction() as session:
        row = session.scalars(select(CurrencyLimit).where(CurrencyLimit.currency == "BTC")).one()
        row.minimum_amount, row.fetched_at = "1", moment
    response = client.get("/terminal", query_string=terminal.encode_link(LINK, MERCHANT_SECRET))
    assert response.status_code == 422  # below the minimum the table says now


def post_invoice(client: FlaskClient, order: dict[str, Any]) -> None:
    body = json.dumps(order, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "X-Processing-Key": MERCHANT_KEY,
               "X-Processing-Signature": shop_signature(body)}
    response = client.post("/api/v2/invoices/create", data=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)


def create_invoice(app: Flask, order: dict[str, Any]) -> budgets.Spent:
    """What one invoice costs once this process keeps the merchant (an earlier invoice)."""
    client = app.test_client()
    post_invoice(client, {**order, "foreign_id": "earlier-order"})
    with budgets.spent(app) as spent:
        post_invoice(client, order)
    return spent


def test_an_invoice_whose_currency_is_chosen_later_is_one_commit(
        app: Flask, merchant: Merchant) -> None:
    spent = create_invoice(app, ORDER)
    assert spent.commits == 1, spent
    assert spent.processor_calls == [], spent
    assert spent.hmacs == 1, spent
    assert page_writes(spent) == (1, 1), spent  # born in step with its invoice, model once
    # The model is built in the invoice's own transaction: of it, and of its quotes (none
    # yet), nothing is read back.
    assert touching(spent, "invoice_quotes") == [], spent
    assert [q for q in spent.queries if q.startswith("SELECT invoices")] == [], spent
    assert len(spent.queries) <= 6, spent


def test_an_invoice_in_a_fixed_currency_commits_before_and_after_its_quote(
        app: Flask, merchant: Merchant) -> None:
    spent = create_invoice(app, TYPE_3)
    assert spent.commits == 2, spent  # invoice + quote's foreign_id; the answer + model
    assert spent.processor_calls == ["invoices/create"], spent
    assert spent.hmacs == 2, spent  # the shop's request verified, the quote's call signed
    inserted, updated = page_writes(spent)
    assert inserted == 1 and updated <= 2, spent  # the quote's columns, then the model
    assert len(spent.queries) <= 17, spent


def test_a_new_invoices_model_is_the_one_its_tables_give_when_read_back(
        app: Flask, merchant: Merchant) -> None:
    """Built in the invoice's own transaction from what the session made, the stored model
    is the model a later build reads from the tables, for each type of invoice."""
    moment = clock.now()
    app.config["CLOCK"] = lambda: moment
    client = app.test_client()
    for order in (ORDER, {**ORDER, "foreign_id": "order-timed", "timer": True},
                  {**TYPE_3, "foreign_id": "order-fixed"}):
        post_invoice(client, order)
    with app.app_context():
        session = db.session()
        pages = session.scalars(select(Page).where(Page.kind == "invoice")).all()
        assert len(pages) == 3
        for page in pages:
            stored = json.loads(page.model_json)
            del stored[snapshot.DEADLINE], stored[snapshot.FIAT_AT]
            assert stored == json.loads(money.dumps(page_model(session, page, moment))), page.id
