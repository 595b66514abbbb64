"""Rendered customer pages, kept per state: a page's HTML is made once for each version of
its stored model, language, address (path and query, which the language links repeat) and
look of its merchant, and served again until one of them changes.

What only the moment of serving knows is filled in then: the countdown (its time, whether it
is urgent, whether it shows). A fiat value that has grown too old since the rendering is
not patched out: the page is rendered again, as the poll would drop it (snapshot.py).

Clients that take gzip get the page gzipped, compressed a few times per rendering (once per
length of the countdown's text): the parts between the countdown's markers are compressed
when first asked for, each ending on a deflate block boundary, and each serving only frames
the moment's countdown text between them as stored (uncompressed) blocks and adds the
checksum (packed_parts says how the parts still refer back across the countdown).

Which version is current is one SELECT by primary key, joined to the merchant's look, so a
repeated view costs that query and a dictionary lookup instead of a template rendering.
Each process keeps its own copies, bounded (`PAGE_CACHE_SIZE` entries, least recently used
out first): a copy is only ever a copy of what any process would render from the same rows.
The first rendering of a state anywhere is also stored for every process (pagestore.py),
so that another process's first view of it is read, not rendered.
"""

from __future__ import annotations

import functools
import secrets
import struct
import zlib
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.orm import Session
from werkzeug.http import parse_accept_header
from werkzeug.wrappers import Request

from .. import memo, rates
from ..models import Merchant, MerchantLogo, Page
from ..pagekinds import snapshot
from .kept import Kept

EXTENSION = "checkout.pagecache"
DEFAULT_SIZE = 1024
# The countdown's time is "m:ss"; the last three minutes are marked urgent.
URGENT_SECONDS = 180

# What a view needs to know which rendering is current: the model's version, and everything
# of the merchant that a page shows (its name, look, frame origins, words, default language).
STATE_COLUMNS = (Page.model_version, Page.kind, Page.is_iframe, Merchant.name,
                 Merchant.display_name, Merchant.accent, Merchant.instructions_json,
                 Merchant.frame_origins_json, Merchant.language, MerchantLogo.digest)


def state_select(*more: Any) -> Select[*tuple[Any, ...]]:
    """The state's columns (and `more` after them), from the page to its merchant's look."""
    return (select(*STATE_COLUMNS, *more)
            .join(Merchant, Merchant.client_id == Page.merchant_id)
            .outerjoin(MerchantLogo, MerchantLogo.merchant_id == Merchant.client_id))


STATE = state_select().where(Page.id == bindparam("page_id"))


# The state alone, named as its row names it, for a process to keep (pagerows.py) without
# the stored rendering's bytes that a row read with it may carry.
State = namedtuple("State", [column.key or "" for column in STATE_COLUMNS])  # type: ignore[misc]


def state_only(row: Row[Any]) -> Any:
    return State(*state_key(row))


def state_key(state: Row[Any]) -> tuple[Any, ...]:
    """The state's own values, from a row that may carry more columns after them."""
    return tuple(state)[:len(STATE_COLUMNS)]


@dataclass(frozen=True)
class Countdown:
    """The countdown's three moving parts, as the template writes them."""

    urgent: str
    hidden: str
    time: str

    @classmethod
    def of(cls, left: int | None) -> Countdown:
        if left is None:
            return cls("", " hidden", "")
        return cls(" urgent" if left <= URGENT_SECONDS else "", "", f"{left // 60}:{left % 60:02d}")


# Markers the cached HTML holds in the countdown's place; random per process, so no text of
# a page (a shop's name, say) can ever spell one.
_NONCE = secrets.token_hex(8)
MARKERS = Countdown(f"\x00{_NONCE}u", f"\x00{_NONCE}h", f"\x00{_NONCE}t")


@functools.cache
def _lead_and_names(markers: Countdown) -> tuple[bytes, dict[int, str]]:
    """What the three markers share (all but their last character), in UTF-8, and the
    field each one's last character names."""
    texts = vars(markers)
    lead = texts["urgent"][:-1]
    if any(marker[:-1] != lead or len(marker[-1].encode()) != 1 for marker in texts.values()):
        raise ValueError("markers must share all but one last ASCII character")
    return lead.encode(), {ord(marker[-1]): name for name, marker in texts.items()}


