"""Applying callbacks: once per (id, status), forward only, the same end state in any order."""

from __future__ import annotations

import itertools
import threading
from urllib.parse import urlencode, urljoin

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit.callbacks import (
    callbacks_of,
    count,
    deposit_body,
    deposits_of,
    invoice_body,
    issue_address,
    issue_invoice,
    page_state,
    post,
    post_live,
)
from kit.live import LiveServer

from checkout import terminal, worker
from checkout.models import AppliedCallback, Delivery, Merchant

FRESH_IDS = itertools.count(10_000)

# (statuses the processor may send for one transaction, in any order) -> deposit end state
DEPOSIT_FLOWS = [
    (("not_confirmed", "confirmed"), "confirmed"),
    (("not_confirmed", "cancelled"), "cancelled"),
    (("confirmed",), "confirmed"),
    (("not_confirmed",), "not_confirmed"),
    (("not_confirmed", "confirmed", "not_confirmed", "confirmed"), "confirmed"),
    (("cancelled", "not_confirmed", "cancelled"), "cancelled"),
]

INVOICE_FLOWS = [
    (("pending", "processing", "confirmed"), "confirmed"),
    (("created", "pending", "processing", "failed"), "failed"),
    (("pending", "failed"), "failed"),
    (("pending", "processing"), "processing"),
    (("pending", "pending", "processing", "confirmed"), "confirmed"),
]


@pytest.mark.parametrize(("statuses", "end"), DEPOSIT_FLOWS,
                         ids=["-".join(f[0]) for f in DEPOSIT_FLOWS])
def test_every_order_of_a_deposits_callbacks_ends_in_the_same_state(
        app: Flask, client: FlaskClient, merchant: Merchant, statuses: tuple[str, ...],
        end: str) -> None:
    orders = sorted(set(itertools.permutations(statuses)))
    for n, order in enumerate(orders):
        address = f"addr-{n}"
        _, page = issue_address(app, address=address, foreign_id=address, amount="0.01")
        for status in order:
            assert post(client, deposit_body(1000 + n, status, address=address,
                                     foreign_id=address)).status_code \
                == 200
        [deposit] = [d for d in deposits_of(app) if d.processor_id == 1000 + n]
        assert deposit.status == end, order
        assert page_state(app, page)[0] == end, order


@pytest.mark.parametrize(("statuses", "end"), INVOICE_FLOWS,
                         ids=["-".join(f[0]) for f in INVOICE_FLOWS])
def test_every_order_of_an_invoices_callbacks_ends_in_the_same_state(
        app: Flask, client: FlaskClient, merchant: Merchant, statuses: tuple[str, ...],
        end: str) -> None:
    for n, order in enumerate(sorted(set(itertools.permutations(statuses)))):
        page = issue_invoice(app, 500 + n, f"inv-{n}", status="created")
        for status in order:
            assert post(client, invoice_body(500 + n, status, f"inv-{n}")).status_code == 200
        assert page_state(app, page)[0] == end, order


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_a_final_state_is_never_left_whatever_arrives_after_it(
        app: Flask, client: FlaskClient, merchant: Merchant, data: st.DataObject) -> None:
    final = data.draw(st.sampled_from(["confirmed", "cancelled"]))
    later = data.draw(st.lists(st.sampled_from(["not_confirmed", final]), max_size=4))
    ident = next(FRESH_IDS)
    address = f"addr-{ident}"
    issue_address(app, address=address, foreign_id=address)
    for status in ["not_confirmed", final, *later]:
        post(client, deposit_body(ident, status, address=address, foreign_id=address))
    [deposit] = [d for d in deposits_of(app) if d.processor_id == ident]
    assert deposit.status == final


