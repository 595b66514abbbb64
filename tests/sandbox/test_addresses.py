"""addresses/take: realistic testnet addresses, tags for shared addresses, validation."""

from __future__ import annotations

import re

import pytest

from checkout.sandbox import addresses

from .conftest import Api

FORMATS = {
    "BTC": r"tb1q[02-9ac-hj-np-z]{38}",
    "LTC": r"tltc1q[02-9ac-hj-np-z]{38}",
    "BCH": r"[mn][1-9A-HJ-NP-Za-km-z]{33}",
    "DOGE": r"n[1-9A-HJ-NP-Za-km-z]{33}",
    "ETH": r"0x[0-9a-f]{40}",
    "USDTE": r"0x[0-9a-f]{40}",
    "USDC": r"0x[0-9a-f]{40}",
    "USDTT": r"T[1-9A-HJ-NP-Za-km-z]{33}",
    "TRX": r"T[1-9A-HJ-NP-Za-km-z]{33}",
    "XRP": r"r[1-9A-HJ-NP-Za-km-z]{24,34}",
}


@pytest.mark.parametrize(("currency", "pattern"), FORMATS.items())
def test_each_take_gives_a_new_realistic_address(api: Api, currency: str, pattern: str) -> None:
    first = api.data("addresses/take", {"currency": currency, "foreign_id": "user-1"}, 201)
    second = api.data("addresses/take", {"currency": currency, "foreign_id": "user-1"}, 201)
    assert list(first) == ["id", "currency", "convert_to", "address", "tag", "foreign_id"]
    assert first["currency"] == currency and first["foreign_id"] == "user-1"
    assert re.fullmatch(pattern, first["address"]), first["address"]
    if currency == "XRP":
        # One shared address; the tag tells payers apart and is a string.
        assert first["address"] == second["address"]
        assert isinstance(first["tag"], str) and first["tag"].isdigit()
        assert first["tag"] != second["tag"]
    else:
        assert first["tag"] is None
        assert first["address"] != second["address"]
    assert first["id"] != second["id"]


@pytest.mark.parametrize("currency", ["BTC", "LTC"])
def test_bech32_checksums_are_valid(api: Api, currency: str) -> None:
    address = api.data("addresses/take", {"currency": currency, "foreign_id": "c"}, 201)
    assert addresses.bech32_checksum_ok(address["address"])
    assert not addresses.bech32_checksum_ok(address["address"][:-1] + (
        "q" if address["address"][-1] != "q" else "p"))


@pytest.mark.parametrize("currency", ["BCH", "DOGE", "TRX"])
def test_base58check_checksums_are_valid(api: Api, currency: str) -> None:
    address = api.data("addresses/take", {"currency": currency, "foreign_id": "c"}, 201)
    assert addresses.base58check_ok(address["address"])


def test_bip173_vector() -> None:
    program = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
    assert addresses.segwit("bc", program) == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"


def test_convert_to_and_numeric_foreign_id(api: Api) -> None:
    taken = api.data("addresses/take", {"currency": "BTC", "foreign_id": 2048,
                                        "convert_to": "EUR", "end_user_reference": "u-9"}, 201)
    assert taken["convert_to"] == "EUR"
    assert taken["foreign_id"] == "2048"
    assert taken["end_user_reference"] == "u-9"


@pytest.mark.parametrize(("payload", "errors"), [
    ({}, {"foreign_id": "The foreign id field is required.",
          "currency": "The currency field is required."}),
    ({"currency": "BTC", "foreign_id": ""}, {"foreign_id": "The foreign id field is required."}),
    ({"currency": "BTC", "foreign_id": "x" * 256},
     {"foreign_id": "The foreign id may not be greater than 255 characters."}),
    ({"currency": "BTC", "foreign_id": ["a"]}, {"foreign_id": "The foreign id must be a string."}),
    ({"currency": "XXX", "foreign_id": "a"}, {"currency": "The selected currency is invalid."}),
    ({"currency": "btc", "foreign_id": "a"}, {"currency": "The selected currency is invalid."}),
    ({"currency": "EUR", "foreign_id": "a"}, {"currency": "The selected currency is invalid."}),
    ({"currency": 1, "foreign_id": "a"}, {"currency": "The selected currency is invalid."}),
    ({"currency": "BTC", "foreign_id": "a", "convert_to": "NOPE"},
     {"convert_to": "The selected convert to is invalid."}),
    ({"currency": "BTC", "foreign_id": "a", "convert_to": "BTC"},
     {"convert_to": "Exchange is unavailable for given currencies"}),
])
def test_take_validation(api: Api, payload: dict[str, object], errors: dict[str, str]) -> None:
    assert api.errors("addresses/take", payload) == errors
