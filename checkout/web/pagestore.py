"""Renderings shared by every process: a state of a page is rendered once anywhere (ahead of
its view, or by its first view), and every other process's first view of that state reads
the HTML in the very SELECT that reads the page's state (front.py), so it renders nothing
and commits nothing.

pagecache.py keeps renderings per process; a site of several gunicorn workers would render
each state once per worker, and the render is several times a whole bare request. Here the
first process to render a state of a page stores it (`store`, in a row per page and
variant, `PageRendering`); the rest adopt it (`adopt`) into their own cache.

When it is rendered: ahead, by a request that changes the page and knows what the customer
will ask for next, and else on the first view of each state, once for all processes. A
terminal link's first click and a customer's step on an invoice page (a currency picked, an
email given) redirect to the page: they render it (customer.render_ahead, one call after
their own work is committed) for the view their redirect leads to: the page's path with
their `?lang=`, and the browser's languages they were sent with. That view is then one
SELECT. The other changes cannot know the customer's variant: a callback, the worker's rates
and expiry, a shop's `invoices/create` come from the processor or the shop, not from the
customer's browser; rendering every variant a page was ever seen in, in their requests,
would put renders nobody may ask for on the intake path that must be fastest. Their next
view renders the new state once, for every process.

What a stored rendering may hold, so that it is valid in every process:
- The countdown is left as neutral markers (`STORED`), where the reading process cuts the
  page to serve it with the moment's countdown; a page whose text holds their lead
  character (it never should) is not stored, as its markers could not be told apart from
  its text.
- Form tokens are bound to the page and the site's secret (forms.py), the same in every
  process; the secret is part of the `edition`, so a new key never meets an old token.
- Everything else a rendering is made from is in its `state` digest: the page's state as
  the page path reads it (its model's version, its merchant's look) and the site's
  edition (templates, catalogues, assets, code and settings: a deploy renders anew).

Which requests share a rendering (`variant`): the script root, the language the request
itself asked for (`*` where it asked none: the merchant's default, which is in the state)
and its `?lang=`. Only addresses the site makes are stored: the page's own path, bare or
with one `?lang=` of a language the site speaks as its links spell it. Anything else is
rendered for its request alone (and kept per process where pagecache.variant allows).

Bounds: one row per page and variant, replaced by a newer state; storing a new version of a
page drops the rows of its older versions; the worker prunes rows older than
`RENDERINGS_MAX_AGE` seconds (a view after that renders once more); a page's rows go with
it.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from sqlalchemy import and_, bindparam, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Request

from .. import clock, db, i18n
from ..models import PageRendering
from ..pagekinds import snapshot
from . import pagecache

log = logging.getLogger(__name__)

EXTENSION = "checkout.pagestore"
DEFAULT_MAX_AGE = 7 * 24 * 3600
# The countdown's markers as stored: the same in every process (a process's own,
# pagecache.MARKERS, are random). Led by a Unicode noncharacter, which no page text should
# hold (a page that does is not stored: `neutral`), and not by a NUL as the process's own
# markers are: PostgreSQL's text holds no NUL.
LEAD = "\ufdd0"
STORED = pagecache.Countdown(f"{LEAD}u", f"{LEAD}h", f"{LEAD}t")
NOT_KEPT = ""  # no state digest is empty: with it, any stored row is read

# The page's state and, beside it, its stored rendering for this variant if that is of
# the page's current version and not the one this process keeps already. Its HTML comes as
# the UTF-8 bytes it is served as: not decoded into text only to be encoded back.
STORED_COLUMNS = (PageRendering.state.label("stored_state"),
                  db.utf8_bytes(PageRendering.html).label("html"),
                  PageRendering.deadline, PageRendering.fiat_at,
                  PageRendering.frame_ancestors_json, PageRendering.packed)

def _with_stored(*columns: Any) -> Any:
    return (pagecache.state_select(*columns)
            .outerjoin(PageRendering, and_(
                PageRendering.page_id == pagecache.Page.id,
                PageRendering.variant == bindparam("variant"),
                PageRendering.model_version == pagecache.Page.model_version,
                PageRendering.state != bindparam("kept")))
            .where(pagecache.Page.id == bindparam("page_id")))


STATE_AND_STORED = _with_stored(*STORED_COLUMNS)
# The same, without the HTML: whether a rendering is stored, for one about to render ahead.
STATE_AND_STORED_DIGEST = _with_stored(STORED_COLUMNS[0])


def variant(app: Flask, request: Request) -> str | None:
    """What of the request a stored rendering depends on; None: an address the site never
    makes (a query with anything but one `?lang=` of a served language, as its links spell
    it), rendered for that request alone."""
    languages: list[str] = app.config["LANGUAGES"]
    names = list(request.args)
    if names and (names != ["lang"] or len(request.args.getlist("lang")) != 1
                  or request.args["lang"] not in {i18n.tag(code) for code in languages}):
        return None
    if request.script_root not in roots(app):
        return None  # a prefix no proxy of ours sets (a server may take one from a header)
    lang = request.args["lang"] if names else ""
    asked = i18n.choose(request, languages, lambda: None) if lang else asked_by_browser(
        request, languages)
    found = f"{request.script_root}|{asked}|{lang}"
    return found if len(found) <= 255 else None


def roots(app: Flask) -> frozenset[str]:
    """The script roots the site is served under: none, or its configured root or public
    URL's path. Worked out from the settings once, not on every page view."""
    found: frozenset[str] | None = app.extensions.get(EXTENSION + ".roots")
    if found is None:
        public = urlsplit(str(app.config.get("PUBLIC_URL") or "")).path
        found = app.extensions[EXTENSION + ".roots"] = frozenset(
            {"", str(app.config.get("APPLICATION_ROOT") or "").rstrip("/"), public.rstrip("/")})
    return found