def test_a_second_final_state_is_flagged_and_the_first_one_stays(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    _, page = issue_address(app)
    post(client, deposit_body(41, "confirmed"))
    post(client, deposit_body(41, "cancelled"))
    first, second = callbacks_of(app)
    assert first.outcome == "applied"
    assert second.outcome == "flagged" and "after final confirmed" in (second.flag or "")
    assert [d.status for d in deposits_of(app)] == ["confirmed"]
    assert page_state(app, page) == ("confirmed", None)


@pytest.mark.parametrize(("error", "reason"), [
    ("Timer expired. User not paid.", "expired"),
    ("Timer expired. Transactions were in status processing too long.", "timeout"),
    ("Timer expired. User paid less than requested.", "underpaid"),
    ("", None),
])
def test_a_failed_invoice_says_why(app: Flask, client: FlaskClient, merchant: Merchant,
                                   error: str, reason: str | None) -> None:
    page = issue_invoice(app, 77, "inv")
    post(client, invoice_body(77, "failed", "inv", error=error))
    assert page_state(app, page) == ("failed", reason)


def test_a_replayed_callback_is_kept_but_applied_and_forwarded_once(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    _, page = issue_address(app)
    body = deposit_body(42, "confirmed")
    for _ in range(3):
        assert post(client, body).status_code == 200
    [deposit] = deposits_of(app)
    changed_at = deposit.updated_at
    assert post(client, body).status_code == 200
    assert [c.outcome for c in callbacks_of(app)] == ["applied"] + ["duplicate"] * 3
    assert count(app, AppliedCallback) == 1
    assert count(app, Delivery) == 1  # a replay is no news to the shop either
    assert deposits_of(app)[0].updated_at == changed_at
    assert page_state(app, page) == ("confirmed", None)


def _at_once(bodies: list[bytes], live: LiveServer) -> list[int]:
    """POST every body over real HTTP, all released at the same moment."""
    start = threading.Barrier(len(bodies))
    statuses: list[int] = []
    lock = threading.Lock()

    def send(body: bytes) -> None:
        start.wait()
        response = post_live(live.url, body)
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses


def test_concurrent_copies_of_a_callback_change_state_once(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    _, page = issue_address(app)
    body = deposit_body(43, "confirmed")
    assert _at_once([body] * 8, live_server) == [200] * 8
    outcomes = sorted(c.outcome for c in callbacks_of(app))
    assert outcomes == ["applied"] + ["duplicate"] * 7
    assert count(app, AppliedCallback) == 1 and len(deposits_of(app)) == 1
    assert page_state(app, page) == ("confirmed", None)


def test_concurrent_statuses_of_one_transaction_end_final(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    _, page = issue_address(app)
    bodies = [deposit_body(44, "not_confirmed"), deposit_body(44, "confirmed")] * 3
    assert _at_once(bodies, live_server) == [200] * 6
    [deposit] = deposits_of(app)
    assert deposit.status == "confirmed"
    assert count(app, AppliedCallback) == 2
    assert page_state(app, page) == ("confirmed", None)


def test_the_endpoint_answers_over_real_http(live_server: LiveServer,
                                             merchant: Merchant) -> None:
    response = requests.post(f"{live_server.url}/callbacks/coinspaid", data=b"{}", timeout=30)
    assert response.status_code == 403
    assert response.json() == {"error": "No key header", "code": "required_header_key"}


def invoice_model(statuses: list[str]) -> str:
    """The specification, step by step: forward only, and a final state is kept."""
    rank = {"created": 0, "pending": 1, "processing": 2, "confirmed": 3, "failed": 3}
    state = "created"
    for status in statuses:
        if state not in ("confirmed", "failed") and rank[status] > rank[state]:
            state = status
    return state


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(statuses=st.lists(st.sampled_from(
    ["created", "pending", "processing", "confirmed", "failed"]), min_size=1, max_size=6))
def test_any_sequence_of_invoice_callbacks_follows_the_model(
        app: Flask, client: FlaskClient, merchant: Merchant, statuses: list[str]) -> None:
    ident = next(FRESH_IDS)
    page = issue_invoice(app, ident, f"inv-{ident}", status="created")
    for status in statuses:
        assert post(client, invoice_body(ident, status, f"inv-{ident}")).status_code == 200
    assert page_state(app, page)[0] == invoice_model(statuses)


def test_a_customer_page_follows_the_processors_callbacks_end_to_end(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    """Terminal link -> our page -> a payer pays at the sandbox -> its signed callbacks reach
    us over HTTP (sent by the worker) -> the page's status says so."""
    query = terminal.encode_link({"client_id": 11, "currency": "BTC", "foreign_id": "order-7",
                                  "amount": "0.01"}, "test-secret-11")
    opened = requests.get(f"{live_server.url}/?{urlencode(query)}", timeout=30,
                          allow_redirects=False)
    assert opened.status_code == 303, opened.text
    page_url = urljoin(live_server.url, opened.headers["Location"])

    def status() -> dict[str, object]:
        answer = requests.get(f"{page_url}/status", timeout=30)
        assert answer.status_code == 200
        result: dict[str, object] = answer.json()
        return result

    model = status()
    assert model["status"] == "waiting"
    pay = requests.post(f"{live_server.url}/sandbox/simulate/payment", timeout=30,
                        json={"address": model["address"], "amount": "0.01",
                              "status": "not_confirmed"})
    assert pay.status_code == 201, pay.text
    worker.run_once(app)
    assert (status()["status"], status()["amount_paid"]) == ("not_confirmed", "0.01")
    requests.post(f"{live_server.url}/sandbox/clock", json={"advance_seconds": 7200},
                  timeout=30).raise_for_status()
    for _ in range(3):
        worker.run_once(app)
    final = status()
    assert (final["status"], final["final"]) == ("confirmed", True)
    assert [c.outcome for c in callbacks_of(app)] == ["applied", "applied"]
