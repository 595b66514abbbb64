"""JSON exactly as PHP's `json_encode($value)` writes it (default flags): the processor's bytes.

CoinsPaid's own PHP plugins verify a callback as `hash_hmac('sha512',
json_encode(json_decode($raw, true)), $secret)`: they re-encode the body before checking
the signature. That holds only for bytes that are already what PHP writes, so every body
our processor stand-in sends, and every body the site signs itself, is written here:

- `/` as `\\/`; `"`, `\\`, `\\b`, `\\f`, `\\n`, `\\r`, `\\t` as short escapes; other control
  characters and every non-ASCII character as a lowercase `\\uXXXX` escape, characters
  beyond the BMP as a surrogate pair; DEL (0x7f) as it is, as PHP leaves it;
- no whitespace; dict keys in insertion order;
- a dict is a PHP array: `{}` is written `[]`, and a dict whose keys are "0", "1", ... in
  that order is written as a list, since that is what `json_decode($raw, true)` makes of
  them and what `json_encode` then writes.

Only int, str, bool, None, list, tuple and dict are written. Floats and Decimals raise
TypeError: PHP would print a float in its own shortest form, which is no way to write
money; callers pass amounts as the decimal strings the processor sends. Values PHP cannot
round-trip raise ValueError: an int outside PHP's 64-bit range (it would come back a
float), a string that is not valid Unicode (a lone surrogate), and nesting deeper than
PHP's default depth of 512.

Part of `checkout.wire`, the processor's wire format that the site and the embedded
sandbox share.
"""

from __future__ import annotations

import re
from typing import Any

# PHP's json_encode default depth: arrays nested deeper than this are an error.
MAX_DEPTH = 512
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n",
          "\r": "\\r", "\t": "\\t"}
_ESCAPED = re.compile('["\\\\/\x00-\x1f\u0080-\U0010ffff]')


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _string(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: PHP strings are UTF-8 bytes
        raise ValueError("string is not valid Unicode") from exc
    return '"' + _ESCAPED.sub(_escape, text) + '"'


def _is_list(value: dict[str, Any]) -> bool:
    return all(key == str(index) for index, key in enumerate(value))


def _write(value: Any, out: list[str], depth: int) -> None:
    # bool before int: True is an int in Python.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError("integer outside PHP's 64-bit range")
        out.append(str(int(value)))
    elif isinstance(value, list | tuple | dict):
        if depth >= MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH}")
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    raise TypeError(f"dict key must be str, not {type(key).__name__}")
            if _is_list(value):
                value = list(value.values())
            else:
                out.append("{")
                for index, (key, item) in enumerate(value.items()):
                    if index:
                        out.append(",")
                    out.append(_string(key))
                    out.append(":")
                    _write(item, out, depth + 1)
                out.append("}")
                return
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out, depth + 1)
        out.append("]")
    else:
        raise TypeError(f"not written as PHP JSON: {type(value).__name__} "
                        "(amounts travel as decimal strings)")


def dumps(value: Any) -> bytes:
    """The bytes of PHP `json_encode($value)`; see the module docstring for what is refused."""
    out: list[str] = []
    _write(value, out, 0)
    return "".join(out).encode("ascii")
