"""Languages: which one a request is served in, how that choice follows the customer, and how
numbers and dates read in it.

The choice, first match wins: `?lang=`; the same `?lang=` carried over on every link, form
and refresh the page makes (cookieless: pages live in shops' iframes); the browser's
`Accept-Language`; the merchant's default language; English.

Adding a language is one catalogue (`checkout/translations/<id>/LC_MESSAGES/messages.po`)
and one line in NAMES. A language listed without a catalogue is not offered (it would show
English under another name); a catalogue whose compiled form is missing or older than its
source is compiled when the app starts, with a warning, so it is never missing at run time.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, get_decimal_symbol, get_group_symbol
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, format_datetime, get_locale, refresh
from sqlalchemy import select
from werkzeug.wrappers import Request

log = logging.getLogger(__name__)

TRANSLATIONS = Path(__file__).parent / "translations"
# Every language the site speaks, by Babel locale id, with its name in itself (the picker
# shows it so: a reader finds their language without reading the current one).
NAMES = {
    "en": "English",
    "de": "Deutsch",
    "es": "Español",
    "fr": "Français",
    "pt_BR": "Português (Brasil)",
    "ru": "Русский",
    "tr": "Türkçe",
    "zh_Hans": "简体中文",
    "ja": "日本語",
    "ar": "العربية",
}
LANGUAGES = list(NAMES)
RTL = {"ar", "fa", "he", "ur"}
# Chinese asked for in these forms is Traditional: Simplified is not offered in its place.
_TRADITIONAL = {"hant", "tw", "hk", "mo"}
_TAG = re.compile(r"[A-Za-z]{1,8}([-_][A-Za-z0-9]{1,8}){0,4}")


def tag(locale_id: str) -> str:
    """The BCP 47 form of a locale id, as `lang=` attributes and `?lang=` links carry it."""
    return locale_id.replace("_", "-")


def match(asked: str | None, languages: list[str]) -> str | None:
    """The served language for a tag a customer or browser asked for, or None.

    Exact first (`pt-BR`, `pt_br`, `zh-Hans`), then the tag shortened subtag by subtag
    (`de-AT` is German), then a language whose primary subtag it is (`zh-CN` and `zh` are
    Simplified Chinese, `pt-PT` is Portuguese) unless that would put Simplified Chinese in
    place of Traditional.
    """
    if not asked or not _TAG.fullmatch(asked):
        return None
    wanted = asked.replace("_", "-").lower()
    served = {tag(code).lower(): code for code in languages}
    parts = wanted.split("-")
    for end in range(len(parts), 0, -1):
        found = served.get("-".join(parts[:end]))
        if found:
            return found
    if parts[0] == "zh" and _TRADITIONAL & set(parts[1:]):
        return None
    for code in languages:
        if tag(code).lower().split("-")[0] == parts[0]:
            return code
    return None


def asked_language() -> str | None:
    """The language this request asked for by `?lang=` (the shop's link, the picker, or a
    link of our own carrying it over), as served; None when it asked for none we serve."""
    if not has_request_context():
        return None
    return match(request.args.get("lang"), current_app.config["LANGUAGES"])


def select_locale() -> str:
    if not has_request_context():
        return "en"  # the worker (writing page models, which are language-free)
    return choose(request, current_app.config["LANGUAGES"], merchant_language)


def choose(asking: Request, languages: list[str],
           merchant: Callable[[], str | None]) -> str:
    """The language a request is answered in: its `?lang=`, else the browser's first served
    choice, else the merchant's default (asked only then), else English. Also used before
    Flask runs (front.py), so it reads only the request it is given."""
    chosen = match(asking.args.get("lang"), languages)
    if chosen:
        return chosen
    for asked, _quality in asking.accept_languages:
        chosen = match(asked, languages)
        if chosen:
            return chosen
    return match(merchant(), languages) or "en"


def merchant_language() -> str | None:
    """The default language of the merchant whose page (or link) this request is about.

    Asked only when neither `?lang=` nor the browser decided. A route that knows its merchant
    sets `g.merchant_language`; a page route is found by its id with one small query.
    """
    if "merchant_language" in g:
        return g.merchant_language
    page_id = (request.view_args or {}).get("page_id")
    language = None
    from .models import Merchant, Page, is_page_token

    if is_page_token(page_id):
        from . import db

        language = db.session().scalar(
            select(Merchant.language).join(Page, Page.merchant_id == Merchant.client_id)
            .where(Page.id == page_id))
    g.merchant_language = language
    return language


def use_merchant_language(language: str | None) -> None:
    """A route that learnt its merchant (a verified terminal link) answers in the merchant's
    default where the request itself chose none."""
    g.merchant_language = language
    refresh()


def carry_language(endpoint: str, values: dict[str, Any]) -> None:
    """Every URL the site builds while serving a `?lang=` request carries it: the page's
    links, its forms' actions, its refresh, the status it polls, the receipt. No cookie."""
    if endpoint == "static" or values.get("lang") is not None:
        return
    chosen = asked_language()
    if chosen:
        values["lang"] = tag(chosen)


