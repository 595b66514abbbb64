"""QR codes as SVG and PNG, drawn in memory from the payment text.

Error correction M and a 4-module quiet zone (the minimum the QR standard asks for). The
images are derived data: the same text always gives the same bytes, so they are cached
here and by browsers (ETag from `etag`). Nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import io
import re
from functools import lru_cache
from xml.sax.saxutils import escape

import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M
from qrcode.exceptions import DataOverflowError

QUIET_ZONE = 4
# Part of the ETag: bump it when the drawing changes, so caches drop old images.
RENDER_VERSION = "1"
_MAX_SCALE = 40
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class QrError(ValueError):
    """Text a QR code cannot hold."""


def matrix(text: str) -> tuple[tuple[bool, ...], ...]:
    """Dark (True) and light modules, quiet zone included."""
    return _matrix(text)


@lru_cache(maxsize=512)
def _matrix(text: str) -> tuple[tuple[bool, ...], ...]:
    return _draw(text)


def _draw(text: str) -> tuple[tuple[bool, ...], ...]:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=QUIET_ZONE)
    try:
        code.add_data(text)
        code.make(fit=True)
    except (DataOverflowError, ValueError) as exc:
        raise QrError("text too long for a QR code") from exc
    return tuple(tuple(bool(m) for m in row) for row in code.get_matrix())


@lru_cache(maxsize=256)
def svg(text: str, title: str | None = None) -> bytes:
    """An SVG of one path, one module per user unit; `title` (default: the text) for screen readers.

    Colours are presentation attributes, not `style`, so no CSP rule is ever involved.
    """
    return _svg(_matrix(text), text if title is None else title)


def secret_svg(text: str, title: str) -> bytes:
    """An SVG of a secret (an authenticator's enrolment): drawn and forgotten, never kept in
    this module's caches."""
    return _svg(_draw(text), title)


def _svg(rows: tuple[tuple[bool, ...], ...], title: str) -> bytes:
    size = len(rows)
    label = escape(_NOT_XML.sub("\ufffd", title))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 {size} {size}" '
        f'width="{size * 4}" height="{size * 4}" role="img" shape-rendering="crispEdges">'
        f"<title>{label}</title>"
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{_path(rows)}"/>'
        "</svg>\n"
    ).encode()


@lru_cache(maxsize=256)
def png(text: str, scale: int = 8) -> bytes:
    """A black-on-white PNG, `scale` pixels per module."""
    if not 1 <= scale <= _MAX_SCALE:
        raise QrError(f"scale must be between 1 and {_MAX_SCALE}")
    rows = _matrix(text)
    size = len(rows)
    image = Image.new("1", (size, size), 1)
    image.putdata([0 if dark else 1 for row in rows for dark in row])
    image = image.resize((size * scale, size * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def etag(text: str, *variant: str) -> str:
    """A strong validator for an image of `text` (add the format, scale or title as variant)."""
    key = "\x00".join((RENDER_VERSION, text, *variant))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _path(rows: tuple[tuple[bool, ...], ...]) -> str:
    """One closed rectangle per horizontal run of dark modules: `M x y h w v 1 h -w z`."""
    parts = []
    for y, row in enumerate(rows):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            parts.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
    return "".join(parts)