def asked_by_browser(request: Request, languages: list[str]) -> str:
    # "*": the merchant's default (or English); which one is in the state.
    return i18n.browser_choice(request, languages) or "*"


def digest(app: Flask, state: Any) -> str:
    """The digest of a page's state (pagecache.state_key) in this site's edition."""
    key = tuple(pagecache.state_key(state))
    return hashlib.blake2b(repr(key).encode(), key=edition(app).encode()[:64],
                           digest_size=16).hexdigest()


def edition(app: Flask) -> str:
    """What every rendering of this site is made from besides the page: its code, templates,
    catalogues and static files, its settings and its secret key (as an HMAC: nothing of
    the key can be read from it). Processes of one deployment agree on it; a deploy or a new
    key changes it, and with it every stored rendering's digest."""
    found: str | None = app.extensions.get(EXTENSION)
    if found is None:
        found = app.extensions[EXTENSION] = compute_edition(app)
    return found


def compute_edition(app: Flask) -> str:
    files = hashlib.sha256()
    root = Path(app.root_path)
    folders = [Path(__file__).resolve().parent.parent,
               *(root / folder for folder in (app.template_folder, app.static_folder) if folder)]
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix not in (".pyc", ".po", ".pot"):
                files.update(str(path.relative_to(folder)).encode() + b"\0")
                files.update(path.read_bytes())
    try:
        version = importlib.metadata.version("checkout")
    except importlib.metadata.PackageNotFoundError:
        version = ""
    settings = sorted((name, value) for name, value in app.config.items()
                      if isinstance(value, str | int | float | bool | type(None) | list))
    message = json.dumps([version, files.hexdigest(), settings], default=str).encode()
    return hmac.new(str(app.config["SECRET_KEY"]).encode(), b"checkout-pages:" + message,
                    hashlib.sha256).hexdigest()


