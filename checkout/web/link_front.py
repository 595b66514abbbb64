"""A terminal link clicked again, answered in front of Flask.

A customer who clicks the shop's "pay" link again (the back button, another tab, the shop's
own retry) is sent to the page the first click opened. That needs the link verified (one
HMAC with the merchant's secret, kept in this process: merchants.py) and its page found:
one SELECT by merchant and link digest, which also reads the merchants' version, so the
kept secret is known to be current. No commit, no processor call. A link this process
verified before, to the byte (its data and signature), at the merchants' version just read,
is not decoded or verified again: what it verifies against (the merchant's secret, return
hosts and settings) has not changed since, and the currencies it names are the code's.

`find` is shared with the Flask route (customer.open_terminal_link), which makes the same
SELECT and the same decision; `LinkFront` answers before Flask when the decision is "send
the customer to the page" and the merchant is kept at the version read. Everything else
(a bad or unknown link, a `lang` or any other parameter, a merchant not kept yet, a page
that is final and lets its link go, a limit reached, a database error) passes to Flask,
which answers it as it always did.

A link clicked again and again reads nothing while its row is kept in the process
(pagerows.py; on PostgreSQL the SELECT is a round trip to a server): until a notice names
its page, any merchant changes (a notice of its own, and a new merchants' version), or
`pagerows.MAX_AGE` passes. The Flask route reads it every time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask
from sqlalchemy import and_, bindparam, select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.utils import redirect

from .. import db, merchants, terminal
from ..models import MerchantsVersion, Page
from ..pagekinds import deposit, present
from . import front, pagerows, ratelimit, security
from .kept import Kept

log = logging.getLogger(__name__)

LINK_PATHS = ("/terminal", "/")
LINK_ARGS = frozenset({"data", "signature"})
# What the front's SELECT found for a link it passed on (a first click, mostly): the Flask
# route reads it from the WSGI environ instead of making the same SELECT again.
FOUND = "checkout.link_found"

# The merchants' version and the link's page, in one statement: one row whether the page
# exists or not (a first click learns the version too); no row only while no merchant was
# ever stored (no version row yet).
PAGE_OF_LINK = (select(MerchantsVersion.version, Page.id, Page.status, Page.reason,
                       Page.amount)
                .select_from(MerchantsVersion)
                .outerjoin(Page, and_(Page.merchant_id == bindparam("client_id"),
                                      Page.link_digest == bindparam("digest")))
                .where(MerchantsVersion.id == 1))


# Links verified in this process, to what they were verified at: by a digest of their data
# and signature, so that each takes a few dozen bytes however long the link (up to 8 KiB).
VERIFIED_KEPT = 4096


@dataclass(frozen=True)
class Verified:
    """A link verified at merchants' `version`, and the page key its data names."""

    client_id: int
    digest: str
    version: int


@dataclass(frozen=True)
class Found:
    """What the link's one SELECT told: its page, if it has one, whether a click goes
    there, and the merchant when this process keeps it at the version just read."""

    page_id: str | None
    reopens: bool
    version: int | None
    kept: merchants.Snapshot | None


def reopens(status: str, reason: str | None, amount: str | None) -> bool:
    """The page a link opened is where a click goes while it is open, and once it is paid
    in full (a fresh "waiting" page would invite a second payment); a page otherwise final
    lets its link go (services/opening.py opens a fresh one)."""
    final = deposit.is_final(status, reason)
    return not final or (amount is not None and status == deposit.CONFIRMED)


def find(execute: Callable[..., Any], cache: merchants.MerchantCache,
         read: terminal.ReadLink) -> Found:
    """The one SELECT of a link, through `execute` (a session's or a connection's)."""
    row = execute(PAGE_OF_LINK, params_of(read.client_id, read.digest)).first()
    return found_in(row, cache, read.client_id)


def params_of(client_id: int, digest: str) -> dict[str, Any]:
    return {"client_id": client_id, "digest": digest}


def found_in(row: Any, cache: merchants.MerchantCache, client_id: int) -> Found:
    """What the link's row tells (`PAGE_OF_LINK`; None: no merchant stored yet)."""
    if row is None:
        return Found(None, False, None, None)
    version = int(row.version)
    return Found(row.id, row.id is not None and reopens(row.status, row.reason, row.amount),
                 version, cache.by_id(version, client_id))


