"""The money path, reviewed adversarially: each test pins a defect found and fixed.

Callbacks racing on one address, what counts as a payment of our currency, a shop that
answers slowly on purpose, a webhook URL that changed while callbacks were queued.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import PATIENCE
from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import (
    Clock,
    callbacks_of,
    count,
    deposit_body,
    deposits_of,
    invoice_body,
    issue_address,
    issue_invoice,
    page_state,
    post,
    running_shop,
    use_shop,
)

from checkout import create_app, db, deliveries, money, worker
from checkout.models import Delivery, Merchant, Page
from checkout.services import news

# ---------------------------------------------------------------------------------------------
# Two payments to one address, applied at the same moment


def page_paid(app: Flask, page_id: str) -> tuple[str, str | None, Decimal]:
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None
        return page.status, page.reason, Decimal(page.amount_paid)


def test_two_payments_to_one_address_applied_at_once_both_count(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    """One callback is applied and its transaction still open when the other arrives: the
    page must end with both payments, whatever the database lets the second one read."""
    _, page = issue_address(app, amount="0.01")
    first = deposit_body(501, "confirmed", amount="0.005", txid="01" * 32)
    second = deposit_body(502, "confirmed", amount="0.005", txid="02" * 32)
    applied_first, release_first = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def apply_first_and_hold() -> None:
        try:
            with app.app_context(), db.transaction() as session:
                row = session.get(Merchant, 11)
                assert row is not None
                news.absorb(session, row, first, money.loads(first), source="processor")
                applied_first.set()
                release_first.wait(30)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            applied_first.set()

    def post_second() -> None:
        try:
            assert post(app.test_client(), second).status_code == 200
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    holder = threading.Thread(target=apply_first_and_hold)
    holder.start()
    assert applied_first.wait(PATIENCE)
    poster = threading.Thread(target=post_second)
    poster.start()
    poster.join(1.0)  # the second callback gets as far as the database lets it
    release_first.set()
    holder.join(30)
    poster.join(30)
    assert errors == []
    assert sorted(d.processor_id for d in deposits_of(app)) == [501, 502]
    assert page_paid(app, page) == ("confirmed", None, Decimal("0.01"))


# ---------------------------------------------------------------------------------------------
# A NUL character, which PostgreSQL text cannot hold, never costs us a callback


def _with_nul(where: str) -> bytes:
    payload = json.loads(deposit_body(701, "confirmed"))
    if where == "type":
        payload["type"] = "deposit\x00"
    elif where == "status":
        payload["status"] = "\x00"
    elif where == "address":
        payload["crypto_address"]["address"] += "\x00"
    else:
        payload["transactions"][0]["txid"] = "ab\x00cd"
    return json.dumps(payload, separators=(",", ":")).encode()


@pytest.mark.parametrize(("where", "outcome"), [
    ("type", "flagged"), ("status", "flagged"), ("address", "flagged"), ("txid", "applied"),
])
def test_a_nul_character_anywhere_is_kept_and_answered_200_never_500(
        app: Flask, client: FlaskClient, merchant: Merchant, where: str, outcome: str) -> None:
    _, page = issue_address(app)
    body = _with_nul(where)
    assert post(client, body).status_code == 200
    [stored] = callbacks_of(app)
    assert (stored.body, stored.outcome) == (body, outcome)
    assert count(app, Delivery) == 1
    if outcome == "applied":
        [deposit] = deposits_of(app)
        assert (deposit.status, deposit.txid) == ("confirmed", None)
        assert page_state(app, page) == ("confirmed", None)
    else:
        assert deposits_of(app) == [] and page_state(app, page) == ("waiting", None)


# ---------------------------------------------------------------------------------------------
# Only money in our address's currency counts toward the page


def leg_only_body(processor_id: int, *, address: str, address_currency: str,
                  leg_currency: str, amount: str, **extra: Any) -> bytes:
    """A deposit callback without `currency_sent`: the amount can only come from its leg."""
    crypto_address = {"id": 1, "currency": address_currency, "address": address, "tag": None,
                      "foreign_id": "payer", **extra}
    payload = {
        "id": processor_id, "type": "deposit", "crypto_address": crypto_address,
        "transactions": [{"id": processor_id, "currency": leg_currency,
                          "transaction_type": "blockchain", "type": "deposit",
                          "address": address, "tag": None, "amount": amount,
                          "txid": "cd" * 32, "confirmations": 12}],
        "fees": [], "error": "", "status": "confirmed",
    }
    return json.dumps(payload, separators=(",", ":")).encode()


ETH_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"


@pytest.mark.parametrize(("case", "body", "flag"), [
    ("a token leg on our ether address",
     leg_only_body(601, address=ETH_ADDRESS, address_currency="ETH", leg_currency="USDTE",
                   amount="250"),
     "currency of the transaction differs"),
    ("a cross-currency deposit",
     leg_only_body(602, address=ETH_ADDRESS, address_currency="ETH", leg_currency="ETH",
                   amount="250", cross_currency=True, expected_currency="ETH"),
     "cross-currency"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
def test_money_in_another_currency_never_pays_our_page(
        app: Flask, client: FlaskClient, merchant: Merchant, case: str, body: bytes,
        flag: str) -> None:
    _, page = issue_address(app, address=ETH_ADDRESS, currency="ETH", foreign_id="payer",
                            amount="0.5")
    assert post(client, body).status_code == 200
    [stored] = callbacks_of(app)
    assert stored.outcome == "flagged" and flag in (stored.flag or "")
    assert deposits_of(app) == []
    assert page_paid(app, page) == ("waiting", None, Decimal(0))


def test_a_leg_in_our_currency_still_counts_when_currency_sent_is_absent(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    _, page = issue_address(app, address=ETH_ADDRESS, currency="ETH", foreign_id="payer",
                            amount="0.5")
    body = leg_only_body(603, address=ETH_ADDRESS, address_currency="ETH", leg_currency="ETH",
                         amount="0.5")
    assert post(client, body).status_code == 200
    assert page_paid(app, page) == ("confirmed", None, Decimal("0.5"))


def test_without_currency_sent_every_blockchain_leg_counts_not_just_the_first(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    _, page = issue_address(app, address=ETH_ADDRESS, currency="ETH", foreign_id="payer",
                            amount="0.5")
    payload = json.loads(leg_only_body(606, address=ETH_ADDRESS, address_currency="ETH",
                                       leg_currency="ETH", amount="0.25"))
    payload["transactions"].append({**payload["transactions"][0], "id": 607,
                                    "txid": "ef" * 32})
    payload["transactions"].append({"id": 608, "currency": "ETH", "currency_to": "EUR",
                                    "transaction_type": "exchange", "type": "exchange",
                                    "amount": "0.5", "amount_to": "1500"})
    assert post(client, json.dumps(payload).encode()).status_code == 200
    assert page_paid(app, page) == ("confirmed", None, Decimal("0.5"))
    [deposit] = deposits_of(app)
    assert (deposit.amount, deposit.txid) == ("0.50", "cd" * 32)


@pytest.mark.parametrize("paid", ["ETH", "USDTE"])
def test_one_address_issued_for_two_currencies_pays_the_page_of_the_currency_sent(
        app: Flask, client: FlaskClient, merchant: Merchant, paid: str) -> None:
    """An EVM address may serve ether and its tokens: the callback's currency picks the row."""
    _, eth_page = issue_address(app, address=ETH_ADDRESS, currency="ETH", foreign_id="payer",
                                amount="0.5")
    _, token_page = issue_address(app, address=ETH_ADDRESS, currency="USDTE",
                                  foreign_id="payer", amount="0.5")
    body = deposit_body(604, "confirmed", address=ETH_ADDRESS, currency=paid,
                        foreign_id="payer", amount="0.5")
    assert post(client, body).status_code == 200
    [stored] = callbacks_of(app)
    assert (stored.outcome, stored.flag) == ("applied", None)
    expected = {"ETH": eth_page, "USDTE": token_page}
    for currency, page in expected.items():
        want = ("confirmed", None) if currency == paid else ("waiting", None)
        assert page_state(app, page) == want, currency
    [deposit] = deposits_of(app)
    assert deposit.currency == paid


