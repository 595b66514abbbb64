"""An address from `addresses/take` is one a payer can use and we can store, or an error."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kit.processor import ScriptedServer

from checkout.processor import ADDRESS_MAX, TAG_MAX, BadResponse, ProcessorClient


@pytest.fixture
def processor() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


def answer(address: str, tag: object = None) -> str:
    return json.dumps({"data": {"id": 1, "currency": "XRP", "convert_to": None,
                                "address": address, "tag": tag, "foreign_id": "u"}})


@pytest.mark.parametrize(("address", "tag"), [
    ("", None), ("   ", None), ("r" * (ADDRESS_MAX + 1), None),
    ("rAddress", "  "), ("rAddress", "1" * (TAG_MAX + 1)),
])
def test_an_address_we_could_not_store_or_show_is_a_bad_response(
        processor: ScriptedServer, address: str, tag: object) -> None:
    processor.script((201, answer(address, tag)))
    client = ProcessorClient(processor.url, "k", "s", timeout=2)
    with pytest.raises(BadResponse):
        client.addresses_take("XRP", "u")


@pytest.mark.parametrize("tag", [None, "", "100001", 100001, "9" * TAG_MAX])
def test_addresses_and_tags_within_bounds_are_taken(processor: ScriptedServer,
                                                    tag: object) -> None:
    processor.script((201, answer("r" * ADDRESS_MAX, tag)))
    taken = ProcessorClient(processor.url, "k", "s", timeout=2).addresses_take("XRP", "u")
    assert taken.address == "r" * ADDRESS_MAX
    assert taken.tag == (str(tag) if tag else None)  # "" is no tag, as the processor means it
