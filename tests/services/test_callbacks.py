"""POST /callbacks/coinspaid: only bytes signed by a merchant's secret get in; they are kept
as received, forwarded, and applied to what we issued."""

from __future__ import annotations

import json
import random
import threading
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from kit.callbacks import (
    EXAMPLES,
    OUR_ADDRESS,
    callbacks_of,
    count,
    deposit_body,
    deposits_of,
    invoice_body,
    issue_address,
    issue_invoice,
    nothing_written,
    page_state,
    post,
    signed_headers,
)
from kit.live import PATIENCE
from kit.site import MERCHANT_KEY, MERCHANT_SECRET

from checkout import db, merchants, money
from checkout.models import AppliedCallback, Callback, Delivery, Deposit, Merchant, Page
from checkout.services import news
from checkout.web import callbacks
from checkout.wire import signing

# A base callback with a "/" in it, so that PHP-style "\/" escapes are a real mutation.
BASE = deposit_body(777, "confirmed", foreign_id="shop/2048")


@pytest.fixture
def other_merchant(app: Flask, merchant: Merchant) -> Merchant:
    with app.app_context():
        return merchants.add(merchants.NewMerchant(
            client_id=12, name="Other", key="other-key", secret="other-secret",
            webhook_url="https://other.example/cb"))


# ---------------------------------------------------------------------------------------------
# Authentication: refused with the processor's error shapes, nothing written


def _sig(body: bytes, secret: str = MERCHANT_SECRET) -> str:
    return signing.sign(body, secret)


REFUSALS: list[tuple[str, dict[str, str], int, str]] = [
    ("no headers", {}, 403, "required_header_key"),
    ("no key", {"X-Processing-Signature": _sig(BASE)}, 403, "required_header_key"),
    ("empty key", {"X-Processing-Key": "", "X-Processing-Signature": _sig(BASE)}, 403,
     "required_header_key"),
    ("unknown key", {"X-Processing-Key": "nobody", "X-Processing-Signature": _sig(BASE)}, 403,
     "bad_header_key"),
    ("key in another case", {"X-Processing-Key": MERCHANT_KEY.upper(),
                             "X-Processing-Signature": _sig(BASE)}, 403, "bad_header_key"),
    ("no signature", {"X-Processing-Key": MERCHANT_KEY}, 403, "required_header_signature"),
    ("empty signature", {"X-Processing-Key": MERCHANT_KEY, "X-Processing-Signature": ""}, 403,
     "required_header_signature"),
    ("signed with another secret", {"X-Processing-Key": MERCHANT_KEY,
                                    "X-Processing-Signature": _sig(BASE, "other-secret")},
     403, "bad_header_signature"),
    ("signature of other bytes", {"X-Processing-Key": MERCHANT_KEY,
                                  "X-Processing-Signature": _sig(BASE + b" ")},
     403, "bad_header_signature"),
    ("truncated signature", {"X-Processing-Key": MERCHANT_KEY,
                             "X-Processing-Signature": _sig(BASE)[:64]},
     403, "bad_header_signature"),
    ("base64 instead of hex", {"X-Processing-Key": MERCHANT_KEY,
                               "X-Processing-Signature": "c2lnbmF0dXJl" * 10},
     403, "bad_header_signature"),
    ("non-ASCII signature", {"X-Processing-Key": MERCHANT_KEY,
                             "X-Processing-Signature": "\u00e9" * 128},
     403, "bad_header_signature"),
    ("other merchant's key, our secret", {"X-Processing-Key": "other-key",
                                          "X-Processing-Signature": _sig(BASE)},
     403, "bad_header_signature"),
]


@pytest.mark.parametrize(("case", "headers", "status", "code"), REFUSALS,
                         ids=[r[0] for r in REFUSALS])
def test_unauthenticated_callbacks_are_refused_and_nothing_is_written(
        app: Flask, client: FlaskClient, other_merchant: Merchant, case: str,
        headers: dict[str, str], status: int, code: str) -> None:
    issue_address(app)
    response = post(client, BASE, {"Content-Type": "application/json", **headers})
    assert response.status_code == status
    assert response.get_json()["code"] == code
    assert nothing_written(app)


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b'[{"id":1}]', b'"text"', b"1", b"null",
    b'{"id":1,"status":NaN}', b'{"id":1,"amount":Infinity}', b"\xff\xfe{}",
    b"[" * 50_000 + b"]" * 50_000,
], ids=["empty", "text", "empty list", "list", "string", "number", "null", "NaN", "Infinity",
        "bad utf-8", "deeply nested"])
