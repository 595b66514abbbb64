"""What a request may carry, checked before any view reads it.

A body no longer than its route's limit: a longer one is answered 413 from its declared
length, before a byte of it is read (and a body without a length is cut off there by
Werkzeug's stream limit, so form parsing never buffers more). Query and form text that is
text: percent-escaped bytes that are not UTF-8 are refused with a 400 naming the field
(text.py; JSON bodies are checked where they are parsed, by `money.loads`).
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import branding, text
from . import callbacks, merchant_api

# A customer form (a currency pick, an email, "pay again") is a few hundred bytes.
FORM_BODY = 16 * 1024
# Everything else that takes a body: the merchant API's own bound.
DEFAULT_BODY = merchant_api.MAX_BODY
BODY_LIMITS = {
    "callbacks.receive": callbacks.MAX_BODY,
    "api.invoices_create": merchant_api.MAX_BODY,
    "api.invoices_cancel": merchant_api.MAX_BODY,
    "pages.pick": FORM_BODY,
    "pages.give_email": FORM_BODY,
    "pages.pay_again": FORM_BODY,
    "find.search": FORM_BODY,
    # The back office's branding form carries a logo.
    "console.settings_brand": branding.MAX_LOGO_BYTES + 2 * FORM_BODY,
}
# Routes whose bodies are signed machine messages, read as raw bytes, never as forms.
MACHINE_PREFIXES = ("/api/", "/callbacks/", "/sandbox/")


def body_limit(endpoint: str | None) -> int:
    return BODY_LIMITS.get(endpoint or "", DEFAULT_BODY)


def check_request() -> None:
    """Before every view (and before anything reads the body)."""
    limit = body_limit(request.endpoint)
    request.max_content_length = limit
    if (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()
    field = bad_path_field() or text.bad_query_field(request.query_string)
    if field is None and is_form_post():
        field = text.bad_query_field(request.get_data(cache=True, parse_form_data=False))
    if field is not None:
        raise text.BadText(field)


def bad_path_field() -> str | None:
    """Path bytes that are not UTF-8 (a server hands them over as latin-1): Werkzeug puts
    U+FFFD in their place, a different foreign_id than the shop's."""
    raw = str(request.environ.get("PATH_INFO", "")).encode("latin-1", "replace")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        names = list(request.view_args or {})
        return names[0] if len(names) == 1 else "path"
    return None


def is_form_post() -> bool:
    return (request.mimetype == "application/x-www-form-urlencoded"
            and request.method not in ("GET", "HEAD")
            and not request.path.startswith(MACHINE_PREFIXES))


def init_app(app: Flask) -> None:
    # Anything that reads a body before `check_request` runs (an extension's own hook) is
    # bounded too.
    app.config.setdefault("MAX_CONTENT_LENGTH", DEFAULT_BODY)
    app.before_request(check_request)
