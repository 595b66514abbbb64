"""The deposit page: its state machine, the page model, the page, its status and QR routes."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from kit.deposits import (
    BTC_ADDRESS,
    LINK,
    count,
    created,
    known_address,
    link_query,
    open_link,
    send_deposit,
    txid,
)
from kit.live import LiveServer
from kit.site import MERCHANT_SECRET
from sqlalchemy import func, select

from checkout import clock, db, rates, terminal
from checkout.models import Deposit, DepositAddress, Merchant, Page, RateQuote
from checkout.pagekinds import deposit
from checkout.sandbox import store as sandbox_store

XRP_ADDRESS = "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh"
# The contract's keys, in its order, with ours beside them (README, "The page model").
CONTRACT_KEYS = ["id", "kind", "status", "reason", "final", "phase", "pay_now", "currency",
                 "address", "tag", "network", "test_network", "amount", "amount_paid",
                 "amount_due", "rest_below_minimum", "minimum_extra", "amount_over", "minimum",
                 "fiat",
                 "seconds_left", "payment_uri", "confirmations_required", "transactions",
                 "receipt", "return_url", "form", "refund_note", "invoice", "support", "refund",
                 "label"]




def dep(status: str, amount: str = "0.00123", processor_id: int = 1) -> Deposit:
    return Deposit(merchant_id=11, processor_id=processor_id, currency="BTC", amount=amount,
                   status=status, confirmations=0)


# ---------------------------------------------------------------- the state machine (pure)


@pytest.mark.parametrize(("amount", "deposits", "status", "reason", "final", "paid"), [
    ("0.00123", [], "waiting", None, False, "0"),
    ("0.00123", [("not_confirmed", "0.00123")], "not_confirmed", None, False, "0.00123"),
    ("0.00123", [("confirmed", "0.00123")], "confirmed", None, True, "0.00123"),
    ("0.00123", [("confirmed", "0.002")], "confirmed", "overpaid", True, "0.002"),
    ("0.00123", [("confirmed", "0.001")], "confirmed", "underpaid", False, "0.001"),
    # The rest is on its way: seen, never "please send the rest".
    ("0.00123", [("confirmed", "0.001"), ("not_confirmed", "0.00023")], "not_confirmed",
     None, False, "0.00123"),
    ("0.00123", [("confirmed", "0.001"), ("not_confirmed", "0.0001")], "confirmed",
     "underpaid", False, "0.0011"),
    ("0.00123", [("confirmed", "0.001"), ("confirmed", "0.00023")], "confirmed", None, True,
     "0.00123"),
    ("0.00123", [("cancelled", "0.00123")], "cancelled", "cancelled", True, "0"),
    ("0.00123", [("cancelled", "0.00123"), ("not_confirmed", "0.00123")], "not_confirmed",
     None, False, "0.00123"),
    ("0.00123", [("cancelled", "0.00123"), ("confirmed", "0.00123")], "confirmed", None, True,
     "0.00123"),
    (None, [("confirmed", "0.00000001")], "confirmed", None, True, "0.00000001"),
    (None, [("not_confirmed", "1"), ("not_confirmed", "2")], "not_confirmed", None, False, "3"),
])
def test_what_the_transactions_add_up_to(amount: str | None, deposits: list[tuple[str, str]],
                                         status: str, reason: str | None, final: bool,
                                         paid: str) -> None:
    state = deposit.state_of(None if amount is None else Decimal(amount),
                              [dep(s, a) for s, a in deposits])
    assert (state.status, state.reason, state.final, state.amount_paid) == (
        status, reason, final, Decimal(paid))


@pytest.mark.parametrize(("current", "reason", "new", "allowed"), [
    ("waiting", None, "not_confirmed", True),
    ("not_confirmed", None, "waiting", True),  # a seen payment that the network dropped
    ("not_confirmed", None, "cancelled", True),
    ("confirmed", "underpaid", "confirmed", True),
    ("confirmed", None, "not_confirmed", False),
    ("confirmed", None, "cancelled", False),
    ("confirmed", None, "waiting", False),
    ("cancelled", "cancelled", "waiting", False),
    ("cancelled", "cancelled", "not_confirmed", True),  # a new payment is on its way
    ("cancelled", "cancelled", "confirmed", True),  # real money arrived after all
])
def test_final_states_are_never_left_but_for_real_money(current: str, reason: str | None,
                                                       new: str, allowed: bool) -> None:
    assert deposit.may_move(current, reason, new) is allowed


TX = st.tuples(st.integers(1, 3), st.sampled_from(["not_confirmed", "confirmed", "cancelled"]),
               st.sampled_from(["0.0005", "0.00123", "0.002"]))


@given(st.lists(TX, max_size=12), st.sampled_from([None, "0.00123"]))
def test_any_order_of_callbacks_never_moves_a_page_out_of_a_final_state(
        events: list[tuple[int, str, str]], amount: str | None) -> None:
    rows: dict[int, Deposit] = {}
    status, reason = "waiting", None
    for processor_id, tx_status, tx_amount in events:
        rows[processor_id] = dep(tx_status, tx_amount, processor_id)
        state = deposit.state_of(None if amount is None else Decimal(amount), rows.values())
        was_final = deposit.is_final(status, reason)
        if deposit.may_move(status, reason, state.status):
            if was_final:
                # Real money after a cancellation, or more money after "paid" (overpaid).
                assert (status == "cancelled" and state.status in ("not_confirmed", "confirmed")
                        ) or (status == state.status == "confirmed")
            status, reason = state.status, state.reason
        assert status in deposit.DEPOSIT_STATUSES
    confirmed = sum((Decimal(d.amount) for d in rows.values() if d.status == "confirmed"),
                    Decimal(0))
    in_flight = sum((Decimal(d.amount) for d in rows.values() if d.status == "not_confirmed"),
                    Decimal(0))
    if any(d.status == "confirmed" for d in rows.values()):
        # Confirmed money shows as confirmed, unless the rest of the amount is on its way.
        rest_on_its_way = amount is not None and confirmed < Decimal(amount) <= (
            confirmed + in_flight)
        # (A page confirmed in full stays so, whatever comes after.)
        assert status == "confirmed" or (status == "not_confirmed" and rest_on_its_way)
        if not rest_on_its_way:
            assert status == "confirmed"


# ---------------------------------------------------------------- pages in the database










def test_a_link_opens_a_page_and_the_same_link_the_same_page(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    first = open_link(client)
    assert open_link(client) == first
    assert count(app, Page) == 1 and count(app, DepositAddress) == 1


def test_the_same_customer_gets_the_same_address_on_another_link(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    first = open_link(client)
    second = open_link(client, {**LINK, "amount": "0.002", "is_iframe": True})
    assert first != second
    with app.app_context():
        pages = db.session().scalars(select(Page)).all()
        assert {p.address for p in pages} == {BTC_ADDRESS}
        assert {p.address_id for p in pages} == {address.id}


def test_page_ids_are_unguessable_tokens(app: Flask, client: FlaskClient,
                                         address: DepositAddress, fresh_rate: None) -> None:
    ids = {open_link(client, {**LINK, "amount": f"0.00{n + 1}"}).rsplit("/", 1)[1]
           for n in range(5)}
    assert len(ids) == 5
    assert all(len(i) >= 32 and not i.isdigit() for i in ids)


def test_the_status_model_is_exactly_the_contract(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    page = open_link(client)
    response = client.get(page + "/status")
    assert response.headers["Cache-Control"] == "no-store"
    model = response.get_json()
    assert list(model) == CONTRACT_KEYS
    assert model == {
        "id": page.rsplit("/", 1)[1], "kind": "deposit", "status": "waiting", "reason": None,
        "final": False, "phase": "waiting", "pay_now": True, "currency": "BTC",
        "address": BTC_ADDRESS, "tag": None, "network": "Bitcoin", "test_network": True,
        "amount": "0.00123", "amount_paid": "0", "amount_due": "0.00123",
        "rest_below_minimum": None, "minimum_extra": None, "amount_over": None,
        "minimum": "0.0001",
        "fiat": {"currency": "EUR", "amount": "59.93", "due": "59.93", "rate": "48715.62"},
        "seconds_left": None, "payment_uri": f"bitcoin:{BTC_ADDRESS}?amount=0.00123",
        "confirmations_required": 1, "transactions": [], "receipt": None, "return_url": None,
        "form": None, "refund_note": False, "invoice": None, "support": None, "refund": None,
        "label": "waiting",
    }


def test_the_status_never_reaches_the_processor(
        make_app: Any, merchant: Merchant) -> None:
    """The processor is unreachable here; the status answers from the database anyway."""
    app = make_app(PROCESSOR_URL="http://127.0.0.1:9/api/v2", PROCESSOR_TIMEOUT=0.5)
    with app.app_context(), db.transaction() as s:
        s.add(DepositAddress(merchant_id=11, foreign_id="user-7", currency="BTC",
                             convert_to="EUR", address=BTC_ADDRESS))
    client = app.test_client()
    page = open_link(client)
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(RateQuote)) == 0
    model = client.get(page + "/status").get_json()
    assert model["status"] == "waiting" and model["fiat"] is None


def test_deposits_move_the_page_forward_and_only_those_after_it_opened(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    assert send_deposit(app, 1, "confirmed", "5") == "applied"  # an earlier order's money
    page = open_link(client)
    assert client.get(page + "/status").get_json()["status"] == "waiting"

    assert send_deposit(app, 2, "not_confirmed") == "applied"
    model = client.get(page + "/status").get_json()
    assert (model["status"], model["final"], model["amount_paid"]) == (
        "not_confirmed", False, "0.00123")
    assert model["transactions"] == [{
        "txid": txid(2), "amount": "0.00123", "status": "not_confirmed", "refusal": None,
        "confirmations": 0,
        # Sandbox mode: a test-network explorer, where a test transaction can be found.
        "explorer_url": f"https://mempool.space/testnet4/tx/{txid(2)}"}]
    assert send_deposit(app, 2, "not_confirmed") == "duplicate"  # a replay changes nothing
    assert client.get(page + "/status").get_json() == model

    assert send_deposit(app, 2, "confirmed") == "applied"
    model = client.get(page + "/status").get_json()
    assert (model["status"], model["final"], model["amount_due"], model["return_url"]) == (
        "confirmed", True, None, "https://shop.example/back")

    # A late contradiction never undoes a confirmation: the processor's first final word
    # stays, on the transaction as on the page, and the callback is flagged for an operator.
    assert send_deposit(app, 2, "cancelled") == "flagged"
    model = client.get(page + "/status").get_json()
    assert (model["status"], [t["status"] for t in model["transactions"]]) == (
        "confirmed", ["confirmed"])


def test_a_payment_counts_on_one_page_only_the_newest_open_when_it_was_seen(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    first = open_link(client)
    send_deposit(app, 1, "not_confirmed")  # seen while only the first page was open
    second = open_link(client, {**LINK, "amount": "0.002"})  # another order, same customer
    assert second != first
    send_deposit(app, 2, "confirmed", "0.002")
    send_deposit(app, 1, "confirmed")  # confirmed later, still the first's

    one = client.get(first + "/status").get_json()
    two = client.get(second + "/status").get_json()
    assert (one["status"], one["amount_paid"], [t["txid"] for t in one["transactions"]]) == (
        "confirmed", "0.00123", [txid(1)])
    assert (two["status"], two["amount_paid"], [t["txid"] for t in two["transactions"]]) == (
        "confirmed", "0.002", [txid(2)])


def test_the_page_shows_everything_needed_to_pay_without_javascript(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    page = open_link(client)
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert BTC_ADDRESS in html and ">0.00123</span> BTC" in html and "59.93" in html
    assert "Bitcoin network" in html and "lost" in html
    assert f'href="bitcoin:{BTC_ADDRESS}?amount=0.00123"' in html
    # The refresh names the page itself: a page answered to a form post refreshes by GET.
    assert (f'<noscript><meta http-equiv="refresh" content="30; url={page}"></noscript>'
            in html)
    assert "Check again now" in html
    assert 'aria-live="polite"' in html
    assert re.search(r'<html lang="en" dir="ltr">', html)
    assert "user-scalable" not in html and "maximum-scale" not in html
    # No inline script or style: the strict CSP would block them.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html and " style=" not in html and "onclick" not in html
    assert MERCHANT_SECRET not in html
    # The way back is there, but quiet until the payment is final: no button leads away.
    assert re.search(r'<a class="button"[^>]*data-field="return-link">Back to Shop</a>', html)
    assert re.search(r'<p class="quiet-back"[^>]*>\s*<a href="https://shop.example/back" '
                     r'target="_top"', html)


def test_a_final_page_offers_the_way_back_to_the_shop_at_the_top(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    page = open_link(client)
    send_deposit(app, 3, "confirmed")
    html = client.get(page).get_data(as_text=True)
    assert re.search(r'<a class="button" target="_top" rel="noopener" data-field="return-link"'
                     r' href="https://shop.example/back">', html)
    assert "<noscript>" not in html  # nothing left to wait for


def test_a_tag_is_shown_as_loudly_as_the_address(app: Flask, client: FlaskClient,
                                                 merchant: Merchant) -> None:
    with app.app_context(), db.transaction() as s:
        s.add(DepositAddress(merchant_id=11, foreign_id="u", currency="XRP", convert_to="",
                             address=XRP_ADDRESS, tag="123456"))
        s.add(RateQuote(currency_from="XRP", currency_to="EUR", rate="0.5",
                        fetched_at=clock.now()))
    page = open_link(client, {"client_id": 11, "currency": "XRP", "foreign_id": "u"})
    html = client.get(page).get_data(as_text=True)
    assert "Destination tag" in html and "123456" in html
    assert 'data-copy="tag"' in html and "must include this Destination tag" in html
    model = client.get(page + "/status").get_json()
    assert model["tag"] == "123456" and "dt=123456" in model["payment_uri"]


@pytest.mark.parametrize(("code", "address", "ticker", "network"), [
    ("USDTT", "TFpdNXBtw55yS7bExnbtYZcAdvtT18tq9u", "USDT", "TRON (TRC-20)"),
    ("USDTE", "0x" + "ab" * 20, "USDT", "Ethereum (ERC-20)"),
])
def test_a_token_is_named_as_wallets_name_it_with_its_network(
        app: Flask, client: FlaskClient, merchant: Merchant, code: str, address: str,
        ticker: str, network: str) -> None:
    with app.app_context(), db.transaction() as s:
        s.add(DepositAddress(merchant_id=11, foreign_id="u", currency=code, convert_to="",
                             address=address, tag=None))
    page = open_link(client, {"client_id": 11, "currency": code, "foreign_id": "u",
                              "amount": "19.99"})
    html = client.get(page).get_data(as_text=True)
    # USDT is on several networks: the heading says which, not only the fourth field.
    assert f"Pay with {ticker} on {network}</h1>" in html
    assert f">19.99</span> {ticker}</span>" in html
    assert f"Send only {ticker} on the {network} network" in html
    assert f">{code}<" not in html and f" {code} " not in html  # the processor's code stays inside


@pytest.mark.parametrize(("iframe", "expected"), [
    (True, "frame-ancestors https://shop.example"), (False, "frame-ancestors 'none'")])
def test_only_iframe_pages_may_be_framed_and_only_by_the_merchant(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None,
        iframe: bool, expected: str) -> None:
    page = open_link(client, {**LINK, "is_iframe": iframe})
    response = client.get(page)
    assert response.headers["Content-Security-Policy"].endswith(expected)
    html = response.get_data(as_text=True)
    assert ('class="compact"' in html) is iframe
    assert ('data-origins="https://shop.example"' in html) is iframe


@pytest.mark.parametrize(("fmt", "mimetype"), [("svg", "image/svg+xml"), ("png", "image/png")])
def test_qr_images_are_never_stored_and_revalidate(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None,
        fmt: str, mimetype: str) -> None:
    page = open_link(client)
    response = client.get(f"{page}/qr.{fmt}")
    assert response.status_code == 200 and response.mimetype == mimetype
    # The QR carries the amount due now, which changes with each payment: never kept.
    assert response.headers["Cache-Control"] == "no-store"
    etag = response.headers["ETag"]
    again = client.get(f"{page}/qr.{fmt}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.data
    assert client.get(f"{page}/qr.gif").status_code == 404


def test_the_qr_decodes_to_the_payment_uri(app: Flask, client: FlaskClient,
                                           address: DepositAddress, fresh_rate: None) -> None:
    import io

    import zxingcpp
    from PIL import Image

    page = open_link(client)
    model = client.get(page + "/status").get_json()
    image = Image.open(io.BytesIO(client.get(page + "/qr.png").data))
    (result,) = zxingcpp.read_barcodes(image)
    # The bech32 address is uppercased inside the QR only (BIP173); the rest is exact.
    assert result.text == f"bitcoin:{BTC_ADDRESS.upper()}?amount=0.00123"
    assert result.text.lower() == model["payment_uri"].lower()


# ---------------------------------------------------------------- rates


def test_a_rate_is_fetched_once_per_max_age(app: Flask) -> None:
    calls: list[tuple[str, str]] = []

    def fetch(a: str, b: str) -> Decimal:
        calls.append((a, b))
        return Decimal("100.5")

    start = datetime(2026, 1, 1)
    with app.app_context():
        s = db.session()
        assert rates.refresh(s, "BTC", "EUR", fetch, now=start, max_age=60) == Decimal("100.5")
        assert rates.refresh(s, "BTC", "EUR", fetch, now=start + timedelta(seconds=59),
                             max_age=60) == Decimal("100.5")
        assert len(calls) == 1
        rates.refresh(s, "BTC", "EUR", fetch, now=start + timedelta(seconds=60), max_age=60)
        assert len(calls) == 2
        s.commit()


@pytest.mark.parametrize("answer", [RuntimeError("down"), Decimal("NaN"), Decimal(0),
                                    Decimal(-1)])
def test_a_failed_or_absurd_rate_keeps_the_last_good_one(app: Flask, answer: Any) -> None:
    def fetch(a: str, b: str) -> Decimal:
        if isinstance(answer, Exception):
            raise answer
        return Decimal(answer)

    start = datetime(2026, 1, 1)
    with app.app_context():
        s = db.session()
        assert rates.refresh(s, "BTC", "EUR", fetch, now=start, max_age=60) is None
        rates.store(s, "BTC", "EUR", Decimal("7"), start)
        later = start + timedelta(hours=1)
        assert rates.refresh(s, "BTC", "EUR", fetch, now=later, max_age=60) == Decimal(7)
        s.commit()


def test_a_processor_that_is_down_is_asked_once_per_max_age_not_per_page_view(
        app: Flask) -> None:
    calls: list[datetime] = []
    start = datetime(2026, 1, 1)

    def down(a: str, b: str) -> Decimal:
        calls.append(start)
        raise RuntimeError("down")

    with app.app_context():
        s = db.session()
        rates.store(s, "BTC", "EUR", Decimal("7"), start)
        later = start + timedelta(minutes=5)
        for seconds in range(0, 60, 5):  # a page viewed every five seconds for a minute
            assert rates.refresh(s, "BTC", "EUR", down, now=later + timedelta(seconds=seconds),
                                 max_age=60) == Decimal(7)
        assert len(calls) == 1
        rates.refresh(s, "BTC", "EUR", down, now=later + timedelta(seconds=60), max_age=60)
        assert len(calls) == 2
        s.commit()


# ---------------------------------------------------------------- the processor


def test_a_processor_failure_shows_a_retry_page_and_creates_nothing(
        make_app: Any, merchant: Merchant) -> None:
    app = make_app(PROCESSOR_URL="http://127.0.0.1:9/api/v2", PROCESSOR_TIMEOUT=0.5)
    response = app.test_client().get("/terminal", query_string=link_query(LINK))
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "Try again" in html and 'href="/terminal?data=' in html
    assert response.headers["Retry-After"]
    assert count(app, Page) == 0 and count(app, DepositAddress) == 0


# ---------------------------------------------------------------- with the embedded sandbox
# Real HTTP between our processor client and the sandbox: the live server, not the test client.


def get_link(live: LiveServer, payload: dict[str, Any] = LINK) -> requests.Response:
    return requests.get(f"{live.url}/terminal", params=link_query(payload),
                        allow_redirects=False, timeout=30)


def sandbox_addresses(app: Flask) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(sandbox_store.Address)) or 0


def test_the_address_is_taken_once_per_customer_and_currency(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    for payload in (LINK, LINK, {**LINK, "amount": "0.5"}, {**LINK, "is_iframe": "true"}):
        assert get_link(live_server, payload).status_code == 303
    assert sandbox_addresses(app) == 1 and count(app, DepositAddress) == 1
    assert count(app, Page) == 3  # three different links, one address

    # (0.05 LTC: the BTC link's 0.00123 is below LTC's minimum deposit, and refused.)
    for other in ({**LINK, "foreign_id": "user-8"}, {**LINK, "currency": "LTC", "amount": "0.05"},
                  {**LINK, "convert_to": None}):
        assert get_link(live_server, other).status_code == 303
    assert sandbox_addresses(app) == 4 and count(app, DepositAddress) == 4


def test_first_clicks_at_the_same_moment_share_one_address_and_one_page(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    barrier = threading.Barrier(4)
    locations: list[str] = []

    def click() -> None:
        barrier.wait()
        response = get_link(live_server)
        assert response.status_code == 303
        locations.append(response.headers["Location"])

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(locations) == 4 and len(set(locations)) == 1
    assert count(app, DepositAddress) == 1 and count(app, Page) == 1


def test_opening_a_link_stores_the_rate_for_the_page_and_its_polls(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    page = get_link(live_server).headers["Location"]
    assert count(app, RateQuote) == 1
    model = requests.get(live_server.url + page + "/status", timeout=30).json()
    assert model["fiat"]["currency"] == "EUR"
    rate = Decimal(model["fiat"]["rate"])
    assert Decimal(model["fiat"]["amount"]) == (Decimal("0.00123") * rate).quantize(
        Decimal("0.01"), rounding="ROUND_CEILING")


def test_a_currency_the_processor_refuses_is_a_clear_error_not_a_retry(
        app: Flask, live_server: LiveServer, merchant: Merchant) -> None:
    response = get_link(live_server, {**LINK, "currency": "DAI", "amount": None})
    assert response.status_code == 422
    assert "cannot be made in this currency" in response.text
    assert count(app, Page) == 0 and count(app, DepositAddress) == 0


def test_a_cancelled_page_lets_its_link_open_a_fresh_page_on_the_same_address(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    first = open_link(client)
    send_deposit(app, 1, "cancelled")
    second = open_link(client)
    assert second != first
    assert client.get(second + "/status").get_json()["status"] == "waiting"
    assert client.get(first + "/status").get_json()["status"] == "cancelled"
    assert open_link(client) == second
    with app.app_context():
        assert {p.address_id for p in db.session().scalars(select(Page))} == {address.id}


def test_a_paid_orders_link_reopens_its_paid_page(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    """A fresh "waiting" page for an order already paid invites a second payment."""
    first = open_link(client)
    send_deposit(app, 1, "confirmed")
    assert open_link(client) == first
    assert count(app, Page) == 1


def test_a_standing_top_up_link_opens_a_fresh_page_once_the_last_is_final(
        app: Flask, client: FlaskClient, address: DepositAddress, fresh_rate: None) -> None:
    top_up = {**LINK, "amount": None}
    first = open_link(client, top_up)
    send_deposit(app, 1, "confirmed", "0.5")
    second = open_link(client, top_up)
    assert second != first
    assert client.get(second + "/status").get_json()["phase"] == "waiting"


def test_an_unexpected_failure_is_an_html_page_without_details(make_app: Any) -> None:
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/p/<page_id>/boom")
    def boom(page_id: str) -> str:
        raise RuntimeError("secret detail test-secret-11")

    response = app.test_client().get("/p/x/boom")
    assert response.status_code == 500 and response.mimetype == "text/html"
    assert "secret detail" not in response.get_data(as_text=True)
    assert "Something went wrong" in response.get_data(as_text=True)


SHOP_FRAMES = "frame-ancestors https://shop.example"


def framing(response: Any) -> tuple[str, str | None, bool]:
    csp = response.headers["Content-Security-Policy"]
    ancestors = csp[csp.index("frame-ancestors"):]
    compact = 'class="compact"' in response.get_data(as_text=True)
    return ancestors, response.headers.get("X-Frame-Options"), compact


@pytest.mark.parametrize(("why", "payload", "status"), [
    ("unsupported currency", {**LINK, "currency": "DOGGY"}, 422),
    ("conversion not supported", {**LINK, "convert_to": "XYZ"}, 422),
    ("url_back not the shop's", {**LINK, "url_back": "https://evil.example/"}, 400),
    ("invalid amount", {**LINK, "amount": "-1"}, 400),
    ("no order reference", {**LINK, "foreign_id": ""}, 400),
])
def test_an_iframe_link_the_shop_signed_shows_its_error_inside_the_shops_frame(
        app: Flask, client: FlaskClient, merchant: Merchant, why: str,
        payload: dict[str, Any], status: int) -> None:
    """A refused frame is a blank box in the shop's modal: the customer never reads why."""
    query = terminal.encode_link({**payload, "is_iframe": True}, MERCHANT_SECRET)
    response = client.get("/terminal", query_string=query)
    assert response.status_code == status, why
    assert framing(response) == (SHOP_FRAMES, None, True)
    assert response.headers["Cache-Control"] == "no-store"
    assert created(app) == (0, 0)


