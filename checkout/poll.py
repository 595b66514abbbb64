"""The status poll, answered in front of Flask.

Every open page asks for its status every few seconds, so in a sale this one route is most
of the traffic. Its answer is already made: the last change to the page stored the model
(snapshot.py). Here, before any Flask machinery runs, it costs a path match, the rate limit,
one SELECT by primary key, the moment-of-reading fields and a hash for the ETag.

Only two answers are made here: the stored model (200) and "unchanged" (304). Anything else
(no model stored yet, a malformed id, a host we do not serve, a limit reached, an error, any
other method) passes to the Flask view `pages.status`, which answers it as every route does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import bindparam, select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import SecurityError
from werkzeug.http import parse_etags, quote_etag
from werkzeug.wsgi import get_host

from . import clock, db, ratelimit, security, snapshot
from .models import Page, is_page_token

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PATH = re.compile(r"/p/([^/]+)/status\Z")
READ = select(Page.model_json).where(Page.id == bindparam("page_id"))


class StatusPoll:
    """WSGI middleware: the status poll's happy path; every other request goes to `inner`."""

    def __init__(self, app: Flask, inner: WSGIApp) -> None:
        self.app = app
        self.inner = inner
        self.engine = app.extensions[db.EXTENSION + ".engine"]
        self.trusted_hosts: list[str] | None = app.config.get("TRUSTED_HOSTS")
        self.limit = ratelimit.poll_limit(app)
        self.headers = [*security.security_headers(None, sandbox=bool(app.config["SANDBOX"])),
                        ("Cache-Control", "no-store")]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        page_id = self.page_of(environ)
        if page_id is None:
            return self.inner(environ, start_response)
        if self.limit is not None:
            environ[ratelimit.POLL_COUNTED] = True
            if not self.limit.hit(environ.get("REMOTE_ADDR") or "unknown"):
                environ[ratelimit.POLL_REFUSED] = True
                return self.inner(environ, start_response)
        try:
            with self.engine.connect() as connection:
                stored = connection.execute(READ, {"page_id": page_id}).scalar()
        except SQLAlchemyError:
            log.exception("status poll: the stored model could not be read")
            stored = None  # the Flask view tries again and answers as every route does
        if stored is None:
            return self.inner(environ, start_response)
        body = snapshot.finish(stored, self.now())
        tag = snapshot.etag(body)
        headers = [*self.headers, ("ETag", quote_etag(tag))]
        if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains(tag):
            start_response("304 Not Modified", headers)
            return []
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]

    def page_of(self, environ: dict[str, Any]) -> str | None:
        """The page id if this is a status poll the fast path may answer."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        match = PATH.match(environ.get("PATH_INFO", ""))
        if match is None or not is_page_token(match[1]):
            return None
        if self.trusted_hosts:
            try:
                get_host(environ, self.trusted_hosts)
            except SecurityError:
                return None  # Flask refuses it with 400, as any route
        return match[1]

    def now(self) -> datetime:
        # Tests replace the clock in the app's config; there is no app context here.
        replaced: Callable[[], datetime] | None = self.app.config.get("CLOCK")
        return replaced() if replaced is not None else clock.system_now()


def install(app: Flask) -> None:
    """Put the poll in front of the app's WSGI callable (inside any proxy fix)."""
    app.wsgi_app = StatusPoll(app, app.wsgi_app)  # type: ignore[method-assign]