def pieces_of(text: bytes, markers: Countdown) -> tuple[bytes | str, ...] | None:
    """`text` (UTF-8) cut at `markers`: its bytes before, between and after them, and each
    marker's field name in its place. None if the markers' lead stands in it before anything
    but a marker's last character (a text that holds the lead of its own).

    Cut once, a rendering is served by joining its pieces with the moment's countdown: no
    pass over the whole page replaces or encodes anything (three replaces and an encode
    were a quarter of a first view's own time, the swap of stored markers for the
    process's own another 6%)."""
    lead, names = _lead_and_names(markers)
    head, *rest = text.split(lead)
    pieces: list[bytes | str] = [head]
    for piece in rest:
        name = names.get(piece[0]) if piece else None
        if name is None:
            return None
        pieces += (name, piece[1:])
    return tuple(pieces)

# A gzip member's header: deflate, no name, no time (the same bytes on every instance), no
# extra flags, an unknown OS.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def packed_parts(pieces: tuple[bytes | str, ...], shown: Countdown) -> tuple[bytes | str, ...]:
    """The rendering's deflate stream in parts, for countdown texts of `shown`'s lengths:
    compressed bytes for the text between the markers, the name of the countdown field (str)
    where a marker stood. Each compressed part ends byte-aligned (a sync flush); the last
    one ends the stream.

    The packer keeps its history across the countdown, so the page after it still refers
    back to the page before it: it is fed as many NUL bytes as the countdown text will have,
    their output dropped (the serving sends the text as a stored block instead). The HTML
    holds no NUL, so nothing after refers into those bytes, and every distance back is the
    same in the packer's history as in the client's. A page that does hold one (it never
    should) is packed with the history reset at each marker instead.
    """
    keep = not any(b"\0" in piece for piece in pieces if isinstance(piece, bytes))
    flush = zlib.Z_SYNC_FLUSH if keep else zlib.Z_FULL_FLUSH
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts: list[bytes | str] = []
    last = len(pieces) - 1
    for at, piece in enumerate(pieces):
        if isinstance(piece, str):
            parts.append(piece)
            length = len(getattr(shown, piece).encode())
            if keep and length:
                packer.compress(b"\0" * length)
                packer.flush(zlib.Z_SYNC_FLUSH)
        else:
            parts.append(packer.compress(piece)
                         + packer.flush(zlib.Z_FINISH if at == last else flush))
    return tuple(parts)


# How packed parts are written for every process to read (pagestore.py): a version, the
# countdown texts' lengths they were packed for, then each part, compressed bytes (0, their
# length, them) or a countdown field (1, its index).
PACKED_VERSION = 1
FIELD_NAMES = tuple(vars(MARKERS))


def blob_of_parts(lengths: tuple[int, ...], parts: tuple[bytes | str, ...]) -> bytes:
    out = [struct.pack("<B3H", PACKED_VERSION, *lengths)]
    for part in parts:
        if isinstance(part, str):
            out.append(struct.pack("<BB", 1, FIELD_NAMES.index(part)))
        else:
            out.append(struct.pack("<BI", 0, len(part)) + part)
    return b"".join(out)


def parts_of_blob(blob: bytes) -> tuple[tuple[int, ...], tuple[bytes | str, ...]] | None:
    """`blob_of_parts`'s lengths and parts; None for anything else (another version, a
    truncated or damaged blob): the reader packs the page itself then."""
    try:
        version, *lengths = struct.unpack_from("<B3H", blob)
        if version != PACKED_VERSION:
            return None
        at = struct.calcsize("<B3H")
        parts: list[bytes | str] = []
        while at < len(blob):
            if blob[at] == 1:
                parts.append(FIELD_NAMES[blob[at + 1]])
                at += 2
            elif blob[at] == 0:
                (size,) = struct.unpack_from("<I", blob, at + 1)
                at += 5
                if at + size > len(blob):
                    return None
                parts.append(blob[at:at + size])
                at += size
            else:
                return None
    except (struct.error, IndexError):
        return None
    return tuple(lengths), tuple(parts)


def countdown_lengths(shown: Countdown) -> tuple[int, ...]:
    return tuple(len(text.encode()) for text in vars(shown).values())


def stored_block(text: bytes) -> bytes:
    """A deflate block that holds `text` as it is (not the last block; at most 64 KiB)."""
    return b"\x00" + struct.pack("<HH", len(text), len(text) ^ 0xFFFF) + text if text else b""


