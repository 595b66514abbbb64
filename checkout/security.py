"""Security headers on every response; framing only where a page allows it.

A view that may be framed sets `g.frame_ancestors` to the merchant's origins. Every form POST
needs a CSRF token (Flask-WTF's `CSRFProtect`); signed machine routes are exempt.
No inline scripts or styles anywhere, so the policy never needs 'unsafe-inline'.
"""

from __future__ import annotations

from flask import Flask, Response, g
from flask_wtf.csrf import CSRFProtect

BASE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)


def content_security_policy(frame_ancestors: list[str] | None) -> str:
    ancestors = " ".join(frame_ancestors) if frame_ancestors else "'none'"
    return f"{BASE_POLICY}; frame-ancestors {ancestors}"


def add_security_headers(response: Response) -> Response:
    frame_ancestors: list[str] | None = g.get("frame_ancestors")
    response.headers.setdefault("Content-Security-Policy", content_security_policy(frame_ancestors))
    if not frame_ancestors:
        # For browsers that predate frame-ancestors; it cannot list several origins.
        response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin-allow-popups")
    response.headers.setdefault(
        "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
    # Before any blueprint registers: the signed machine routes (merchant API, processor
    # callbacks, the sandbox) exempt themselves from `app.extensions["csrf"]` as they do.
    CSRFProtect(app)
