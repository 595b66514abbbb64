"""A page's QR image, as its route answers it (in front of Flask, front.py, or in the Flask
view): the bytes, their content type and ETag for one (text, format, language), kept per
process.

The image only depends on the text it holds (the model's payment URI with the amount due),
its format and, for the SVG, the language of its translated title: the same three always
give the same bytes, so a repeated request costs a dictionary lookup instead of a drawing,
a title's translation and a hash for its ETag. Bounded (least recently used out first):
each process keeps at most `SIZE` images, a few KB each.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from flask import Flask, has_app_context
from flask_babel import force_locale
from sqlalchemy import bindparam, select
from werkzeug.utils import get_content_type

from .. import qr
from ..models import Merchant, Page
from ..pagekinds import present
from .kept import Kept

EXTENSION = "checkout.qrimages"
SIZE = 512
FORMATS = ("svg", "png")
# What the route reads: the model the poll reads (the same amount due) and the merchant's
# default language, for the SVG's title where the request chose none. One SELECT.
READ = (select(Page.model_json, Merchant.language)
        .join(Merchant, Merchant.client_id == Page.merchant_id)
        .where(Page.id == bindparam("page_id")))


@dataclass(frozen=True)
class Image:
    body: bytes
    content_type: str  # as the Flask view's Response sends it (with its charset for SVG)
    etag: str


Images = Kept[tuple[str, str, str], Image]


def image(app: Flask, text: str, fmt: str, locale: str) -> Image:
    """The image of `text` in `fmt` ("svg" or "png"), its title in `locale`."""
    images: Images = app.extensions[EXTENSION]
    key = (text, fmt, locale)
    found = images.get(key)
    if found is None:
        found = draw(app, text, fmt, locale)
        images.put(key, found)
    return found


def draw(app: Flask, text: str, fmt: str, locale: str) -> Image:
    # The SVG's title is translated: in front of Flask there is no context yet, and Babel
    # needs one (only on a miss).
    with ExitStack() as stack:
        if not has_app_context():
            stack.enter_context(app.app_context())
        stack.enter_context(force_locale(locale))
        body, mimetype = present.qr_image(text, fmt)
    return Image(body, get_content_type(mimetype, "utf-8"), qr.etag(text, fmt, locale))


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Images(SIZE)
