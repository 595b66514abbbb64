"""Languages: which one a request is served in, how that choice follows the customer, and how
numbers and dates read in it.

The choice, first match wins: `?lang=`; the same `?lang=` carried over on every link, form
and refresh the page makes (cookieless: pages live in shops' iframes); the browser's
`Accept-Language`; the merchant's default language; English.

Adding a language is one catalogue (`checkout/translations/<id>/LC_MESSAGES/messages.po`)
and one line in NAMES. A language listed without a catalogue is not offered (it would show
English under another name); a catalogue whose compiled form is missing or older than its
source is compiled when the app starts, with a warning, so it is never missing at run time.
Reading the choice from the request in flight (and the picker's links) is web/language.py's;
`choose` here decides on whatever request it is given (the front asks before Flask runs).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import tempfile
import threading
import weakref
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, get_decimal_symbol, get_group_symbol
from flask_babel import format_datetime, get_locale, get_translations
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header
from werkzeug.wrappers import Request

from . import memo

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

    Every page view asks it (the merchant's default language, a `?lang=`): the few tags
    asked are each matched once per process (a tag is at most 44 characters: `_TAG`).
    """
    if not asked:
        return None
    return _matched(asked, tuple(languages))


@memo.kept_when_short(44, 1024)
def _matched(asked: str, languages: tuple[str, ...]) -> str | None:
    if not _TAG.fullmatch(asked):
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


def choose(asking: Request, languages: list[str],
           merchant: Callable[[], str | None]) -> str:
    """The language a request is answered in: its `?lang=`, else the browser's first served
    choice, else the merchant's default (asked only then), else English. Also used before
    Flask runs (web/front.py), so it reads only the request it is given."""
    # `args.get` of a name not there raises and catches an exception: asked only if any.
    asked = asking.args.get("lang") if asking.args else None
    return (match(asked, languages) or browser_choice(asking, languages)
            or match(merchant(), languages) or "en")


def browser_choice(asking: Request, languages: list[str]) -> str | None:
    """The browser's first choice (Accept-Language, best first) that the site speaks.
    Browsers send the same few headers again and again: each is read once per process."""
    header = asking.environ.get("HTTP_ACCEPT_LANGUAGE")
    return first_served(header, tuple(languages)) if header else None


@memo.kept_when_short(256, 4096)
def first_served(header: str, languages: tuple[str, ...]) -> str | None:
    for asked, _quality in parse_accept_header(header, LanguageAccept):
        chosen = match(asked, list(languages))
        if chosen:
            return chosen
    return None


def text_direction(locale: str) -> str:
    return "rtl" if locale.split("_")[0] in RTL else "ltr"


def native_name(code: str) -> str:
    if code in NAMES:
        return NAMES[code]
    try:
        return str(Locale.parse(code).get_display_name(code) or code)
    except (ValueError, UnknownLocaleError):
        return code


# ---------------------------------------------------------------- texts


def per_language(build: Callable[[], dict[str, str]]) -> Callable[[], dict[str, str]]:
    """`build`'s texts (gettext alone decides them), made once per catalogue in use and
    copied after: a page's labels are dozens of lookups each, and every lookup finds the
    request's translations anew. Keyed by the translations object itself, which Flask-Babel
    keeps per language and app; weakly, so an app's catalogues go with it."""
    made: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()
    lock = threading.Lock()

    @functools.wraps(build)
    def texts() -> dict[str, str]:
        translations = get_translations()
        found = made.get(translations)
        if found is None:
            found = build()
            with lock:
                made[translations] = found
        return dict(found)

    return texts


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
