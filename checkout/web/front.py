"""The customer's hottest requests, answered in front of Flask: the status poll, a view of
a page whose current state was rendered before, and the page's QR image.

Every open page asks for its status every few seconds, so in a sale the poll is most of the
traffic; its answer is already made, stored by the last change to the page (snapshot.py).
A page viewed again (a reload, the no-script refresh, another tab) was rendered already
(pagecache.py). Before any Flask machinery runs, each costs a path match, its rate limit,
one SELECT by primary key and the moment-of-reading fields: the seconds left, an ETag.
The QR image is drawn from the stored model's payment text, once per process for each
text, format and language (qrimages.py).

Only answers that are already made leave here: the stored model (200), "unchanged" (304),
a kept rendering (200), or one another process rendered and stored (pagestore.py: read in
the same SELECT as the page's state when this process keeps none of that state), an image
of the stored model (200, or 304). Anything else (no model stored yet, a page not rendered
in this language and address yet, a malformed id, a host we do not serve, a limit reached,
another method, a database error) passes to the Flask views, which answer it as every route
does; they share their checks with this module, so both answer alike.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from babel import Locale
from flask import Flask
from sqlalchemy import bindparam, select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import SecurityError
from werkzeug.http import parse_etags, quote_etag
from werkzeug.wrappers import Request
from werkzeug.wsgi import get_host

from .. import clock, db, i18n, memo
from ..models import Page, is_page_token
from ..pagekinds import present, snapshot
from . import pagecache, pagerows, pagestore, qrimages, ratelimit, security

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
STATUS_PATH = re.compile(r"/p/([^/]+)/status\Z")
PAGE_PATH = re.compile(r"/p/([^/]+)\Z")
QR_PATH = re.compile(r"/p/([^/]+)/qr\.(svg|png)\Z")
READ_MODEL = select(Page.model_json).where(Page.id == bindparam("page_id"))


class Front:
    """WSGI middleware: the two hot routes' ready answers; every other request to `inner`."""

    def __init__(self, app: Flask, inner: WSGIApp) -> None:
        self.app = app
        self.inner = inner
        self.engine = app.extensions[db.EXTENSION + ".engine"]
        self.trusted_hosts: list[str] | None = app.config.get("TRUSTED_HOSTS")
        self.sandbox = bool(app.config["SANDBOX"])
        self.poll_limit = ratelimit.front_limit(app, "RATELIMIT_STATUS", "poll")
        self.page_limit = ratelimit.front_limit(app, "RATELIMIT_PAGES", "page")
        # Counted apart from page views, as Flask's limiter counts each view under its own name.
        self.qr_limit = ratelimit.front_limit(app, "RATELIMIT_PAGES", "qr")
        self.poll_headers = [*security.security_headers(None, sandbox=self.sandbox),
                             ("Cache-Control", "no-store")]
        self.qr_headers = security.security_headers(None, sandbox=self.sandbox)
        pagestore.edition(app)  # read the site's files once now, not in a customer's view
        self.rows = pagerows.rows(app)
        self.direct = {statement: db.DirectRead(self.engine, statement) for statement in (
            READ_MODEL, pagecache.STATE, pagestore.STATE_AND_STORED, qrimages.READ)}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        answer: Iterable[bytes] | None = None
        mend_query(environ)
        try:
            if environ.get("REQUEST_METHOD") in ("GET", "HEAD") and self.served_host(environ):
                path = environ.get("PATH_INFO", "")
                if (found := STATUS_PATH.match(path)) and is_page_token(found[1]):
                    answer = self.poll(found[1], environ, start_response)
                elif (found := PAGE_PATH.match(path)) and is_page_token(found[1]):
                    answer = self.page(found[1], environ, start_response)
                elif (found := QR_PATH.match(path)) and is_page_token(found[1]):
                    answer = self.qr(found[1], found[2], environ, start_response)
        except Exception:
            # Whatever went wrong (the limits' storage, a query no one can decode, a stored
            # model), Flask meets it again and answers as for every route: logged, with
            # the headers, counted by its own limiter.
            log.exception("front: passing %s to Flask", environ.get("PATH_INFO"))
            environ.pop(ratelimit.FRONT_COUNTED, None)
            environ.pop(ratelimit.FRONT_REFUSED, None)
            environ.pop(pagecache.READ_STATE, None)
            answer = None
        return self.inner(environ, start_response) if answer is None else answer

    # ------------------------------------------------------------ the status poll

    def poll(self, page_id: str, environ: dict[str, Any],
             start_response: Callable[..., Any]) -> Iterable[bytes] | None:
        if self.poll_limit is not None and not self.poll_limit.count(environ):
            return None
        if self.rows is None:
            stored = self.read(READ_MODEL, page_id)
        else:  # the row the QR reads too, kept for both
            found = self.kept_row(page_id)
            stored = None if found is None else found.model_json
        if stored is None:
            return None
        body, tag = snapshot.answer(stored, self.now())
        headers = [*self.poll_headers, ("ETag", quote_etag(tag))]
        if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains(tag):
            start_response("304 Not Modified", headers)
            return []
        return send(environ, start_response, body, "application/json", headers)

    # ------------------------------------------------------------ a page viewed again

    def page(self, page_id: str, environ: dict[str, Any],
             start_response: Callable[..., Any]) -> Iterable[bytes] | None:
        if self.page_limit is not None and not self.page_limit.count(environ):
            return None
        request = Request(environ)
        stamp = snapshot.unix(self.now())
        found = None
        if self.rows is not None:  # this process's kept state, and its rendering of it
            state = self.rows.kept((page_id, pagerows.STATE))
            variant = None if state is None else self.variant_of(request, state)
            if variant is not None:
                found = pagecache.kept(self.app, state, page_id, variant, stamp)
        if found is None:
            found = self.page_read(page_id, request, environ, stamp)
        if found is None:
            return None
        body, encoding = found.encoded(stamp, pagecache.takes_gzip(request))
        headers = [*security.security_headers(found.frame_ancestors, sandbox=self.sandbox),
                   ("Cache-Control", "no-store"), *encoding]
        return send(environ, start_response, body, "text/html; charset=utf-8", headers)

    def page_read(self, page_id: str, request: Request, environ: dict[str, Any],
                  stamp: int) -> pagecache.Rendered | None:
        """The page's rendering for a state read from the database now: kept by this
        process, or stored by another (read in the same SELECT); None: Flask renders."""
        shared = pagestore.variant(self.app, request)
        with (nullcontext(None) if self.rows is None
              else self.rows.reading((page_id, pagerows.STATE))) as keep:
            if shared is None:
                state = self.read(pagecache.STATE, page_id, row=True)
            else:  # and the stored rendering, unless this process keeps that one already
                state = self.read(pagestore.STATE_AND_STORED, page_id, row=True,
                                  variant=shared,
                                  kept=pagestore.kept_digest(self.app, page_id, shared))
            if state is None:
                return None
            if keep is not None:  # the state alone, without the stored rendering's bytes
                keep(pagecache.state_only(state))
        # A view that passes to Flask renders from this state, read a moment ago: not again.
        environ[pagecache.READ_STATE] = (page_id, state)
        variant = self.variant_of(request, state)
        if variant is None:
            return None
        found = pagecache.kept(self.app, state, page_id, variant, stamp)
        if found is None and shared is not None:
            found = pagestore.adopt(self.app, state, page_id, variant, shared, stamp)
        return found

    def variant_of(self, request: Request, state: Any) -> tuple[str, str] | None:
        locale = i18n.choose(request, self.app.config["LANGUAGES"], lambda: state.language)
        return pagecache.variant(locale, request)

    # ------------------------------------------------------------ the QR image

    def qr(self, page_id: str, fmt: str, environ: dict[str, Any],
           start_response: Callable[..., Any]) -> Iterable[bytes] | None:
        """As the Flask view (customer.qr_image) answers: the same headers in its order."""
        if self.qr_limit is not None and not self.qr_limit.count(environ):
            return None
        found = (self.read(qrimages.READ, page_id, row=True) if self.rows is None
                 else self.kept_row(page_id))
        if found is None or not found.model_json:
            return None
        locale = qr_locale(environ.get("QUERY_STRING", ""), environ.get("HTTP_ACCEPT_LANGUAGE"),
                           found.language, tuple(self.app.config["LANGUAGES"]))
        image = qrimages.image(self.app, present.qr_text_for(json.loads(found.model_json)),
                               fmt, locale)
        headers = [("ETag", quote_etag(image.etag)), ("Cache-Control", "no-store")]
        if fmt == "svg":
            headers.append(("Vary", "Accept-Language"))
        headers += self.qr_headers
        if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains(image.etag):
            start_response("304 NOT MODIFIED", headers)  # spelt as werkzeug spells it
            return []
        start_response("200 OK", [("Content-Type", image.content_type),
                                  ("Content-Length", str(len(image.body))), *headers])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [image.body]

    # ------------------------------------------------------------ shared

    def served_host(self, environ: dict[str, Any]) -> bool:
        return served_host(environ, self.trusted_hosts)

    def kept_row(self, page_id: str) -> Any:
        """The page's model and its merchant's language, kept in this process while no
        notice or the change log says the page changed (pagerows.py)."""
        assert self.rows is not None
        return self.rows.read(page_id, lambda: self.read(qrimages.READ, page_id, row=True))

    def read(self, statement: Any, page_id: str, *, row: bool = False, **params: str) -> Any:
        asked = {"page_id": page_id, **params}
        try:
            found = self.direct[statement].read(asked)
        except SQLAlchemyError:
            log.exception("front: a page's row could not be read")
            return None  # the Flask view tries again and answers as every route does
        return found if row or found is None else found[0]

    def now(self) -> datetime:
        # Tests replace the clock in the app's config; there is no app context here.
        replaced: Callable[[], datetime] | None = self.app.config.get("CLOCK")
        return replaced() if replaced is not None else clock.system_now()