def test_signed_bytes_that_are_no_json_object_get_400_and_nothing_is_written(
        app: Flask, client: FlaskClient, merchant: Merchant, body: bytes) -> None:
    response = post(client, body)
    assert response.status_code == 400
    assert response.get_json() == {"error": "Bad content format", "code": "bad_content_format"}
    assert nothing_written(app)


def test_a_body_over_the_bound_is_refused_before_anything_is_written(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    body = BASE[:-1] + b',"pad":"' + b"x" * callbacks.MAX_BODY + b'"}'
    response = post(client, body)
    assert response.status_code == 413
    assert nothing_written(app)


@pytest.mark.parametrize("content_type", [
    "application/json", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", None,
])
def test_the_raw_body_is_read_whatever_the_content_type(
        app: Flask, client: FlaskClient, merchant: Merchant, content_type: str | None) -> None:
    headers = signed_headers(BASE)
    del headers["Content-Type"]
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post("/callbacks/coinspaid", data=BASE, headers=headers)
    assert response.status_code == 200
    assert [c.body for c in callbacks_of(app)] == [BASE]


def test_the_signature_is_hex_so_its_letter_case_does_not_matter(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    headers = signed_headers(BASE)
    headers["X-Processing-Signature"] = headers["X-Processing-Signature"].upper()
    assert post(client, BASE, headers).status_code == 200


# ---------------------------------------------------------------------------------------------
# Property: any change to the signed bytes or headers is refused, and nothing is written


def _reorder(body: bytes, seed: int) -> bytes:
    payload = json.loads(body)
    items = list(payload.items())
    random.Random(seed).shuffle(items)
    return json.dumps(dict(items), separators=(",", ":")).encode()


MUTATIONS = st.one_of(
    st.tuples(st.just("whitespace"), st.integers(0, len(BASE)),
              st.sampled_from([b" ", b"\n", b"\t", b"\r\n", b"  "])),
    st.tuples(st.just("reorder"), st.integers(0, 2**32), st.none()),
    st.tuples(st.just("pretty"), st.sampled_from([None, 1, 2]), st.none()),
    st.tuples(st.just("escape"), st.none(), st.none()),
    st.tuples(st.just("ascii escapes"), st.none(), st.none()),
    st.tuples(st.just("truncate"), st.integers(0, len(BASE) - 1), st.none()),
    st.tuples(st.just("append"), st.none(), st.binary(min_size=1, max_size=20)),
    st.tuples(st.just("flip"), st.integers(0, len(BASE) - 1), st.integers(1, 255)),
)


def mutate(kind: str, arg: Any, extra: Any) -> bytes:
    if kind == "whitespace":
        return BASE[:arg] + extra + BASE[arg:]
    if kind == "reorder":
        return _reorder(BASE, arg)
    if kind == "pretty":
        return json.dumps(json.loads(BASE), indent=arg).encode()
    if kind == "escape":
        return BASE.replace(b"/", b"\\/")
    if kind == "ascii escapes":
        return BASE.replace(b"s", b"\\u0073")
    if kind == "truncate":
        return BASE[:arg]
    if kind == "append":
        return BASE + extra
    return BASE[:arg] + bytes([BASE[arg] ^ extra]) + BASE[arg + 1:]


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutation=MUTATIONS)
def test_a_changed_body_under_the_original_signature_is_refused(
        app: Flask, client: FlaskClient, merchant: Merchant,
        mutation: tuple[str, Any, Any]) -> None:
    body = mutate(*mutation)
    assume(body != BASE)
    response = post(client, body, signed_headers(BASE))
    assert response.status_code == 403
    assert response.get_json()["code"] == "bad_header_signature"
    assert nothing_written(app)


HEADER_MUTATIONS = st.one_of(
    st.tuples(st.just("drop"), st.sets(st.sampled_from(
        ["X-Processing-Key", "X-Processing-Signature"]), min_size=1)),
    st.tuples(st.just("key"), st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                      min_size=1, max_size=40)),
    st.tuples(st.just("signature"), st.text(st.characters(min_codepoint=33, max_codepoint=255),
                                            min_size=1, max_size=140)),
    st.tuples(st.just("signature char"), st.integers(0, 127)),
    st.tuples(st.just("other secret"), st.text(min_size=1, max_size=20)),
)