def text_direction(locale: str) -> str:
    return "rtl" if locale.split("_")[0] in RTL else "ltr"


def language_links() -> list[dict[str, Any]]:
    """The picker: this page in each language, as plain links (no script needed).

    The current path and query are kept (a terminal link's data and signature too), with
    `lang` replaced; a page answered to a form post links to the page itself.
    """
    from urllib.parse import urlencode

    path = request.path
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    if request.method not in ("GET", "HEAD"):
        page_id = (request.view_args or {}).get("page_id")
        path, args = (f"/p/{page_id}", []) if page_id else ("/", [])
    current = str(get_locale())
    return [{"code": code, "tag": tag(code), "name": native_name(code),
             "href": path + "?" + urlencode([*args, ("lang", tag(code))]),
             "current": code == current}
            for code in current_app.config["LANGUAGES"]]


def native_name(code: str) -> str:
    if code in NAMES:
        return NAMES[code]
    try:
        return str(Locale.parse(code).get_display_name(code) or code)
    except (ValueError, UnknownLocaleError):
        return code


# ---------------------------------------------------------------- numbers and dates


@cache
def symbols(locale: str) -> tuple[str, str, int]:
    """The locale's decimal mark, group mark, and the fewest integer digits that get grouped
    (CLDR: Spanish writes 1234 but 12 345; most write 1,234)."""
    decimal, group = get_decimal_symbol(locale), get_group_symbol(locale)
    grouped = group in format_decimal(1234, locale=locale)
    return decimal, group, 4 if grouped else 5


def number(value: Any, locale: str | None = None) -> str:
    """A decimal string in the locale's marks, every digit kept: 1234.50000000 is
    1.234,50000000 in German. Anything that is not a plain decimal comes back untouched,
    so nothing is ever rounded, shortened or invented."""
    text = "" if value is None else str(value)
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", text):
        return text
    decimal, group, min_digits = symbols(locale or str(get_locale() or "en"))
    sign = "-" if text.startswith("-") else ""
    whole, _dot, fraction = text.lstrip("-").partition(".")
    if len(whole) >= min_digits:
        head = len(whole) % 3 or 3
        whole = group.join([whole[:head]] + [whole[i:i + 3] for i in range(head, len(whole), 3)])
    return sign + whole + (decimal + fraction if fraction else "")


def number_format() -> dict[str, Any]:
    """The same marks for the page's script, so what it fills in reads as the server's."""
    decimal, group, min_digits = symbols(str(get_locale() or "en"))
    return {"decimal": decimal, "group": group, "min": min_digits}


def moment(value: Any) -> str:
    """An ISO timestamp (UTC, as the page model has it) in the locale's long form."""
    text = "" if value is None else str(value)
    try:
        when = datetime.fromisoformat(text.removesuffix("Z"))
    except ValueError:
        return text
    return str(format_datetime(when, "long"))


# ---------------------------------------------------------------- catalogues


def catalogue_languages(folder: Path, candidates: list[str]) -> list[str]:
    """The candidates that can be served: English, and those with a catalogue in `folder`
    (compiled now if its compiled form is missing or older than its source)."""
    served: list[str] = []
    missing: list[str] = []
    for code in candidates:
        messages = folder / code / "LC_MESSAGES"
        po, mo = messages / "messages.po", messages / "messages.mo"
        if po.exists() and (not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime):
            compile_catalogue(po, mo)
        (served if code == "en" or mo.exists() else missing).append(code)
    if missing:
        log.warning("languages listed without a catalogue in %s, not offered: %s",
                    folder, ", ".join(missing))
    return served


def compile_catalogue(po: Path, mo: Path) -> None:
    """What `make translations` does for one catalogue, written atomically (several
    workers may start at once)."""
    log.warning("compiling %s at start-up: `make translations` did not run", po)
    with open(po, encoding="utf-8") as source:
        catalog = read_po(source, locale=po.parent.parent.name)
    handle, temporary = tempfile.mkstemp(dir=po.parent, suffix=".mo.tmp")
    try:
        with os.fdopen(handle, "wb") as target:
            write_mo(target, catalog)
        os.replace(temporary, mo)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    if "LANGUAGES" not in app.config:
        folder = Path(app.config["BABEL_TRANSLATION_DIRECTORIES"])
        app.config["LANGUAGES"] = catalogue_languages(folder, LANGUAGES)
    Babel(app, locale_selector=select_locale)
    app.url_defaults(carry_language)
    app.add_template_filter(number, "number")
    app.add_template_filter(moment, "moment")
    app.add_template_global(language_links)
    app.add_template_global(number_format)
    app.add_template_global(tag, "language_tag")