# A query and Accept-Language longer than this together are rare and not kept.
@memo.kept_when_short(512, 4096)
def qr_locale(query: str, accept: str | None, merchant: str | None,
              languages: tuple[str, ...]) -> str:
    """The language the Flask view answers in (i18n.choose), named as Flask-Babel's
    get_locale() prints it."""
    asking = Request({"QUERY_STRING": query,
                      **({} if accept is None else {"HTTP_ACCEPT_LANGUAGE": accept})})
    return str(Locale.parse(i18n.choose(asking, list(languages), lambda: merchant)))


def served_host(environ: dict[str, Any], trusted_hosts: list[str] | None) -> bool:
    """Whether the request names a host the site serves; Flask refuses any other with 400,
    as for every route, so the fronts pass those on."""
    if not trusted_hosts:
        return True
    try:
        get_host(environ, trusted_hosts)
    except SecurityError:
        return False
    return True


def mend_query(environ: dict[str, Any]) -> None:
    """A query string that is not UTF-8 (raw bytes a client sent) fails werkzeug's strict
    decoding of `request.args` with a 500 wherever it is read, the language choice and the
    error page included. Its bytes beyond ASCII are percent-escaped instead: the same query
    to any decoder, and readable (an unknown `lang` is ignored)."""
    query: str = environ.get("QUERY_STRING", "")
    if query.isascii():
        return
    raw = query.encode("latin-1", "replace")  # WSGI hands bytes over as latin-1 text
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        environ["QUERY_STRING"] = "".join(
            chr(byte) if byte < 0x80 else f"%{byte:02X}" for byte in raw)


def send(environ: dict[str, Any], start_response: Callable[..., Any], body: bytes,
         content_type: str, headers: list[tuple[str, str]]) -> Iterable[bytes]:
    start_response("200 OK", [*headers, ("Content-Type", content_type),
                              ("Content-Length", str(len(body)))])
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]


def install(app: Flask) -> None:
    """Put the front in front of the app's WSGI callable (inside any proxy fix)."""
    app.wsgi_app = Front(app, app.wsgi_app)  # type: ignore[method-assign]