def mutate_headers(kind: str, arg: Any) -> dict[str, str]:
    headers = signed_headers(BASE)
    if kind == "drop":
        for name in arg:
            del headers[name]
    elif kind == "key":
        headers["X-Processing-Key"] = arg
    elif kind == "signature":
        headers["X-Processing-Signature"] = arg
    elif kind == "signature char":
        sig = headers["X-Processing-Signature"]
        swapped = "0" if sig[arg] != "0" else "1"
        headers["X-Processing-Signature"] = sig[:arg] + swapped + sig[arg + 1:]
    else:
        headers["X-Processing-Signature"] = signing.sign(BASE, arg)
    return headers


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutation=HEADER_MUTATIONS)
def test_wrong_or_missing_headers_are_refused(
        app: Flask, client: FlaskClient, merchant: Merchant, mutation: tuple[str, Any]) -> None:
    headers = mutate_headers(*mutation)
    good = signed_headers(BASE)
    assume(headers.get("X-Processing-Key") != good["X-Processing-Key"]
           or (headers.get("X-Processing-Signature") or "").strip().lower()
           != good["X-Processing-Signature"])
    response = post(client, BASE, headers)
    assert 400 <= response.status_code < 500
    assert nothing_written(app)


# ---------------------------------------------------------------------------------------------
# The processor's documented examples are accepted, kept, forwarded and applied