@dataclass(frozen=True)
class Rendered:
    # The page's UTF-8 bytes between the countdown's moving parts, each part's field name
    # (str) in its place: bytes first and last, then alternating (`pieces_of`).
    pieces: tuple[bytes | str, ...]
    deadline: int | None  # unix seconds when the countdown reaches zero; None: no countdown
    fiat_at: int | None  # unix seconds of the fiat value shown; None: none shown
    frame_ancestors: list[str] | None

    @classmethod
    def of_html(cls, html: str, deadline: int | None, fiat_at: int | None,
                frame_ancestors: list[str] | None) -> Rendered:
        """A rendering made in this process: its HTML holds MARKERS in the countdown's
        place."""
        pieces = pieces_of(html.encode(), MARKERS)
        if pieces is None:  # the lead is NUL and a random nonce: no page text holds it
            raise ValueError("a page's text holds this process's marker lead")
        return cls(pieces, deadline, fiat_at, frame_ancestors)

    @property
    def fields(self) -> list[str]:
        """The countdown's fields in the order the page shows them."""
        return [piece for piece in self.pieces if isinstance(piece, str)]

    def fresh(self, now: int) -> bool:
        return self.fiat_at is None or now - self.fiat_at <= rates.SHOWN_MAX_AGE

    def countdown(self, now: int) -> Countdown:
        return Countdown.of(None if self.deadline is None else max(0, self.deadline - now))

    def serve(self, now: int) -> bytes:
        """The page's bytes at `now`, its countdown's text in the markers' places."""
        shown = self.countdown(now)
        return b"".join(piece if isinstance(piece, bytes) else getattr(shown, piece).encode()
                        for piece in self.pieces)

    @functools.cached_property
    def packs(self) -> dict[tuple[int, ...], tuple[bytes | str, ...]]:
        """The packed parts per lengths of the countdown's texts: a handful per rendering
        ("9:59" and "10:00", urgent or not), each compressed when first served."""
        return {}

    def packed(self, shown: Countdown) -> tuple[bytes | str, ...]:
        lengths = countdown_lengths(shown)
        found = self.packs.get(lengths)
        if found is None and self.offered:
            self.unpack_offered()
            found = self.packs.get(lengths)
        if found is None:
            found = self.packs[lengths] = packed_parts(self.pieces, shown)
        return found

    @functools.cached_property
    def offered(self) -> list[bytes]:
        """Packed parts another process stored (`take_packed`), read when first needed: a
        client that takes no gzip never needs them."""
        return []

    def packed_blob(self, now: int) -> bytes:
        """The packed parts for the countdown at `now`, written for another process to take
        (`take_packed`) instead of compressing the page again."""
        shown = self.countdown(now)
        return blob_of_parts(countdown_lengths(shown), self.packed(shown))

    def take_packed(self, blob: bytes | None) -> None:
        """Packed parts another process made of this very HTML (`packed_blob`), for the
        first gzip serving to read; a blob that does not fit the HTML's markers is not
        taken then."""
        if blob is not None:
            self.offered.append(blob)

    def unpack_offered(self) -> None:
        while True:
            try:
                blob = self.offered.pop()
            except IndexError:  # none left (another thread may have taken the last)
                return
            found = parts_of_blob(blob)
            if found is not None:
                self.take_parts(*found)

    def take_parts(self, lengths: tuple[int, ...], parts: tuple[bytes | str, ...]) -> None:
        """Taken if they are this HTML's: compressed text and its fields, one after the
        other, for each of its markers in order, and the text after the last (a blob cut
        short at a part's end would send a stream without its end)."""
        fields = [part for part in parts if isinstance(part, str)]
        alternate = all(isinstance(part, str) == (at % 2 == 1) for at, part in enumerate(parts))
        if alternate and len(parts) == 2 * len(fields) + 1 and fields == self.fields:
            self.packs.setdefault(lengths, parts)

    def serve_gzipped(self, now: int) -> bytes:
        """`serve(now)`, gzipped: the compressed parts as they are, the countdown's text in
        stored blocks between them, and the whole page's checksum and size."""
        countdown = self.countdown(now)
        shown = vars(countdown)
        body = b"".join(stored_block(shown[part].encode()) if isinstance(part, str) else part
                        for part in self.packed(countdown))
        plain = self.serve(now)
        return (GZIP_HEADER + body
                + struct.pack("<II", zlib.crc32(plain), len(plain) & 0xFFFFFFFF))

    @functools.cached_property
    def last_served(self) -> dict[bool, tuple[Countdown, bytes]]:
        """Per encoding, the bytes last served and the countdown they showed: every view
        within the same second (or of a page with no countdown) sends them again."""
        return {}

    def encoded(self, now: int, gzip: bool) -> tuple[bytes, list[tuple[str, str]]]:
        """The page's bytes as the client takes them, and the headers that say how."""
        headers = [("Vary", "Accept-Encoding")]  # one URL, either encoding
        if gzip:
            headers.append(("Content-Encoding", "gzip"))
        shown = self.countdown(now)
        last = self.last_served.get(gzip)
        if last is not None and last[0] == shown:
            return last[1], headers
        body = self.serve_gzipped(now) if gzip else self.serve(now)
        self.last_served[gzip] = (shown, body)
        return body, headers


