"""Languages: Flask-Babel with ?lang=, then Accept-Language. Every customer string is wrapped.

Catalogues live in `checkout/translations/`; `make messages` extracts the template
`messages.pot` from `babel.cfg`.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, has_request_context, request
from flask_babel import Babel

TRANSLATIONS = Path(__file__).parent / "translations"
# Grows as translations land; right-to-left languages are listed in RTL.
LANGUAGES = ["en"]
RTL = {"ar", "fa", "he", "ur"}


def select_locale() -> str | None:
    if not has_request_context():
        return None  # the worker (writing page models): the default language
    languages: list[str] = current_app.config["LANGUAGES"]
    asked = request.args.get("lang")
    if asked in languages:
        return asked
    return request.accept_languages.best_match(languages) or "en"


def text_direction(locale: str) -> str:
    return "rtl" if locale.split("_")[0] in RTL else "ltr"


def init_app(app: Flask) -> None:
    app.config.setdefault("LANGUAGES", LANGUAGES)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=select_locale)