def test_every_documented_example_is_accepted_kept_forwarded_and_applied(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    _, deposit_page = issue_address(app, amount="6.53157512")
    _, exchange_page = issue_address(app, address="31vnLqxVJ1iShJ5Ly586q8XKucECx12bZS",
                                     foreign_id="13a", amount="0.01")
    invoice_page = issue_invoice(app, 22, "229-hdsa")
    for body in EXAMPLES.values():
        assert post(client, body).status_code == 200
    stored = callbacks_of(app)
    assert [c.body for c in stored] == list(EXAMPLES.values())
    assert {name: c.outcome for name, c in zip(EXAMPLES, stored, strict=True)} == {
        "deposit confirmed": "applied",
        "deposit_exchange": "applied",
        "withdrawal": "ignored",
        "withdrawal cancelled": "ignored",
        "exchange": "ignored",
        "invoice processing": "applied",
    }
    assert all(c.flag is None for c in stored)
    with app.app_context():
        sent = db.session().scalars(Delivery.__table__.select().order_by(Delivery.id)).all()
        assert [d for d in sent] and len(sent) == len(EXAMPLES)
    assert {(d.processor_id, d.status, d.amount, d.currency) for d in deposits_of(app)} == {
        (1, "confirmed", "6.53157512", "BTC"), (2686510, "confirmed", "0.01000000", "BTC")}
    assert page_state(app, deposit_page) == ("confirmed", None)
    assert page_state(app, exchange_page) == ("confirmed", None)
    assert page_state(app, invoice_page) == ("processing", None)


def test_every_accepted_callback_is_queued_for_the_merchant_with_the_received_bytes(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    for body in EXAMPLES.values():
        post(client, body)
    with app.app_context():
        rows = db.session().query(Delivery).order_by(Delivery.id).all()
        assert [r.body for r in rows] == list(EXAMPLES.values())
        assert {r.url for r in rows} == {"https://shop.example/coinspaid/callback"}
        assert {r.state for r in rows} == {"pending"} and {r.attempts for r in rows} == {0}


def test_a_merchant_without_webhook_keeps_the_callback_and_queues_nothing(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    with app.app_context(), db.transaction() as s:
        row = s.get(Merchant, 11)
        assert row is not None
        row.webhook_url = None
    assert post(client, EXAMPLES["withdrawal"]).status_code == 200
    assert count(app, Callback) == 1 and count(app, Delivery) == 0


# ---------------------------------------------------------------------------------------------
# Contradictions are kept and flagged, never applied; strangers are forwarded


MISMATCHES: list[tuple[str, dict[str, Any], str]] = [
    ("another currency", {"currency": "ETH"}, "currency differs"),
    ("another currency sent", {"sent_currency": "LTC"}, "currency sent differs"),
    ("another foreign_id", {"foreign_id": "someone-else"}, "foreign_id differs"),
    ("a tag our address never had", {"tag": "12345"}, "tag differs"),
]


@pytest.mark.parametrize(("case", "change", "flag"), MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_a_callback_contradicting_our_address_is_flagged_not_applied(
        app: Flask, client: FlaskClient, merchant: Merchant, case: str,
        change: dict[str, Any], flag: str) -> None:
    _, page = issue_address(app)
    body = deposit_body(900, "confirmed", **change)
    assert post(client, body).status_code == 200
    [stored] = callbacks_of(app)
    assert stored.outcome == "flagged" and flag in (stored.flag or "")
    assert deposits_of(app) == []
    assert page_state(app, page) == ("waiting", None)
    assert count(app, Delivery) == 1  # the merchant still hears what the processor said


def test_a_tagged_address_takes_only_its_own_tag(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    _, page_a = issue_address(app, address="rShared", currency="XRP", foreign_id="a", tag="1")
    _, page_b = issue_address(app, address="rShared", currency="XRP", foreign_id="b", tag="2")
    body = deposit_body(901, "confirmed", address="rShared", currency="XRP", foreign_id="b",
                        tag="2", amount="0.01")
    assert post(client, body).status_code == 200
    assert page_state(app, page_a) == ("waiting", None)
    assert page_state(app, page_b) == ("confirmed", None)


def test_an_invoice_callback_with_another_foreign_id_is_flagged_not_applied(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    page = issue_invoice(app, 22, "ours")
    assert post(client, invoice_body(22, "confirmed", "theirs")).status_code == 200
    [stored] = callbacks_of(app)
    assert stored.outcome == "flagged"
    assert page_state(app, page) == ("pending", None)


@pytest.mark.parametrize("body", [
    deposit_body(902, "confirmed", address="1NotOurs"),
    invoice_body(99, "confirmed", "made-at-the-processor"),
], ids=["deposit", "invoice"])
def test_a_callback_about_something_we_never_issued_is_kept_and_forwarded(
        app: Flask, client: FlaskClient, merchant: Merchant, body: bytes) -> None:
    issue_address(app)
    assert post(client, body).status_code == 200
    [stored] = callbacks_of(app)
    assert (stored.outcome, stored.flag) == ("not_ours", None)
    assert count(app, Delivery) == 1 and deposits_of(app) == []


def test_a_callback_for_one_merchant_never_touches_anothers_address(
        app: Flask, client: FlaskClient, other_merchant: Merchant) -> None:
    _, page = issue_address(app, merchant_id=11)
    body = deposit_body(903, "confirmed")
    response = post(client, body, signed_headers(body, "other-key", "other-secret"))
    assert response.status_code == 200
    [stored] = callbacks_of(app)
    assert (stored.merchant_id, stored.outcome) == (12, "not_ours")
    assert page_state(app, page) == ("waiting", None)


@pytest.mark.parametrize("payload", [
    {"type": "deposit", "status": "confirmed"},
    {"id": "12", "type": "deposit", "status": "confirmed"},
    {"id": True, "type": "deposit", "status": "confirmed"},
    {"id": -1, "type": "deposit", "status": "confirmed"},
    {"id": 2**70, "type": "deposit", "status": "confirmed"},
    {"id": 1.5, "type": "deposit", "status": "confirmed"},
    {"id": 5, "type": "deposit"},
    {"id": 5, "status": ["confirmed"], "type": "deposit"},
    {"id": 5, "type": "deposit", "status": "confirmed"},
    {"id": 5, "type": "deposit", "status": "confirmed", "crypto_address": "x"},
    {"id": 5, "type": "deposit", "status": "confirmed",
     "crypto_address": {"currency": "BTC", "address": OUR_ADDRESS, "tag": None},
     "currency_sent": {"currency": "BTC", "amount": "NaN"}},
    {"id": 5, "type": "deposit", "status": "confirmed",
     "crypto_address": {"currency": "BTC", "address": OUR_ADDRESS, "tag": None},
     "currency_sent": {"currency": "BTC", "amount": "-1"}},
    {"id": 5, "type": "deposit", "status": "confirmed",
     "crypto_address": {"currency": "BTC", "address": OUR_ADDRESS, "tag": {"x": 1}}},
], ids=lambda p: json.dumps(p)[:60])
def test_signed_but_malformed_callbacks_are_kept_flagged_and_forwarded_never_applied(
        app: Flask, client: FlaskClient, merchant: Merchant, payload: dict[str, Any]) -> None:
    _, page = issue_address(app)
    body = json.dumps(payload, separators=(",", ":")).encode()
    assert post(client, body).status_code == 200
    [stored] = callbacks_of(app)
    assert stored.outcome == "flagged" and (stored.flag or "").startswith("malformed")
    assert stored.body == body
    assert count(app, Delivery) == 1 and count(app, Deposit) == 0
    assert page_state(app, page) == ("waiting", None)


def test_an_unknown_callback_type_is_kept_and_forwarded_but_changes_nothing(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    body = b'{"id":8,"type":"futures","status":"confirmed"}'
    assert post(client, body).status_code == 200
    [stored] = callbacks_of(app)
    assert (stored.outcome, stored.flag) == ("ignored", None)
    assert count(app, Delivery) == 1 and count(app, AppliedCallback) == 0


def test_amounts_are_stored_as_the_processors_decimal_text(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    issue_address(app)
    body = (b'{"id":31,"type":"deposit","crypto_address":{"currency":"BTC","address":"'
            + OUR_ADDRESS.encode() + b'","tag":null},"currency_sent":{"currency":"BTC",'
            b'"amount":0.1},"transactions":[],"status":"confirmed"}')
    assert post(client, body).status_code == 200
    [deposit] = deposits_of(app)
    assert deposit.amount == "0.1"  # a bare JSON number read as Decimal, never a float


# ---------------------------------------------------------------------------------------------
# Property: any signed JSON object is stored and answered 200, whatever its fields hold


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=12),
                 st.decimals(allow_nan=False, allow_infinity=False, places=3),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                      st.integers(), max_size=2))
CRYPTO_ADDRESS = st.fixed_dictionaries({}, optional={
    "currency": st.sampled_from(["BTC", "btc", "ETH"]) | JUNK,
    "address": st.just(OUR_ADDRESS) | JUNK,
    "tag": st.none() | JUNK,
    "foreign_id": st.just("user-id:2048") | JUNK,
})
CALLBACK_LIKE = st.fixed_dictionaries({}, optional={
    "id": st.integers(1, 50) | JUNK,
    "type": st.sampled_from(sorted(news.TYPES)) | JUNK,
    "status": st.sampled_from(["not_confirmed", "confirmed", "cancelled", "pending",
                               "processing", "failed"]) | JUNK,
    "foreign_id": st.just("inv-1") | JUNK,
    "crypto_address": CRYPTO_ADDRESS | JUNK,
    "currency_sent": st.fixed_dictionaries({}, optional={
        "currency": st.just("BTC") | JUNK,
        "amount": st.sampled_from(["0.01", "1E+2", "-3", "abc", "0"]) | JUNK}) | JUNK,
    "transactions": st.lists(st.fixed_dictionaries({}, optional={
        "transaction_type": st.sampled_from(["blockchain", "exchange"]) | JUNK,
        "amount": JUNK, "txid": JUNK, "confirmations": JUNK}), max_size=2) | JUNK,
    "error": JUNK,
})


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=CALLBACK_LIKE)
def test_any_signed_json_object_is_kept_and_answered_200_never_500(
        app: Flask, client: FlaskClient, merchant: Merchant, payload: dict[str, Any]) -> None:
    if count(app, Callback) == 0:
        issue_address(app)
        issue_invoice(app, 1, "inv-1")
    before = count(app, Callback)
    body = money.dumps(payload).encode()
    response = post(client, body)
    assert response.status_code == 200
    stored = callbacks_of(app)
    assert len(stored) == before + 1 and stored[-1].body == body
    assert stored[-1].outcome in {"applied", "stale", "duplicate", "not_ours", "ignored",
                                  "flagged"}
    for deposit in deposits_of(app):
        assert money.parse_amount(deposit.amount, allow_zero=True) >= 0


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
