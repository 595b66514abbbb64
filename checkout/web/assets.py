"""Static files named by their content: cached for a year, gzipped once, scripts minified.

`url_for('static', filename='checkout.js')` names `/static/checkout.<digest>.js`, the digest
of the bytes served, so a changed file is a new URL and a browser may keep each URL for good
(`immutable`): a repeat view asks for none of them again. The plain name answers too, with a
short cache and an ETag: shops include `/static/embed.js` by that stable URL, and a fix must
reach them within minutes.

The folder is read once per process, when the app is built (again in debug mode when a file
changes); each file's gzip copy is made then, never per request, and sent to clients whose
Accept-Encoding takes gzip.

Scripts are served minified by calmjs.parse (whitespace and comments dropped, local names
shortened within their scopes), so the source in static/ stays readable: the page's script
is about 6.6 KB served where its source is 11.7 KB. That parser knows ES5, the language the
scripts are written in; a script it cannot parse is served as it is, with a warning, and
tests/web/test_static.py fails.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import rcssmin
from flask import Flask, Response, abort, current_app, request

EXTENSION = "checkout.assets"
FOREVER = "public, max-age=31536000, immutable"
# The stable names (embed.js on shops' pages) and a digest that is not the current one (a
# page built by another instance during a deploy): the file as it is now, kept briefly.
SHORT = "public, max-age=300"
DIGEST_LENGTH = 16
_HASHED = re.compile(rf"(?P<base>.+)\.(?P<digest>[0-9a-f]{{{DIGEST_LENGTH}}})(?P<suffix>\.[^./]+)?")
# mimetypes reads the system's tables, which disagree about scripts; these are the standard.
TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
COMPRESSIBLE = ("text/", "image/svg+xml", "application/json", "application/manifest+json")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Asset:
    name: str  # its path in the folder, "checkout.js"
    body: bytes  # what is served: the file, or its minified form for a script
    gzipped: bytes | None  # None where gzip would not make it smaller
    mimetype: str
    digest: str

    @property
    def hashed_name(self) -> str:
        path = PurePosixPath(self.name)
        return str(path.with_name(f"{path.stem}.{self.digest}{path.suffix}"))


@dataclass(frozen=True)
class Manifest:
    folder: Path
    assets: dict[str, Asset]
    stamps: dict[str, tuple[int, int]]  # name: (mtime_ns, size), to see a change in debug mode

    def find(self, filename: str) -> tuple[Asset, bool] | None:
        """The asset a URL names, and whether it names the current digest (cache forever)."""
        asset = self.assets.get(filename)
        if asset is not None:
            return asset, False
        hashed = _HASHED.fullmatch(filename)
        if hashed is None:
            return None
        asset = self.assets.get(hashed["base"] + (hashed["suffix"] or ""))
        if asset is None:
            return None
        return asset, asset.digest == hashed["digest"]

    def changed(self) -> bool:
        return stamps(self.folder) != self.stamps


def stamps(folder: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in name.split("/")):
            stat = path.stat()
            found[name] = (stat.st_mtime_ns, stat.st_size)
    return found


def build(folder: Path) -> Manifest:
    seen = stamps(folder)
    return Manifest(folder, {name: asset_of(name, (folder / name).read_bytes())
                             for name in seen}, seen)


def asset_of(name: str, raw: bytes) -> Asset:
    suffix = PurePosixPath(name).suffix.lower()
    mimetype = TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    body = minified_script(name, raw) if suffix == ".js" else \
        minified_style(raw) if suffix == ".css" else raw
    gzipped = None
    if mimetype.startswith(COMPRESSIBLE) or mimetype.endswith(("+xml", "+json")):
        packed = gzip.compress(body, 9, mtime=0)  # mtime 0: the same bytes on every instance
        gzipped = packed if len(packed) < len(body) else None
    return Asset(name, body, gzipped, mimetype,
                 hashlib.sha256(body).hexdigest()[:DIGEST_LENGTH])


def minified_script(name: str, raw: bytes) -> bytes:
    try:
        return minify(raw.decode("utf-8")).encode("utf-8")
    except (UnicodeDecodeError, SyntaxError) as exc:  # ECMASyntaxError is a SyntaxError
        log.warning("static/%s is served unminified: %s", name, exc)
        return raw


def minified_style(raw: bytes) -> bytes:
    """Comments and spaces out: the stylesheet explains itself in the source, and a customer
    on a slow phone connection should not download the explanations."""
    return str(rcssmin.cssmin(raw.decode("utf-8"))).encode("utf-8")


@functools.lru_cache(maxsize=32)
def minify(source: str) -> str:
    """Once per process and source (tests build many apps): parsing takes a tenth of a second."""
    from calmjs.parse import es5
    from calmjs.parse.unparsers.es5 import minify_print

    # Globals keep their names: embed.js defines `Checkout` for the shop's own code.
    return str(minify_print(es5(source), obfuscate=True, obfuscate_globals=False,
                            drop_semi=True))


def install(app: Flask, folder: Path) -> None:
    app.extensions[EXTENSION] = build(folder)


def manifest() -> Manifest:
    current: Manifest = current_app.extensions[EXTENSION]
    if current_app.debug and current.changed():
        current = current_app.extensions[EXTENSION] = build(current.folder)
    return current


def hashed_url(endpoint: str, values: dict[str, Any]) -> None:
    """`url_for('static', filename=...)` names the file by its digest."""
    if endpoint == "static" and "filename" in values:
        asset = manifest().assets.get(values["filename"])
        if asset is not None:
            values["filename"] = asset.hashed_name


def serve(filename: str) -> Response:
    found = manifest().find(filename)
    if found is None:
        abort(404)
    asset, current = found
    # Werkzeug ranks a coding named outright before `*`: "*, gzip;q=0" refuses gzip.
    packed = asset.gzipped if request.accept_encodings["gzip"] > 0 else None
    response = Response(packed or asset.body, mimetype=asset.mimetype)
    if asset.gzipped is not None:
        response.vary.add("Accept-Encoding")
    if packed is not None:
        response.headers["Content-Encoding"] = "gzip"
    # Each encoding has its own strong ETag: the bytes differ.
    response.set_etag(asset.digest + ("-gzip" if packed is not None else ""))
    response.headers["Cache-Control"] = FOREVER if current else SHORT
    response.make_conditional(request)  # in place: a matching If-None-Match makes it a 304
    return response


def init_app(app: Flask) -> None:
    """Serve the app's static folder from memory, in place of Flask's own static view."""
    if app.static_folder is None:
        return
    install(app, Path(app.static_folder))
    app.view_functions["static"] = serve
    app.url_defaults(hashed_url)
