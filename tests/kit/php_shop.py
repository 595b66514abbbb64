"""A shop's callback check as CoinsPaid's PHP plugins do it, without PHP.

The WooCommerce and VirtueMart plugins verify a callback as
`hash_hmac('sha512', json_encode(json_decode($raw, true)), $secret)`. `reencode` is
`json_encode(json_decode($raw, true))`, written apart from `checkout.phpjson` on purpose
(Python's own encoder plus PHP's three differences), so the two can be checked against
each other and against the table of real PHP outputs in test_phpjson.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

# Python writes DEL as \u007f; PHP leaves it as it is. A `\\` pair is skipped as a whole,
# so an escaped backslash followed by "u007f" is left alone.
_DEL = re.compile(r"(\\\\)|\\u007f")


def _as_php_array(value: Any) -> Any:
    """What `json_decode($raw, true)` holds: objects are arrays, and an array whose keys are
    0, 1, ... in order is a list (so `{}` is `[]`)."""
    if isinstance(value, dict):
        items = {key: _as_php_array(item) for key, item in value.items()}
        if all(key == str(index) for index, key in enumerate(items)):
            return list(items.values())
        return items
    if isinstance(value, list):
        return [_as_php_array(item) for item in value]
    return value


def encode(value: Any) -> bytes:
    """PHP json_encode of a decoded value: ASCII-only, compact, and `/` escaped."""
    text = json.dumps(_as_php_array(value), ensure_ascii=True, separators=(",", ":"),
                      allow_nan=False)
    text = _DEL.sub(lambda m: m.group(1) or "\x7f", text)
    # `/` appears in JSON text only inside strings, and Python never escapes it.
    return text.replace("/", "\\/").encode("ascii")


def reencode(raw: bytes) -> bytes:
    """`json_encode(json_decode($raw, true))`; floats are not expected in callbacks."""
    return encode(json.loads(raw, parse_float=_no_float))


def _no_float(text: str) -> Any:
    raise AssertionError(f"a bare fractional number in a callback: {text}")


def plugin_accepts(raw: bytes, signature: str | None, secret: str) -> bool:
    """The PHP plugin's verdict on a callback."""
    expected = hmac.new(secret.encode(), reencode(raw), hashlib.sha512).hexdigest()
    return signature is not None and hmac.compare_digest(expected, signature)