@pytest.mark.parametrize(("why", "query"), [
    ("not iframe", terminal.encode_link({**LINK, "currency": "DOGGY"}, MERCHANT_SECRET)),
    ("wrong signature", terminal.encode_link({**LINK, "currency": "DOGGY", "is_iframe": True},
                                             "not-the-secret")),
    ("unknown merchant", terminal.encode_link({**LINK, "client_id": 12, "is_iframe": True},
                                              MERCHANT_SECRET)),
    ("malformed flag", terminal.encode_link({**LINK, "is_iframe": "maybe"}, MERCHANT_SECRET)),
])
def test_other_error_pages_still_refuse_every_frame(
        app: Flask, client: FlaskClient, merchant: Merchant, why: str,
        query: dict[str, str]) -> None:
    response = client.get("/terminal", query_string=query)
    assert 400 <= response.status_code < 500, why
    assert framing(response) == ("frame-ancestors 'none'", "DENY", False)


def test_the_retry_page_of_an_iframe_link_shows_inside_the_shops_frame(
        make_app: Any, merchant: Merchant) -> None:
    app = make_app(PROCESSOR_URL="http://127.0.0.1:9/api/v2", PROCESSOR_TIMEOUT=0.5)
    client = app.test_client()
    framed = client.get("/terminal", query_string=terminal.encode_link(
        {**LINK, "is_iframe": True}, MERCHANT_SECRET))
    assert framed.status_code == 503 and "Try again" in framed.get_data(as_text=True)
    assert framing(framed) == (SHOP_FRAMES, None, True)
    full = client.get("/terminal", query_string=terminal.encode_link(LINK, MERCHANT_SECRET))
    assert full.status_code == 503
    assert framing(full) == ("frame-ancestors 'none'", "DENY", False)
    assert created(app) == (0, 0)