def test_a_tag_sent_as_a_json_number_matches_the_tag_we_stored_as_text(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    _, page = issue_address(app, address="rShared", currency="XRP", foreign_id="x",
                            tag="4294967295", amount="5")
    body = deposit_body(605, "confirmed", address="rShared", currency="XRP", foreign_id="x",
                        amount="5").replace(b'"tag":null', b'"tag":4294967295')
    assert post(client, body).status_code == 200
    assert page_state(app, page) == ("confirmed", None)


# ---------------------------------------------------------------------------------------------
# Deliveries: a shop that drips its answer, a webhook URL that changed


@dataclass
class DripShop:
    """Answers the status line at once, then one header byte every `every` seconds."""

    seconds: float
    every: float = 0.05
    requests: list[bytes] = field(default_factory=list)
    url: str = ""


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return body


@contextmanager
def dripping_shop(seconds: float) -> Iterator[DripShop]:
    shop = DripShop(seconds)
    server = socket.create_server(("127.0.0.1", 0))
    shop.url = f"http://127.0.0.1:{server.getsockname()[1]}/coinspaid/callback"
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            shop.requests.append(_read_request(conn))
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                ends = time.monotonic() + shop.seconds
                while time.monotonic() < ends and not stop.is_set():
                    conn.sendall(b"z")
                    stop.wait(shop.every)
                conn.sendall(b"\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass  # the worker hung up: that is the point

    def serve() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        stop.set()
        thread.join(5)
        server.close()


def run_worker(app: Flask) -> int:
    with app.app_context():
        return deliveries.run_due()


def only_delivery(app: Flask) -> Delivery:
    with app.app_context():
        [row] = db.session().query(Delivery).all()
        return row


def set_webhook(app: Flask, url: str | None) -> None:
    with app.app_context(), db.transaction() as s:
        row = s.get(Merchant, 11)
        assert row is not None
        row.webhook_url = url


def test_a_shop_that_drips_its_answer_is_cut_off_at_the_timeout(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    """The timeout bounds the whole POST, not each read: a shop trickling bytes must not
    hold the worker past its lease, or a second worker would send the same delivery."""
    app.config.update(CLOCK=Clock(), DELIVERY_TIMEOUT=0.3, DELIVERY_LEASE=0.6)
    # The shop drips for longer than any loaded machine needs for a cut-off POST: only a
    # timeout per read (the bug) lets the worker wait for all of it.
    with dripping_shop(seconds=PATIENCE) as shop:
        set_webhook(app, shop.url)
        body = deposit_body(1, "confirmed")
        assert post(client, body).status_code == 200
        started = time.monotonic()
        assert run_worker(app) == 1
        took = time.monotonic() - started
    assert took < PATIENCE / 2, f"the POST took {took:.1f}s with a 0.3s timeout"
    row = only_delivery(app)
    assert (row.state, row.attempts, row.last_status, row.last_error) == (
        "pending", 1, None, "ReadTimeout")
    assert shop.requests == [body]


def test_a_quick_shop_is_still_delivered_under_the_deadline(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    app.config.update(CLOCK=Clock(), DELIVERY_TIMEOUT=5)
    with dripping_shop(seconds=0.2) as shop:
        set_webhook(app, shop.url)
        post(client, deposit_body(1, "confirmed"))
        assert run_worker(app) == 1
    row = only_delivery(app)
    assert (row.state, row.last_status, row.last_error) == ("delivered", 200, None)


def test_queued_callbacks_follow_the_merchants_new_webhook_url(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    app.config["CLOCK"] = Clock()
    with running_shop() as old, running_shop() as new:
        use_shop(app, old)
        body = deposit_body(1, "confirmed")
        assert post(client, body).status_code == 200
        use_shop(app, new)  # the merchant moved its handler before the worker ran
        assert run_worker(app) == 1
    assert old.received == []
    assert [r.body for r in new.received] == [body]
    assert new.verifies(new.received[0])
    row = only_delivery(app)
    assert (row.state, row.url) == ("delivered", new.url)


def test_a_webhook_removed_after_queueing_is_not_sent_to_the_old_url(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    app.config["CLOCK"] = clock = Clock()
    with running_shop() as old:
        use_shop(app, old)
        post(client, deposit_body(1, "confirmed"))
        set_webhook(app, None)
        assert run_worker(app) == 1
        row = only_delivery(app)
        assert (row.state, row.attempts, row.last_error) == ("pending", 1, "no webhook URL")
        # Set again, the merchant gets what waited, on the usual retry schedule.
        use_shop(app, old)
        clock.advance(deliveries.retry_delay(1))
        assert run_worker(app) == 1
    assert len(old.received) == 1
    assert only_delivery(app).state == "delivered"


# ---------------------------------------------------------------------------------------------
# Invoices: a second, different final word is kept for audit and flagged


@pytest.mark.parametrize(("first", "second"), [("failed", "confirmed"), ("confirmed", "failed")])
def test_a_contradicting_final_invoice_status_is_flagged_and_the_first_stays(
        app: Flask, client: FlaskClient, merchant: Merchant, first: str, second: str) -> None:
    page = issue_invoice(app, 88, "inv-88")
    assert post(client, invoice_body(88, first, "inv-88")).status_code == 200
    assert post(client, invoice_body(88, second, "inv-88")).status_code == 200
    assert post(client, invoice_body(88, "processing", "inv-88")).status_code == 200
    applied, contradicting, late = callbacks_of(app)
    assert applied.outcome == "applied"
    assert (contradicting.outcome, contradicting.flag) == (
        "flagged", f"{second} after final {first}")
    assert (late.outcome, late.flag) == ("stale", None)
    assert page_state(app, page)[0] == first


# ---------------------------------------------------------------------------------------------
# The worker loop outlives its database


def test_the_worker_loop_keeps_going_while_the_database_is_unreachable(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app({
        "TESTING": True, "SECRET_KEY": "test", "SANDBOX": True, "PROCESSOR_URL": None,
        "PUBLIC_URL": "http://127.0.0.1:9", "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "postgresql+psycopg://nobody:nothing@127.0.0.1:9/none",
    })
    try:
        with caplog.at_level(logging.ERROR, logger="checkout.worker"):
            worker.run_forever(app, idle_sleep=0.01, max_loops=3)
    finally:
        app.extensions[db.EXTENSION + ".engine"].dispose()
    failed = [r.getMessage() for r in caplog.records]
    assert failed.count("worker task deliveries failed") == 3
    assert failed.count("worker task reconcile failed") == 3
