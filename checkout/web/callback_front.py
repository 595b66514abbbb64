"""A processor callback that is plainly well formed and correctly signed, answered in front
of Flask.

Callbacks are a sale's news, and a sale's busiest write. Their work is the route's
(callbacks.take: verify once, keep, apply and queue in one commit, then answer 200); what
Flask added around it was about a third of a callback's Python calls: the request context,
the hooks before and after the view, the limiter asking whether the callback is signed (a
signed callback is never limited), a response object for the same few bytes each time.

Taken here, with the same work, only what the route would take without a word: a POST to
the route's path, for a host the site serves, with no query, and a body of a stated length
within the route's bound, whose signature is good and which is a JSON object of text.
Everything else passes to the route, which answers it as it always did: a refusal is its
limiter's to count and its error handlers' to shape. So does a callback whose taking fails
here (rolled back, so the route takes it afresh), with its body put back for the route to
read and its signature's answer left in the request (request_auth.py: verified once).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, cast

from flask import Flask, current_app, has_app_context

from .. import auth
from ..text import NotText
from . import callbacks, front, request_auth, security

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PATH = "/callbacks/coinspaid"


class CallbackFront:
    """WSGI middleware: a signed callback is taken and answered here."""

    def __init__(self, app: Flask, inner: WSGIApp) -> None:
        self.app = app
        self.inner = inner
        self.trusted_hosts: list[str] | None = app.config.get("TRUSTED_HOSTS")
        # The route's answer to the byte: jsonify's body, then the site's headers as its
        # after_request hook adds them (no limiter headers: they are off).
        with app.app_context():
            self.body: bytes = cast(Any, app.json.response(status="ok")).get_data()
        self.headers = [("Content-Type", "application/json"),
                        ("Content-Length", str(len(self.body))),
                        *security.security_headers(None, sandbox=bool(app.config["SANDBOX"]))]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == PATH:
            try:
                if self.take(environ):
                    start_response("200 OK", list(self.headers))
                    return [self.body]
            except Exception:
                # The route meets it again, rolled back, and answers as it always did.
                log.exception("callback front: passing a callback to Flask")
        return self.inner(environ, start_response)

    def take(self, environ: dict[str, Any]) -> bool:
        """Whether the callback was taken (committed); False leaves it to the route."""
        length = declared_length(environ)
        if (length is None or environ.get("QUERY_STRING")
                or not front.served_host(environ, self.trusted_hosts)):
            return False
        raw = read_body(environ, length)
        if raw is None:
            return False
        key = environ.get("HTTP_X_PROCESSING_KEY")
        signature = environ.get("HTTP_X_PROCESSING_SIGNATURE")
        with app_context(self.app):
            merchant = auth.authenticate(raw, key, signature)
            environ[request_auth.AUTHENTICATED] = ((raw, key, signature), merchant)
            if isinstance(merchant, auth.Refusal):
                return False
            try:
                payload = auth.parse_object(raw)
            except NotText:
                return False
            if payload is None:
                return False
            callbacks.take(merchant, raw, payload)
        return True


def app_context(app: Flask) -> AbstractContextManager[Any]:
    """The app's context, as a request of the route would have it: the one already pushed
    for this app if any (whose session is its owner's to end), else a new one."""
    if has_app_context() and cast(Any, current_app)._get_current_object() is app:
        return nullcontext()
    return app.app_context()


def declared_length(environ: dict[str, Any]) -> int | None:
    """The body's stated length when the route would read it as it is: a plain
    Content-Length within the route's bound (no chunks, nothing for a 413)."""
    stated = environ.get("CONTENT_LENGTH")
    if not stated or not stated.isdigit() or environ.get("HTTP_TRANSFER_ENCODING"):
        return None
    length = int(stated)
    return length if length <= callbacks.MAX_BODY else None


def read_body(environ: dict[str, Any], length: int) -> bytes | None:
    """The body's bytes, put back for the route to read as well; None if it ended short."""
    stream = environ["wsgi.input"]
    parts = []
    left = length
    while left > 0:
        part = stream.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    raw = b"".join(parts)
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw if left == 0 else None


def install(app: Flask) -> None:
    """In front of the app (beside the other fronts, inside any proxy fix)."""
    app.wsgi_app = CallbackFront(app, app.wsgi_app)  # type: ignore[method-assign]
