"""Security headers on every response; framing only where a page allows it; deployment
behind proxies (trusted hops, trusted hosts).

A view that may be framed sets `g.frame_ancestors` to the merchant's origins. Every form POST
needs a CSRF token (Flask-WTF's `CSRFProtect`); signed machine routes are exempt.
No inline scripts or styles anywhere, so the policy never needs 'unsafe-inline'.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import (
    Flask,
    Request,
    Response,
    current_app,
    g,
    has_request_context,
    make_response,
    request,
)
from flask.sessions import SessionInterface, SessionMixin
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from .. import urls

# Outside sandbox mode the site is served over HTTPS (by itself or its proxy): browsers then
# never try plain HTTP again for a year, on subdomains too. Browsers ignore it over HTTP.
HSTS = "max-age=31536000; includeSubDomains"

BASE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)


def content_security_policy(frame_ancestors: list[str] | None) -> str:
    ancestors = " ".join(frame_ancestors) if frame_ancestors else "'none'"
    return f"{BASE_POLICY}; frame-ancestors {ancestors}"


def security_headers(frame_ancestors: list[str] | None, *, sandbox: bool) -> list[tuple[str, str]]:
    """What every answer carries; `frame_ancestors`: the origins that may frame it."""
    headers = [("Content-Security-Policy", content_security_policy(frame_ancestors))]
    if not frame_ancestors:
        # For browsers that predate frame-ancestors; it cannot list several origins.
        headers.append(("X-Frame-Options", "DENY"))
    headers += [
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin-allow-popups"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ]
    if not sandbox:
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


def add_security_headers(response: Response) -> Response:
    for name, value in security_headers(g.get("frame_ancestors"),
                                        sandbox=current_app.config["SANDBOX"]):
        response.headers.setdefault(name, value)
    return response


def no_store_view(view: Callable[[], ResponseReturnValue]) -> Callable[[], Response]:
    """Whatever the view answers is never stored by a browser or proxy: for answers that
    carry payment data or a page id in a header (the terminal link's 303 `Location`)."""

    @functools.wraps(view)
    def answer() -> Response:
        response = make_response(view())
        response.headers["Cache-Control"] = "no-store"
        return response

    return answer


def trust_proxies(app: Flask, hops: int) -> None:
    """Read the client address, scheme, host and port from the last `hops` proxies'
    X-Forwarded-* entries; anything a client put before them is ignored. 0: never."""
    if hops > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)


class NoSessions(SessionInterface):
    """The site keeps no cookie session: customer pages are cookieless (they must work in a
    shop's third-party iframe, and their forms carry page-bound tokens), machines sign their
    requests. Nothing reads or sets a cookie; writing to `session` fails loudly."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        return self.make_null_session(app)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None


def request_base() -> str | None:
    """This request's own base URL (as the trusted proxies tell it): the site's public address
    when CHECKOUT_PUBLIC_URL does not say it (urls.public_base)."""
    return request.host_url.rstrip("/") if has_request_context() else None


def init_app(app: Flask) -> None:
    app.extensions[urls.REQUEST_BASE] = request_base
    app.session_interface = NoSessions()
    app.after_request(add_security_headers)
    # Before any blueprint registers: the signed machine routes (merchant API, processor
    # callbacks, the sandbox) exempt themselves from `app.extensions["csrf"]` as they do.
    CSRFProtect(app)
