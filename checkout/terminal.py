"""Payment Terminal links: `?data=<base64 JSON>&signature=<hex HMAC-SHA512 of the JSON>`."""

from __future__ import annotations

import base64
import json
from typing import Any

from .signing import sign


def encode_link(payload: dict[str, Any], secret: str) -> dict[str, str]:
    """The query of a terminal link, as CoinsPaid documented it (standard base64, padded)."""
    text = json.dumps(payload, separators=(",", ":"))
    return {
        "data": base64.b64encode(text.encode()).decode("ascii"),
        "signature": sign(text.encode(), secret),
    }
