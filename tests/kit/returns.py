"""Return URLs as a shop checks them (the signed outcome), and return URLs with a bracket in
the host."""

from __future__ import annotations

from urllib.parse import urlsplit


def shop_checks(url: str, secret: str) -> dict[str, str] | None:
    """A shop's own check, written from the README (hmac + hashlib, not checkout.signing)."""
    import hashlib
    import hmac
    from urllib.parse import parse_qs, quote

    params = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    message = (f"foreign_id={quote(params.get('foreign_id', ''), safe='')}"
               f"&status={quote(params.get('status', ''), safe='')}")
    expected = hmac.new(secret.encode(), message.encode(), hashlib.sha512).hexdigest()
    if not hmac.compare_digest(expected, params.get("signature", "")):
        return None
    return params


BRACKETED = ["https://shop.example]/", "https://[shop.example]/", "https://shop.example[/",
             "https://[shop.example/", "http://[::1]:80]/", "https://]shop.example/"]
