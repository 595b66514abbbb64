"""A processor callback that is plainly well formed and correctly signed, answered in front
of Flask.

Callbacks are a sale's news, and a sale's busiest write. Their work is the route's
(callbacks.keep: verify once, keep, apply and queue in one commit, then answer 200); what
Flask added around it was about a fifth of a callback's Python calls: the request context,
the hooks before and after the view, the limiter asking whether the callback is signed (a
signed callback is never limited), a response object for the same few bytes each time.

Taken here, with the same work, only what the route would take without a word: a POST to
the route's path, for a host the site serves, with no query, and a body of a stated length
within the route's bound, whose signature is good and which is a JSON object of text.
Everything else passes to the route, which answers it as it always did (a refusal is its
limiter's to count and its error handlers' to shape), with the body as it came and the
signature's answer left in the request (request_auth.py: verified once).

A failure here before the callback is kept (rolled back) is the route's to answer as its own:
it raises the same error (callbacks.FRONT_FAILED), so the processor gets the answer it got
before, and retries; a lost database is not waited out twice. A failure after the commit
(a log line, the context's end) cannot undo it: the callback is held, and answered 200.
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

PATH = "/callbacks/coinspaid"


class CallbackFront:
    """WSGI middleware: a signed callback is taken and answered here."""

    def __init__(self, app: Flask, inner: front.WSGIApp) -> None:
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
            kept: list[int] = []  # the callback's id once it is committed
            try:
                self.take(environ, kept)
            except Exception as exc:
                if not kept:
                    environ[callbacks.FRONT_FAILED] = exc  # the route answers it as its own
                else:
                    log.exception("callback front: callback %s is kept; answered 200", kept[0])
            if kept:
                start_response("200 OK", list(self.headers))
                return [self.body]
        return self.inner(environ, start_response)

    def take(self, environ: dict[str, Any], kept: list[int]) -> None:
        """Take the callback (its id into `kept` once committed), or leave it to the route."""
        length = declared_length(environ)
        if (length is None or environ.get("QUERY_STRING")
                or not front.served_host(environ, self.trusted_hosts)):
            return
        raw = read_body(environ, length)
        if raw is None:
            return
        with app_context(self.app):
            merchant = request_auth.authenticated(environ, raw)  # the route finds it
            if isinstance(merchant, auth.Refusal):
                return
            try:
                payload = auth.parse_object(raw)
            except NotText:
                return
            if payload is None:
                return
            callback = callbacks.keep(merchant, raw, payload)
            kept.append(callback.id)
            callbacks.log_kept(callback, merchant)


def app_context(app: Flask) -> AbstractContextManager[Any]:
    """The app's context, as a request of the route would have it: the one already pushed
    for this app if any (whose session is its owner's to end), else a new one."""
    if has_app_context() and cast(Any, current_app)._get_current_object() is app:
        return nullcontext()
    return app.app_context()


# Digits enough for the route's bound (256 KiB), and few enough for `int` to read at once.
LENGTH_DIGITS = 12


def declared_length(environ: dict[str, Any]) -> int | None:
    """The body's stated length when the route would read it as it is: a plain
    Content-Length within the route's bound (no chunks, nothing for a 413)."""
    stated = environ.get("CONTENT_LENGTH")
    if (not stated or len(stated) > LENGTH_DIGITS or not stated.isascii()
            or not stated.isdigit() or environ.get("HTTP_TRANSFER_ENCODING")):
        return None
    length = int(stated)
    return length if length <= callbacks.MAX_BODY else None


def read_body(environ: dict[str, Any], length: int) -> bytes | None:
    """The body's bytes; None if it ended short or its stream failed. Either way the route
    reads the body as it came: the bytes read here, then the stream's failure if it failed
    (raised again at the same point), then the rest of the stream."""
    stream = environ["wsgi.input"]
    parts: list[bytes] = []
    left = length
    failure: Exception | None = None
    try:
        while left > 0:
            part = stream.read(left)
            if not part:
                break
            parts.append(part)
            left -= len(part)
    except Exception as exc:  # the route's read meets it, and answers it as it did
        failure = exc
    raw = b"".join(parts)
    environ["wsgi.input"] = Replayed(raw, stream, failure)
    return raw if left == 0 and failure is None else None


class Replayed:
    """A request body's first bytes, read already, then the failure their stream met (once),
    then the rest of the stream."""

    def __init__(self, head: bytes, rest: Any, failure: Exception | None = None) -> None:
        self.head = io.BytesIO(head)
        self.rest = rest
        self.failure = failure

    def read(self, size: int = -1) -> bytes:
        data = self.head.read(size)
        if data and size >= 0:
            return data
        return data + self.go_on(lambda: self.rest.read(size))

    def readline(self, size: int = -1) -> bytes:
        data = self.head.readline(size)
        if data.endswith(b"\n") or (size >= 0 and len(data) == size):
            return data
        return data + self.go_on(
            lambda: self.rest.readline(size if size < 0 else size - len(data)))

    def go_on(self, read: Callable[[], bytes]) -> bytes:
        failure, self.failure = self.failure, None
        if failure is not None:
            raise failure
        return read()


def install(app: Flask) -> None:
    """In front of the app (beside the other fronts, inside any proxy fix)."""
    app.wsgi_app = CallbackFront(app, app.wsgi_app)  # type: ignore[method-assign]
