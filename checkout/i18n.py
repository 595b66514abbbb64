"""Languages: Flask-Babel with ?lang=, then Accept-Language. Every customer string is wrapped."""

from __future__ import annotations

from flask import Flask, request
from flask_babel import Babel

# Grows as translations land; right-to-left languages are listed in RTL.
LANGUAGES = ["en"]
RTL = {"ar", "fa", "he", "ur"}


def select_locale() -> str | None:
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    return request.accept_languages.best_match(LANGUAGES) or "en"


def text_direction(locale: str) -> str:
    return "rtl" if locale.split("_")[0] in RTL else "ltr"


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