class PageCache(Kept[tuple[Any, ...], Rendered]):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        # (page id, stored variant): the state digest of the rendering kept of it, so that
        # reading the page's state leaves out a stored rendering this process has already
        # (pagestore.py).
        # With it, the key of that rendering: a digest outlives no rendering it names.
        self.digests: Kept[tuple[str, str], tuple[str, tuple[Any, ...]]] = Kept(size)

    def digest_of(self, page_id: str, stored_variant: str) -> str | None:
        found = self.digests.peek((page_id, stored_variant))
        return found[0] if found is not None and found[1] in self else None

    def note(self, page_id: str, stored_variant: str, digest: str,
             key: tuple[Any, ...]) -> None:
        self.digests.put((page_id, stored_variant), (digest, key))


# The WSGI environ's key for the (page id, state) the front read before passing a view on.
READ_STATE = "checkout.pagecache.state"


def state_of(session: Session, page_id: str, environ: dict[str, Any] | None = None) -> Any:
    """The page's current version and its merchant's look; None: no such page. Read by the
    front already for a view it passed on (`READ_STATE`): that row, not a second read."""
    read = None if environ is None else environ.get(READ_STATE)
    if read is not None and read[0] == page_id:
        return read[1]
    return session.connection().execute(STATE, {"page_id": page_id}).first()


@dataclass(frozen=True)
class Rendering:
    """What a view rendered for the cache: the HTML (with MARKERS), the seconds left and the
    fiat value's age stamp of the model it showed, who may frame it, and what it came from."""

    html: str
    seconds_left: int | None
    fiat_at: int | None
    frame_ancestors: list[str] | None
    stored: bool  # rendered from the page's stored model (not built from the tables)
    version: int  # the version of that model


def variant(locale: str, request: Request) -> tuple[str, str] | None:
    """What of the request a rendering depends on: its language and its address (the
    language links repeat the query). None: not worth keeping, as a query with anything but
    `lang` in it is no address the site makes; anyone could make a thousand of them."""
    if any(name != "lang" for name in request.args):
        return None
    return locale, request.script_root + request.full_path  # the links are under the root


def takes_gzip(request: Request) -> bool:
    """Whether the client takes gzip; each Accept-Encoding (browsers send a handful) is
    read once per process, unless it is long (any client can send any)."""
    header = request.environ.get("HTTP_ACCEPT_ENCODING")
    return gzip_taken(header) if header else False


@memo.kept_when_short(256, 1024)
def gzip_taken(header: str) -> bool:
    # As for static files (assets.py): werkzeug ranks a coding named outright before `*`.
    return parse_accept_header(header)["gzip"] > 0


def kept(app: Flask, state: Row[Any], page_id: str, variant: tuple[str, str],
         stamp: int) -> Rendered | None:
    """The kept rendering of this page's state, if there is one still fresh."""
    cache: PageCache = app.extensions[EXTENSION]
    found = cache.get((page_id, *state_key(state), *variant))
    return found if found is not None and found.fresh(stamp) else None


def keep(app: Flask, state: Row[Any], page_id: str, variant: tuple[str, str],
         found: Rendered, stored: tuple[str, str] | None = None) -> None:
    """Keep a rendering of this state for the next view; `stored`: the (variant, digest)
    under which every process can read it too (pagestore.py)."""
    cache: PageCache = app.extensions[EXTENSION]
    key = (page_id, *state_key(state), *variant)
    cache.put(key, found)
    if stored is not None:
        cache.note(page_id, *stored, key)


def rendered(state: Row[Any], page_id: str, variant: tuple[str, str] | None, now: datetime,
             render: Callable[[Countdown], Rendering],
             share: Callable[[Rendered], tuple[str, str] | None] | None = None) -> Rendered:
    """The page's rendering now: a kept one of this state if there is one, else `render`'s,
    kept for the next view (`serve` it with the moment) and given to `share` to store for
    every process (it answers the (variant, digest) it was stored under, or None)."""
    stamp = snapshot.unix(now)
    found = None if variant is None else kept(current_app, state, page_id, variant, stamp)
    if found is None:
        made = render(MARKERS)
        left = made.seconds_left
        found = Rendered.of_html(made.html, None if left is None else stamp + int(left),
                                 made.fiat_at, made.frame_ancestors)
        # A page without a stored model yet was built from the tables: its version says
        # nothing of what it showed, so it is neither kept nor stored; nor one rendered
        # from a newer version than the state read before it (a change in between).
        if variant is not None and made.stored and made.version == state.model_version:
            stored = share(found) if share is not None else None
            keep(current_app, state, page_id, variant, found, stored)
    return found


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = PageCache(int(app.config.get("PAGE_CACHE_SIZE", DEFAULT_SIZE)))