@pytest.mark.parametrize(("age", "shown"), [
    (timedelta(minutes=5), "59.93"), (timedelta(minutes=59), "59.93"),
    (timedelta(hours=2), None), (timedelta(days=3), None)])
def test_an_old_rate_shows_no_fiat_value_rather_than_a_wrong_one(
        make_app: Any, merchant: Merchant, age: timedelta, shown: str | None) -> None:
    """The processor cannot be asked here, so the quote is never refreshed: a three-day-old
    price was shown as "about 59.93 EUR"."""
    app = make_app(PROCESSOR_URL="http://127.0.0.1:9/api/v2", PROCESSOR_TIMEOUT=0.2)
    with app.app_context(), db.transaction() as s:
        s.add(DepositAddress(merchant_id=11, foreign_id="user-7", currency="BTC",
                             convert_to="EUR", address=BTC_ADDRESS))
        s.add(RateQuote(currency_from="BTC", currency_to="EUR", rate="48715.62",
                        fetched_at=clock.now() - age))
    client = app.test_client()
    page = client.get("/terminal", query_string=terminal.encode_link(
        LINK, MERCHANT_SECRET)).headers["Location"]
    fiat = client.get(page + "/status").get_json()["fiat"]
    html = client.get(page).get_data(as_text=True)
    if shown is None:
        assert fiat is None and not re.search(r"about [0-9.]+ EUR", html)
    else:
        assert fiat == {"currency": "EUR", "amount": shown, "due": shown, "rate": "48715.62"}
        assert f"about {shown} EUR" in html


