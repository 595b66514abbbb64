"""External URLs of this site: from CHECKOUT_PUBLIC_URL, else from the request in flight."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app

# In app.extensions: the web layer's reader of the request in flight's base URL (None outside
# a request). Asked for here, so that the modules below the web layer never read a request.
REQUEST_BASE = "checkout.request_base"


def public_base() -> str:
    """Base URL without trailing slash, e.g. http://127.0.0.1:8000."""
    configured: str | None = current_app.config.get("PUBLIC_URL")
    if configured:
        return configured.rstrip("/")
    from_request: Callable[[], str | None] | None = current_app.extensions.get(REQUEST_BASE)
    base = from_request() if from_request is not None else None
    if base is not None:
        return base
    raise RuntimeError("CHECKOUT_PUBLIC_URL is needed outside a request")
