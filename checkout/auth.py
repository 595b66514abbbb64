"""CoinsPaid-style request authentication, shared by the merchant API and the callback endpoint.

A request is the merchant's when its `X-Processing-Signature` is the HMAC-SHA512 of the exact
body bytes under the secret of the merchant named by `X-Processing-Key`. Refusals have the
processor's `{"error", "code"}` shape, so a shop's client reads ours as it reads CoinsPaid's.
The check itself is here, on bytes and header values; reading them from a request, once per
request, is web/request_auth.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import merchants, money
from .models import Merchant
from .text import NotText
from .wire import signing


@dataclass(frozen=True)
class Refusal:
    """A CoinsPaid-shaped error answer."""

    status: int
    error: str
    code: str


NO_KEY = Refusal(403, "No key header", "required_header_key")
BAD_KEY = Refusal(403, "Bad key header", "bad_header_key")
NO_SIGNATURE = Refusal(403, "No signature header", "required_header_signature")
BAD_SIGNATURE = Refusal(403, "Bad signature header", "bad_header_signature")
BAD_CONTENT = Refusal(400, "Bad content format", "bad_content_format")


def authenticate(raw: bytes, key: str | None, signature: str | None) -> Merchant | Refusal:
    """The merchant whose secret signed these exact bytes, or why not."""
    if not key:
        return NO_KEY
    merchant = merchants.by_key(key)
    if merchant is None:
        return BAD_KEY
    if not signature:
        return NO_SIGNATURE
    if not signing.verify(raw, merchant.api_secret, signature):
        return BAD_SIGNATURE
    return merchant


def parse_object(raw: bytes) -> dict[str, Any] | None:
    """The JSON object of a body, amounts as Decimal; None when it is not one. NotText when
    it is one with a string that is no text: the caller names the field."""
    try:
        payload = money.loads(raw)
    except NotText:
        raise
    except ValueError:  # money.loads: not JSON, NaN, or nested absurdly deep
        return None
    return payload if isinstance(payload, dict) else None


def parse_params(raw: bytes) -> dict[str, Any] | None:
    """Request parameters: a JSON object; `{}`, `[]` and `null` all mean none (PHP clients send
    `json_encode([])`). None when the body is anything else; NotText as `parse_object`."""
    try:
        payload = money.loads(raw)
    except NotText:
        raise
    except ValueError:
        return None
    if payload is None or payload == []:
        return {}
    return payload if isinstance(payload, dict) else None
