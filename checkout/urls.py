"""External URLs of this site: from CHECKOUT_PUBLIC_URL, else from the request."""

from __future__ import annotations

from flask import current_app, has_request_context, request


def public_base() -> str:
    """Base URL without trailing slash, e.g. http://127.0.0.1:8000."""
    configured: str | None = current_app.config.get("PUBLIC_URL")
    if configured:
        return configured.rstrip("/")
    if has_request_context():
        return request.host_url.rstrip("/")
    raise RuntimeError("CHECKOUT_PUBLIC_URL is needed outside a request")
