"""checkout.phpjson writes exactly what PHP's json_encode writes (default flags).

PHP_OUTPUTS was produced by PHP 8.2's `json_encode(json_decode($input, true))` for each value
(the check CoinsPaid's plugins run on a callback) and is kept here verbatim.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kit import php_shop
from kit.live import PATIENCE

from checkout.wire import phpjson

PHP_OUTPUTS: list[tuple[Any, bytes]] = [
    (None, b'null'),
    (True, b'true'),
    (False, b'false'),
    (0, b'0'),
    (-1, b'-1'),
    (42, b'42'),
    (9223372036854775807, b'9223372036854775807'),
    (-9223372036854775808, b'-9223372036854775808'),
    ('', b'""'),
    ('plain', b'"plain"'),
    ('wc/123', b'"wc\\/123"'),
    ('kunde-ü', b'"kunde-\\u00fc"'),
    ('a"b', b'"a\\"b"'),
    ('back\\slash', b'"back\\\\slash"'),
    ('</script>', b'"<\\/script>"'),
    ('tab\tnl\ncr\rbs\x08ff\x0c', b'"tab\\tnl\\ncr\\rbs\\bff\\f"'),
    ('\x00\x01\x1f', b'"\\u0000\\u0001\\u001f"'),
    ('del\x7f', b'"del\x7f"'),
    ('é€', b'"\\u00e9\\u20ac"'),
    ('ÿĀ', b'"\\u00ff\\u0100"'),
    ('\u2028\u2029', b'"\\u2028\\u2029"'),
    ('\ufeff', b'"\\ufeff"'),
    ('\uffff', b'"\\uffff"'),
    ('😀', b'"\\ud83d\\ude00"'),
    ('𐀀', b'"\\ud800\\udc00"'),
    ('\U0010ffff', b'"\\udbff\\udfff"'),
    ('emoji 🎉 and ü/ß "q" \\', b'"emoji \\ud83c\\udf89 and \\u00fc\\/\\u00df \\"q\\" \\\\"'),
    ('日本語', b'"\\u65e5\\u672c\\u8a9e"'),
    ('ümlaut-Ü', b'"\\u00fcmlaut-\\u00dc"'),
    ("'single'", b'"\'single\'"'),
    ('&<>', b'"&<>"'),
    ('http://shop.example/a/b?c=d&e=f', b'"http:\\/\\/shop.example\\/a\\/b?c=d&e=f"'),
    ('%2F', b'"%2F"'),
    ('\x80', b'"\\u0080"'),
    ('߿', b'"\\u07ff"'),
    ('ࠀ', b'"\\u0800"'),
    ([], b'[]'),
    ({}, b'[]'),
    ([1, 'a', None], b'[1,"a",null]'),
    ({'a': 1, 'b': [1, 2]}, b'{"a":1,"b":[1,2]}'),
    ({'b': 1, 'a': 2}, b'{"b":1,"a":2}'),
    ({'0': 'x', '1': 'y'}, b'["x","y"]'),
    ({'1': 'x', '0': 'y'}, b'{"1":"x","0":"y"}'),
    ({'0': 'x', '2': 'y'}, b'{"0":"x","2":"y"}'),
    ({'01': 'x'}, b'{"01":"x"}'),
    ({'a/b': 'ü'}, b'{"a\\/b":"\\u00fc"}'),
    ({'': 'empty key'}, b'{"":"empty key"}'),
    ({'k': {}}, b'{"k":[]}'),
    ({'k': {'0': {'0': []}}}, b'{"k":[[[]]]}'),
    ([[[]]], b'[[[]]]'),
    ({'nested': {'deep': ['a/b', {'c': 'd'}]}}, b'{"nested":{"deep":["a\\/b",{"c":"d"}]}}'),
    ({"id": 1, "foreign_id": "wc/123", "type": "deposit",
      "crypto_address": {"id": 1, "currency": "BTC", "address": "tb1q/x", "tag": None,
                         "foreign_id": "kunde-ü"},
      "fees": [], "error": "", "status": "not_confirmed"},
     b'{"id":1,"foreign_id":"wc\\/123","type":"deposit","crypto_address":{"id":1,'
     b'"currency":"BTC","address":"tb1q\\/x","tag":null,"foreign_id":"kunde-\\u00fc"},'
     b'"fees":[],"error":"","status":"not_confirmed"}'),
]


@pytest.mark.parametrize(("value", "php"), PHP_OUTPUTS, ids=[repr(v)[:40] for v, _ in PHP_OUTPUTS])
def test_dumps_writes_what_php_writes(value: Any, php: bytes) -> None:
    assert phpjson.dumps(value) == php


@pytest.mark.parametrize(("value", "php"), PHP_OUTPUTS, ids=[repr(v)[:40] for v, _ in PHP_OUTPUTS])
def test_the_test_shops_encoder_writes_what_php_writes(value: Any, php: bytes) -> None:
    assert php_shop.encode(value) == php


def test_tuples_are_lists_and_nesting_as_deep_as_php_allows_is_written() -> None:
    assert phpjson.dumps(("a", 1)) == b'["a",1]'
    deep: Any = []
    for _ in range(phpjson.MAX_DEPTH - 1):
        deep = [deep]
    assert phpjson.dumps(deep) == b"[" * 512 + b"]" * 512


@pytest.mark.parametrize(("value", "error"), [
    (0.5, TypeError), (1.0, TypeError), (Decimal("0.01"), TypeError), ({"a": [1.5]}, TypeError),
    ({1: "int key"}, TypeError), (object(), TypeError), (b"bytes", TypeError),
    (2**63, ValueError), (-(2**63) - 1, ValueError), ("\ud800", ValueError),
    ({"k": "lone \udfff"}, ValueError), ({"\ud800": 1}, ValueError),
])
def test_what_php_could_not_give_back_is_refused(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        phpjson.dumps(value)


def test_nesting_deeper_than_php_allows_is_refused() -> None:
    deep: Any = []
    for _ in range(phpjson.MAX_DEPTH):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper"):
        phpjson.dumps(deep)


# Every value PHP can hold and give back: text of any Unicode scalar (no lone surrogates),
# 64-bit integers, and arrays of them.
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _TEXT
    | st.sampled_from(["wc/123", "kunde-ü", 'a"b', "c\\d", "🎉", "\x7f", "\u2028"]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(_TEXT | st.sampled_from(["0", "1", "2"]), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_dumps_agrees_with_the_independent_encoder(value: Any) -> None:
    assert phpjson.dumps(value) == php_shop.encode(value)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_a_php_plugin_re_encodes_our_bytes_to_the_same_bytes(value: Any) -> None:
    """json_encode(json_decode($raw, true)) === $raw: the signature over $raw holds."""
    raw = phpjson.dumps(value)
    assert php_shop.reencode(raw) == raw
    assert phpjson.dumps(json.loads(raw)) == raw


@pytest.mark.skipif(shutil.which("php") is None, reason="PHP is not installed")
@settings(max_examples=10, deadline=None)
@given(st.lists(VALUES, min_size=20, max_size=40))
def test_real_php_agrees_when_it_is_installed(values: list[Any]) -> None:
    """Optional: where a PHP CLI exists, ask it directly (one process per batch)."""
    script = ('foreach (json_decode(stream_get_contents(STDIN), true) as $v) '
              '{ echo json_encode($v), "\\n"; }')
    given_text = json.dumps([php_shop.encode(v).decode() for v in values])
    # Feed PHP our own bytes, decoded by PHP: exactly the plugin's re-encoding.
    batch = "[" + ",".join(json.loads(given_text)) + "]"
    out = subprocess.run(["php", "-r", script], input=batch.encode(), capture_output=True,
                         check=True, timeout=PATIENCE).stdout
    assert out.split(b"\n")[:-1] == [phpjson.dumps(v) for v in values]