@pytest.mark.parametrize("path", ["/p/%00", "/p/%00/status", "/p/%00/qr.svg", "/p/a%00b",
                                  "/p/%C3%A9t%C3%A9", "/p/..%2F..", "/p/a b/status"])
def test_an_id_that_is_no_token_is_the_plain_404_of_any_unknown_page(
        client: FlaskClient, path: str) -> None:
    """PostgreSQL refuses a NUL in a query parameter with an error: that was a 500."""
    response = client.get(path)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_language_a_link_asks_for_carries_over_to_the_page(
        make_app: Any, merchant: Merchant) -> None:
    app = make_app(LANGUAGES=["en", "de"])
    known_address(app, "BTC", BTC_ADDRESS)
    client = app.test_client()
    query = terminal.encode_link({"client_id": 11, "currency": "BTC", "foreign_id": "u"},
                                 MERCHANT_SECRET)
    response = client.get("/terminal", query_string={**query, "lang": "de"})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert re.fullmatch(r"/p/[A-Za-z0-9_-]{32}\?lang=de", location)
    assert '<html lang="de"' in client.get(location).get_data(as_text=True)
    # A language the site does not have is not carried (nor echoed anywhere).
    other = client.get("/terminal", query_string={**query, "lang": "xx\"><b>"})
    assert other.headers["Location"] == location.split("?")[0]