class LinkFront:
    """WSGI middleware: a verified link whose page is open gets its 303 here."""

    def __init__(self, app: Flask, inner: front.WSGIApp) -> None:
        self.app = app
        self.inner = inner
        self.engine = app.extensions[db.EXTENSION + ".engine"]
        self.direct = db.DirectRead(self.engine, PAGE_OF_LINK)  # as front.py reads
        self.verified: Kept[bytes, Verified] = Kept(VERIFIED_KEPT)
        # The link's row is kept with the pages' rows (pagerows.py), under the page it names,
        # so that a notice for that page (or for any merchant) forgets it; found from the
        # link by this map, whose entry names a page, never a row.
        self.rows = pagerows.rows(app)
        self.pages: Kept[tuple[int, str], str] = Kept(VERIFIED_KEPT)
        self.trusted_hosts: list[str] | None = app.config.get("TRUSTED_HOSTS")
        self.limit = ratelimit.front_limit(app, "RATELIMIT_LINKS", "link")
        # After Location, as the route's: its no_store_view, then the after_request hook.
        self.headers = [("Cache-Control", "no-store"),
                        *security.security_headers(None, sandbox=bool(app.config["SANDBOX"]))]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        answer: Iterable[bytes] | None = None
        if (environ.get("REQUEST_METHOD") in ("GET", "HEAD")
                and environ.get("PATH_INFO") in LINK_PATHS):
            try:
                answer = self.link(environ, start_response)
            except Exception:
                # Flask meets it again and answers as for every route, logged.
                log.exception("link front: passing %s to Flask", environ.get("PATH_INFO"))
                answer = None
        return self.inner(environ, start_response) if answer is None else answer

    def link(self, environ: dict[str, Any], start_response: Callable[..., Any]
             ) -> Iterable[bytes] | None:
        args = link_args(environ.get("QUERY_STRING", ""))
        if args is None or not self.served_host(environ):
            return None
        if self.limit is not None and not self.limit.count(environ):
            return None  # Flask answers the 429 (ratelimit.front_refusal)
        link = (args["data"], args["signature"])
        key = link_key(*link)
        known = self.verified.get(key)
        read = None
        if known is None:
            try:
                read = terminal.read_link(*link)
            except terminal.LinkError:
                return None
            client_id, digest = read.client_id, read.digest
        else:
            client_id, digest = known.client_id, known.digest
        found = self.find(client_id, digest)
        if found is None:
            return None
        environ[FOUND] = (client_id, digest, found)
        if not found.reopens or found.page_id is None or found.version is None:
            return None
        if known is None or known.version != found.version:
            if found.kept is None:
                return None
            try:
                terminal.verify_link(read or terminal.read_link(*link), link[1],
                                     found.kept.merchant(),
                                     currency_places=present.deposit_places,
                                     convert_supported=present.is_conversion_currency)
            except terminal.LinkError:
                self.verified.drop(key)
                return None
            self.verified.put(key, Verified(client_id, digest, found.version))
        location = environ.get("SCRIPT_NAME", "") + "/p/" + found.page_id
        return self.send(environ, start_response, location)

    def find(self, client_id: int, digest: str) -> Found | None:
        cache = merchants.cache_of(self.app)
        link = (client_id, digest)
        generation = None
        if self.rows is not None:
            page_id = self.pages.get(link)
            kept = None if page_id is None else self.rows.kept((page_id, pagerows.LINK))
            if kept is not None:
                return found_in(kept, cache, client_id)
            generation = self.rows.generation()
        try:
            row = self.direct.read(params_of(*link))
        except SQLAlchemyError:
            log.exception("link front: a link's page could not be read")
            return None
        found = found_in(row, cache, client_id)
        # Kept only where a click goes to the page: a link without a page yet gets one
        # in a transaction no notice announces (page_notices.py), nor does a page that
        # lets its link go and the fresh page made in its place.
        if self.rows is not None and found.reopens and found.page_id is not None:
            self.pages.put(link, found.page_id)
            self.rows.keep_since((found.page_id, pagerows.LINK), generation, row)
        return found

    def send(self, environ: dict[str, Any], start_response: Callable[..., Any],
             location: str) -> Iterable[bytes]:
        """The route's 303, to the byte: werkzeug's redirect, with the site's headers."""
        response = redirect(location, 303)
        body = response.get_data()
        start_response("303 SEE OTHER", [
            ("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
            ("Location", location), *self.headers])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]

    def served_host(self, environ: dict[str, Any]) -> bool:
        return front.served_host(environ, self.trusted_hosts)


def link_key(data: str, signature: str) -> bytes:
    """The link to the byte, in 32 bytes: the data's length first, so that no other split
    of the same characters into data and signature has the same key."""
    return hashlib.sha256(f"{len(data)}:{data}{signature}".encode()).digest()


def found_before(environ: dict[str, Any], read: terminal.ReadLink) -> Found | None:
    """What the front found for this very link in this request, if it looked."""
    stashed = environ.get(FOUND)
    if stashed is None or stashed[:2] != (read.client_id, read.digest):
        return None
    found: Found = stashed[2]
    return found


def link_args(query: str) -> dict[str, str] | None:
    """`data` and `signature`, each once, and nothing else (a `lang` changes the answer's
    Location: Flask builds it); None otherwise."""
    if not query.isascii():
        return None
    pairs = parse_qsl(query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    if len(pairs) != 2 or set(names) != LINK_ARGS:
        return None
    return dict(pairs)


def install(app: Flask) -> None:
    """In front of the app (next to front.py's Front, inside any proxy fix)."""
    app.wsgi_app = LinkFront(app, app.wsgi_app)  # type: ignore[method-assign]
