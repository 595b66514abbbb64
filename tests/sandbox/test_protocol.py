"""The wire protocol: content format, the four 403s, raw-byte signatures, read-only endpoints."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from flask import Flask

from checkout.wire import jsontext, signing

from .conftest import API, KEY, SECRET, Api, advance


def test_ping_answers_plain_ok_without_auth(api: Api) -> None:
    response = requests.get(api.base + API + "/ping", timeout=30)
    assert (response.status_code, response.text) == (200, "OK")
    assert response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(("headers", "raw", "reason"), [
    ({"Content-Type": "text/plain"}, b"{}", "wrong content type"),
    ({"Content-Type": None}, b"{}", "no content type"),
    ({}, b"", "empty body"),
    ({}, b"{", "truncated JSON"),
    ({}, b"not json", "not JSON"),
    ({}, b'"text"', "a JSON string"),
    ({}, b"42", "a JSON number"),
    ({}, b"true", "a JSON boolean"),  # `null` means no parameters: test_wire.py
    ({}, b'{"amount": NaN}', "NaN"),
    ({}, b"\xff\xfe{}", "not UTF-8"),
])
def test_bad_content_format(api: Api, headers: dict[str, str], raw: bytes, reason: str) -> None:
    response = api.call("accounts/list", raw=raw, headers=headers)
    assert response.status_code == 400, reason
    assert response.json() == {"error": "Bad content format", "code": "bad_content_format"}


@pytest.mark.parametrize("raw", [b"{}", b"[]", b'{"visible": true}'])
def test_empty_object_and_array_both_mean_no_parameters(api: Api, raw: bytes) -> None:
    response = api.call("currencies/list", raw=raw)
    assert response.status_code == 200
    assert len(response.json()["data"]) > 10


@pytest.mark.parametrize(("headers", "sign_with", "code", "message"), [
    ({"X-Processing-Key": None}, None, "required_header_key", "No key header"),
    ({"X-Processing-Key": ""}, None, "required_header_key", "No key header"),
    ({"X-Processing-Signature": None}, None, "required_header_signature",
     "No signature header"),
    ({"X-Processing-Key": "someone-else"}, None, "bad_header_key", "Bad key header"),
    ({}, "wrong-secret", "bad_header_signature", "Bad signature header"),
    ({"X-Processing-Signature": "0" * 128}, None, "bad_header_signature",
     "Bad signature header"),
    ({"X-Processing-Signature": "é" * 128}, None, "bad_header_signature",
     "Bad signature header"),
])
def test_auth_errors(api: Api, headers: dict[str, str], sign_with: str | None, code: str,
                     message: str) -> None:
    response = api.call("accounts/list", headers=headers, sign_with=sign_with)
    assert response.status_code == 403
    assert response.json() == {"error": message, "code": code}


def test_signature_covers_the_exact_bytes(api: Api) -> None:
    """Re-serialising after signing (spaces, key order) breaks the signature."""
    signed = b'{"currency":"BTC","foreign_id":"a"}'
    sent = b'{"foreign_id": "a", "currency": "BTC"}'
    response = api.call("addresses/take", raw=sent,
                        headers={"X-Processing-Signature": signing.sign(signed, SECRET)})
    assert response.status_code == 403
    assert response.json()["code"] == "bad_header_signature"
    # The same spaced bytes, signed as sent, are fine: compactness is not required.
    assert api.call("addresses/take", raw=sent).status_code == 201


def test_uppercase_hex_signature_is_accepted(api: Api) -> None:
    body = b"{}"
    response = api.call("accounts/list", raw=body,
                        headers={"X-Processing-Signature": signing.sign(body, SECRET).upper()})
    assert response.status_code == 200


def test_failed_auth_writes_nothing(api: Api) -> None:
    api.call("withdrawal/crypto", {"foreign_id": "w1", "currency": "BTC", "amount": "0.01",
                                   "address": "tb1qxyz"}, sign_with="wrong")
    assert api.balance("BTC") == Decimal(1)
    assert api.call("transactions/info", {"foreign_id": "w1"}, method="GET").status_code == 404


def test_transactions_info_is_get_only(api: Api) -> None:
    assert api.call("transactions/info", {"id": 1}, method="POST").status_code == 405


def test_unknown_endpoint_is_the_documented_403(api: Api) -> None:
    """coinspaid-api.md §1: "No key header" also means "the request URL is invalid"."""
    response = api.call("nothing/here")
    assert response.status_code == 403
    assert response.json() == {"error": "No key header", "code": "required_header_key"}


def test_currencies_list_shape(api: Api) -> None:
    listed = {c["currency"]: c for c in api.data("currencies/list")}
    assert {"BTC", "LTC", "BCH", "DOGE", "ETH", "USDTE", "USDTT", "USDC", "XRP", "TRX",
            "EUR", "USD", "GBP"} <= set(listed)
    # BNB Beacon Chain (BEP-2) stopped in December 2024: no longer offered.
    assert "BNB" not in listed
    assert listed["BTC"] == {"id": 1, "type": "crypto", "currency": "BTC",
                             "minimum_amount": "0.00010000", "deposit_fee_percent": "0.3",
                             "withdrawal_fee_percent": "0", "precision": 8}
    assert listed["EUR"]["type"] == "fiat"
    assert api.data("currencies/list", {"visible": False}) == []


def test_pairs_and_rates(api: Api) -> None:
    pairs = api.data("currencies/pairs", {"currency_from": "BTC", "currency_to": "EUR"})
    assert len(pairs) == 1
    pair = pairs[0]
    assert pair["currency_from"] == {"currency": "BTC", "type": "crypto",
                                     "min_amount": "0.00300000",
                                     "min_amount_deposit_with_exchange": "0.00010000"}
    assert pair["currency_to"] == {"currency": "EUR", "type": "fiat"}
    assert pair["rate_from"] == "1"
    assert Decimal("55000") < Decimal(pair["rate_to"]) < Decimal("65000")
    assert pair["rate_to"].count(".") == 1 and len(pair["rate_to"].split(".")[1]) == 8
    rates = api.data("currencies/rates", {"currency_from": "BTC", "currency_to": "EUR"})
    assert rates == pairs
    # A fiat source has no deposit-with-exchange minimum; fiat to fiat is no pair.
    eur = api.data("currencies/pairs", {"currency_from": "EUR"})
    assert eur and all("min_amount_deposit_with_exchange" not in p["currency_from"] for p in eur)
    assert all(p["currency_to"]["type"] == "crypto" for p in eur)
    assert {p["currency_from"]["currency"] for p in api.data("currencies/pairs")} > {"BTC", "EUR"}


def test_pairs_refuse_unknown_currencies(api: Api) -> None:
    assert api.errors("currencies/pairs", {"currency_from": "XXX", "currency_to": 5}) == {
        "currency_from": "The selected currency from is invalid.",
        "currency_to": "The selected currency to is invalid."}


def test_rates_move_with_the_sandbox_clock_and_are_reproducible(api: Api, app: Flask) -> None:
    def btc_eur() -> str:
        rows = api.data("currencies/rates", {"currency_from": "BTC", "currency_to": "EUR"})
        return str(rows[0]["rate_to"])

    first = btc_eur()
    advance(app, 30 * 60)
    later = btc_eur()
    assert later != first
    assert abs(Decimal(later) / Decimal(first) - 1) < Decimal("0.03")
    usdt = api.data("currencies/rates", {"currency_from": "USDTT", "currency_to": "USD"})
    assert usdt[0]["rate_to"] == "1.00000000"


def test_accounts_list_shows_every_currency_with_seed_balances(api: Api) -> None:
    rows = api.data("accounts/list")
    balances = {r["currency"]: r for r in rows}
    assert balances["BTC"] == {"currency": "BTC", "type": "crypto", "balance": "1.00000000"}
    assert balances["EUR"] == {"currency": "EUR", "type": "fiat", "balance": "10000.00000000"}
    assert balances["CHF"]["balance"] == "0.00000000"


def test_open_account_is_idempotent(api: Api, app: Flask) -> None:
    api.data("withdrawal/crypto", {"foreign_id": "w", "currency": "BTC", "amount": "0.1",
                                   "address": "tb1qabc"}, 201)
    app.extensions["sandbox.open_account"](11, KEY, SECRET)
    assert api.balance("BTC") < Decimal(1)  # not re-seeded


def test_open_account_updates_the_key(api: Api, app: Flask) -> None:
    app.extensions["sandbox.open_account"](11, "new-key", "new-secret")
    assert api.call("accounts/list").status_code == 403
    assert Api(api.base, "new-key", "new-secret").call("accounts/list").status_code == 200


def test_exchange_calculate_rate_limit(api: Api, app: Flask) -> None:
    payload = {"sender_currency": "BTC", "receiver_currency": "EUR", "sender_amount": "0.01"}
    for _ in range(30):
        assert api.call("exchange/calculate", payload).status_code == 200
    limited = api.call("exchange/calculate", payload)
    assert limited.status_code == 429
    assert limited.text == '{"errors": {"error code: 1015"}}'
    # Other endpoints are not limited; a minute later calculate works again.
    assert api.call("accounts/list").status_code == 200
    advance(app, 61)
    assert api.call("exchange/calculate", payload).status_code == 200


def test_responses_carry_no_secret(api: Api) -> None:
    for path in ("currencies/list", "accounts/list"):
        assert SECRET not in api.call(path).text
    assert jsontext.loads(api.call("accounts/list").content)["data"]
