"""The JSON types of the processor's callbacks, read off its documented examples, and a strict
checker of a body against them: what a shop's typed client (Go's encoding/json, Rust's serde)
needs to parse what we send.

The schema of a callback type is derived from the examples in coinspaid_doc (coinspaid-api.md
§3, verbatim), never written out by hand:

- every field an example of that type shows is required (at every depth), except the few that
  §3's "Common payload structure" marks as conditional (`DOCUMENTED_OPTIONAL`), and except a
  field another documented example of the same type leaves out (the cancelled withdrawal has
  no `currency_sent`);
- a field must have the JSON type the examples give it: the union over every documented
  callback (a `txid` is a string, or null in the cancelled withdrawal), widened only where
  the document shows another value elsewhere (`DOCUMENTED_ALSO`);
- where the examples contradict each other, the public typed clients decide
  (`CLIENT_TYPES`): `confirmations` is `3` in two examples and `"0"`/`"1"` in two others; Go's
  client declares it an `int` with the struct tag `json:"confirmations,string"` and Rust's
  `confirmations: String`, so only a string parses in both;
- a numeric text field (`NUMERIC_TEXT`) must be a plain decimal string, with exactly 8 places
  where every example of that type writes 8;
- each array item must match one of the item shapes the examples show at that place (a chain
  leg or an exchange leg); a type whose examples hold no item (an invoice's `"fees":[]`)
  takes the item shapes of the other documented callbacks.

`problems(body)` lists every mismatch as `path: what`; an empty list means the body parses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from kit import coinspaid_doc

EXAMPLES: dict[str, list[str]] = {
    "deposit": [coinspaid_doc.DEPOSIT_CALLBACK],
    "deposit_exchange": [coinspaid_doc.DEPOSIT_EXCHANGE_CALLBACK],
    "withdrawal": [coinspaid_doc.WITHDRAWAL_CALLBACK, coinspaid_doc.WITHDRAWAL_CANCELLED_CALLBACK],
    "exchange": [coinspaid_doc.EXCHANGE_CALLBACK],
    "invoice": [coinspaid_doc.INVOICE_CALLBACK],
}

# §3 "Common payload structure": `convert_to?`, `foreign_id?` in crypto_address, `riskscore?`
# ("only present on BTC/BCH/ETH deposits"), `end_user_reference` ("newer payloads").
DOCUMENTED_OPTIONAL = frozenset({
    "end_user_reference", "crypto_address.convert_to", "crypto_address.foreign_id",
    "transactions[].riskscore"})

# Values the document shows for these fields outside the callback examples: a tag is a string
# for XRP/BNB (§2.5 `"tag":"tag-123"`); an invoice's timestamps are null until a currency is
# chosen (§2.11 `"fixed_at":null,"release_at":null`); `riskscore` may be null (§3).
DOCUMENTED_ALSO: dict[str, frozenset[str]] = {
    "crypto_address.tag": frozenset({"string"}),
    "transactions[].tag": frozenset({"string"}),
    "fixed_at": frozenset({"null"}),
    "expires_at": frozenset({"null"}),
    "transactions[].riskscore": frozenset({"null"}),
}

# The documented examples disagree; the public typed clients (coinspaid-api.md §0 GO and RS)
# accept only this type.
CLIENT_TYPES: dict[str, frozenset[str]] = {"transactions[].confirmations": frozenset({"string"})}

# §1 "Number formats": amounts, the risk score and confirmations travel as decimal text.
NUMERIC_TEXT = frozenset({"amount", "amount_minus_fee", "remaining_amount", "amount_to",
                          "riskscore", "confirmations"})
DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
DECIMAL_8 = re.compile(r"[0-9]+\.[0-9]{8}")


def kind_of(value: Any) -> str:
    """The JSON type of a parsed value (an integer and a fraction are told apart, as a typed
    client tells `int64` from `decimal`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


@dataclass
class Shape:
    """What one place of a body must hold."""

    path: str
    kinds: frozenset[str] = frozenset()
    text: re.Pattern[str] | None = None  # for NUMERIC_TEXT strings
    fields: dict[str, Shape] = field(default_factory=dict)  # objects: every documented key
    required: frozenset[str] = frozenset()
    items: list[Shape] = field(default_factory=list)  # arrays: the documented item shapes


def _child(path: str, key: str) -> str:
    return key if not path else f"{path}.{key}"


def _values_at(docs: list[Any], path: str) -> list[Any]:
    """Every value the documents hold at `path` (`a.b`, `list[].c`)."""
    found = list(docs)
    for part in path.split(".") if path else []:
        name, is_list = (part[:-2], True) if part.endswith("[]") else (part, False)
        found = [doc[name] for doc in found if isinstance(doc, dict) and name in doc]
        if is_list:
            found = [item for value in found if isinstance(value, list) for item in value]
    return found


ALL_DOCS = [json.loads(text) for texts in EXAMPLES.values() for text in texts]


def _kinds(path: str, values: list[Any]) -> frozenset[str]:
    """The JSON types allowed at `path`: those of every documented callback, resolved."""
    seen = frozenset(kind_of(v) for v in _values_at(ALL_DOCS, path)) or frozenset(
        kind_of(v) for v in values)
    seen |= DOCUMENTED_ALSO.get(path, frozenset())
    if path in CLIENT_TYPES:
        seen = CLIENT_TYPES[path] | (seen & {"null"})
    if len(seen - {"null"}) > 1:
        raise AssertionError(f"{path}: the documents disagree ({sorted(seen)}); "
                             "say in CLIENT_TYPES which type typed clients parse")
    return seen


def _text_rule(key: str, values: list[Any]) -> re.Pattern[str] | None:
    if key not in NUMERIC_TEXT:
        return None
    texts = [v for v in values if isinstance(v, str)]
    if texts and all(DECIMAL_8.fullmatch(t) for t in texts):
        return DECIMAL_8
    return DECIMAL


def _item_groups(path: str, items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Items of one array, grouped by the keys they show (a chain leg, an exchange leg)."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for item in items:
        keys = frozenset(k for k in item if _child(path, k) not in DOCUMENTED_OPTIONAL)
        groups.setdefault(keys, []).append(item)
    return list(groups.values())


def _shape(path: str, values: list[Any]) -> Shape:
    shape = Shape(path, _kinds(path, values), _text_rule(path.rsplit(".", 1)[-1], values))
    objects = [v for v in values if isinstance(v, dict)]
    if objects:
        keys = list(dict.fromkeys(k for obj in objects for k in obj))
        shape.required = frozenset(
            k for k in keys if all(k in obj for obj in objects)
            and _child(path, k) not in DOCUMENTED_OPTIONAL)
        shape.fields = {k: _shape(_child(path, k), [o[k] for o in objects if k in o])
                        for k in keys}
    lists = [v for v in values if isinstance(v, list)]
    if lists or "array" in shape.kinds:
        items = [item for value in lists for item in value] or _values_at(
            ALL_DOCS, path + "[]")
        shape.items = [_shape(path + "[]", group) for group in
                       _item_groups(path + "[]", [i for i in items if isinstance(i, dict)])]
    return shape


SCHEMAS: dict[str, Shape] = {
    name: _shape("", [json.loads(text) for text in texts])
    for name, texts in EXAMPLES.items()}


def _check(value: Any, shape: Shape, where: str, out: list[str]) -> None:
    kind = kind_of(value)
    if kind not in shape.kinds:
        sends = "|".join(sorted(shape.kinds))
        out.append(f"{where}: {kind} {value!r}, the processor sends {sends}")
        return
    if kind == "string" and shape.text is not None and not shape.text.fullmatch(value):
        places = " with 8 places" if shape.text is DECIMAL_8 else ""
        out.append(f"{where}: {value!r} is not a decimal string{places}")
    if kind == "object":
        for key in sorted(shape.required - set(value)):
            out.append(f"{_child(where, key)}: missing")
        for key, item in value.items():
            if key in shape.fields:
                _check(item, shape.fields[key], _child(where, key), out)
    if kind == "array":
        for index, item in enumerate(value):
            _check_item(item, shape.items, f"{where}[{index}]", out)


def _check_item(item: Any, shapes: list[Shape], where: str, out: list[str]) -> None:
    """An item parses when it fits one documented item shape; else the closest one's faults."""
    best: list[str] | None = None
    for shape in shapes:
        found: list[str] = []
        _check(item, shape, where, found)
        if not found:
            return
        if best is None or len(found) < len(best):
            best = found
    out.extend(best if best is not None else [f"{where}: the processor sends no items here"])


def problems(body: Any, *, may_lack: frozenset[str] = frozenset()) -> list[str]:
    """Every way `body` (parsed, or raw bytes) differs from the processor's types for its
    `type`; `may_lack` names root fields a caller knowingly lets go missing."""
    if isinstance(body, bytes | str):
        body = json.loads(body)
    if not isinstance(body, dict):
        return [f"$: {kind_of(body)}, the processor sends an object"]
    schema = SCHEMAS.get(str(body.get("type")))
    if schema is None:
        return [f"type: {body.get('type')!r} has no documented example"]
    found: list[str] = []
    _check(body, schema, "", found)
    return [p for p in found if p.removesuffix(": missing") not in may_lack]