def test_the_svg_qr_names_the_language_its_title_is_in_for_caches(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    known_address(app, "BTC", BTC_ADDRESS)
    query = terminal.encode_link({"client_id": 11, "currency": "BTC", "foreign_id": "u"},
                                 MERCHANT_SECRET)
    page = client.get("/terminal", query_string=query).headers["Location"]
    svg = client.get(page + "/qr.svg")
    assert svg.headers["Cache-Control"] == "no-store"
    assert "Accept-Language" in svg.headers.get("Vary", "")


HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>\'&'


def test_every_shop_provided_value_is_escaped_on_the_page(
        app: Flask, client: FlaskClient) -> None:
    from checkout import merchants

    with app.app_context():
        merchants.add(merchants.NewMerchant(
            client_id=11, name=f"Shop {HOSTILE}", key="k", secret=MERCHANT_SECRET,
            return_hosts=("shop.example",), frame_origins=("https://shop.example",)))
    with app.app_context(), db.transaction() as s:
        s.add(DepositAddress(merchant_id=11, foreign_id=HOSTILE, currency="BTC",
                             convert_to="", address=BTC_ADDRESS))
    query = terminal.encode_link({"client_id": 11, "currency": "BTC", "foreign_id": HOSTILE,
                                  "is_iframe": True}, MERCHANT_SECRET)
    response = client.get("/terminal", query_string=query)
    assert response.status_code == 303
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<img src=x" not in html and "<script>alert" not in html
    assert 'data-foreign-id="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;' in html
    assert "Shop &#34;&gt;&lt;img" in html