def neutral(rendered: pagecache.Rendered) -> str | None:
    """The rendering's HTML with the countdown's markers in their neutral form; None if its
    text holds the neutral markers' lead of its own (or a NUL, which PostgreSQL cannot
    store)."""
    lead = LEAD.encode()
    if any(lead in piece or b"\0" in piece
           for piece in rendered.pieces if isinstance(piece, bytes)):
        return None
    return b"".join(piece if isinstance(piece, bytes) else getattr(STORED, piece).encode()
                    for piece in rendered.pieces).decode()


def adopt(app: Flask, row: Any, page_id: str, asked: tuple[str, str], stored_variant: str,
          stamp: int) -> pagecache.Rendered | None:
    """The stored rendering the row carries, if it is of the page's current state and still
    fresh; kept in this process's cache from now on."""
    if row.html is None:
        return None
    current = digest(app, row)
    if row.stored_state != current:
        return None
    # Read as UTF-8 bytes (`STORED_COLUMNS`): cut at the neutral markers, served as it is.
    pieces = pagecache.pieces_of(row.html, STORED)
    if pieces is None:
        return None
    frame = row.frame_ancestors_json
    found = pagecache.Rendered(pieces, row.deadline, row.fiat_at,
                               None if frame is None else list(json.loads(frame)))
    if not found.fresh(stamp):
        return None
    found.take_packed(row.packed)
    pagecache.keep(app, row, page_id, asked, found, (stored_variant, current))
    return found


def kept_digest(app: Flask, page_id: str, stored_variant: str) -> str:
    """The digest of the state this process keeps a rendering of, for the query to leave
    that rendering's bytes out; NOT_KEPT if none."""
    cache: pagecache.PageCache = app.extensions[pagecache.EXTENSION]
    return cache.digest_of(page_id, stored_variant) or NOT_KEPT


def store(session: Session, state: Any, page_id: str, stored_variant: str,
          rendered: pagecache.Rendered) -> str | None:
    """Store a rendering made from `state` for every process; a concurrent twin of it
    (another process's first view) wins or loses, never fails. Its digest; None if it could
    not be stored (it is served all the same)."""
    html = neutral(rendered)
    if html is None:
        return None
    state_digest = digest(current_app, state)
    version = int(state.model_version)
    now = clock.now()
    values = {
        "page_id": page_id, "variant": stored_variant, "model_version": version,
        "state": state_digest, "html": html, "deadline": rendered.deadline,
        "fiat_at": rendered.fiat_at, "stored_at": now,
        "packed": rendered.packed_blob(snapshot.unix(now)),
        "frame_ancestors_json": (None if rendered.frame_ancestors is None
                                 else json.dumps(rendered.frame_ancestors)),
    }
    insert = db.conflict_insert(session.get_bind().dialect.name, PageRendering).values(values)
    upsert = insert.on_conflict_do_update(
        index_elements=[PageRendering.page_id, PageRendering.variant],
        set_={name: insert.excluded[name] for name in values
              if name not in ("page_id", "variant")},
        # A slower twin of an older state never replaces a newer one.
        where=PageRendering.model_version <= insert.excluded.model_version)
    try:
        session.execute(upsert)
        session.execute(delete(PageRendering).where(
            PageRendering.page_id == page_id, PageRendering.model_version < version))
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("a page's rendering could not be stored")
        return None
    return state_digest


def prune() -> int:
    """Worker task: drop renderings stored more than `RENDERINGS_MAX_AGE` seconds ago (a
    view after that renders its page once more); how many."""
    session = db.session()
    age = int(current_app.config.get("RENDERINGS_MAX_AGE", DEFAULT_MAX_AGE))
    old = PageRendering.stored_at < clock.now() - timedelta(seconds=age)
    # Asked first with a read: a DELETE takes SQLite's write lock even when it finds
    # nothing, and the worker asks on every loop.
    if session.scalar(select(PageRendering.page_id).where(old).limit(1)) is None:
        session.commit()
        return 0
    gone = session.execute(delete(PageRendering).where(old))
    session.commit()
    return int(getattr(gone, "rowcount", 0) or 0)
