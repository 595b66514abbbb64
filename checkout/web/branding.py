"""A merchant's branding as pages use it: the Brand a template shows, and the routes that serve
its stylesheet and logo at URLs named by their content (cached for good). What an operator may
set, and the colours worked out from it, are branding.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, abort, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale

from .. import branding, db
from ..models import Merchant, MerchantLogo


@dataclass(frozen=True)
class Brand:
    stylesheet_url: str | None = None
    logo_url: str | None = None
    logo_width: int | None = None
    logo_height: int | None = None
    instructions: str | None = None
    instructions_lang: str | None = None  # set when the text is in another page's language


def brand_of(merchant: Merchant) -> Brand:
    logo = merchant.logo
    css = branding.stylesheet(merchant, logo)
    text, lang = branding.instructions_for(merchant.instructions, str(get_locale()))
    return Brand(
        stylesheet_url=(url_for("branding.stylesheet_file", client_id=merchant.client_id,
                                digest=branding.digest_of(css)) if css else None),
        logo_url=(url_for("branding.logo_file", client_id=merchant.client_id,
                          digest=logo.digest[:16]) if logo else None),
        logo_width=logo.width if logo else None,
        logo_height=logo.height if logo else None,
        instructions=text,
        instructions_lang=lang.replace("_", "-") if lang else None,
    )


bp = Blueprint("branding", __name__, url_prefix="/brand")


def _cached_forever(response: Response) -> Response:
    response.headers["Cache-Control"] = branding.CACHE_FOREVER
    return response


@bp.get("/<int(max=2147483647):client_id>/<digest>.css")
def stylesheet_file(client_id: int, digest: str) -> ResponseReturnValue:
    """Only the current digest answers: an old one is a stylesheet that no longer exists."""
    merchant = db.session().get(Merchant, client_id) if branding.DIGEST.match(digest) else None
    css = branding.stylesheet(merchant, merchant.logo) if merchant is not None else None
    if css is None or branding.digest_of(css) != digest:
        abort(404)
    return _cached_forever(Response(css, mimetype="text/css"))


@bp.get("/<int(max=2147483647):client_id>/logo-<digest>.png")
def logo_file(client_id: int, digest: str) -> ResponseReturnValue:
    logo = db.session().get(MerchantLogo, client_id) if branding.DIGEST.match(digest) else None
    if logo is None or not logo.digest.startswith(digest):
        abort(404)
    return _cached_forever(Response(logo.png, mimetype="image/png"))


def template_helpers() -> dict[str, Any]:
    return {"brand_of": brand_of}


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.context_processor(template_helpers)
