"""The language of this request: its `?lang=`, carried on every URL the site builds while
serving it, else the browser's, else the merchant's default (i18n.choose, which decides on
the request it is given). Reading the request, and the picker's links, are here; the pure
choice, catalogues and number formats are i18n.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, get_locale, get_translations, refresh
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from .. import db, i18n
from ..models import Merchant, Page, is_page_token


def asked_language() -> str | None:
    """The language this request asked for by `?lang=` (the shop's link, the picker, or a
    link of our own carrying it over), as served; None when it asked for none we serve."""
    if not has_request_context():
        return None
    return i18n.match(request.args.get("lang"), current_app.config["LANGUAGES"])


def select_locale() -> str:
    if not has_request_context():
        return "en"  # the worker (writing page models, which are language-free)
    return i18n.choose(request, current_app.config["LANGUAGES"], merchant_language)


def merchant_language() -> str | None:
    """The default language of the merchant whose page (or link) this request is about.

    Asked only when neither `?lang=` nor the browser decided. A route that knows its merchant
    sets `g.merchant_language`; a page route is found by its id with one small query.
    """
    if "merchant_language" in g:
        return g.merchant_language
    page_id = (request.view_args or {}).get("page_id")
    language = None
    if is_page_token(page_id):
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


def bound_gettext() -> dict[str, Any]:
    """The templates' `gettext` (and `_`) and `ngettext` for one rendering, bound to the
    request's translations once: given in the template's context, they stand in for the
    app-wide ones, which find the request's translations anew at each of a page's dozens of
    strings. They do what Jinja's newstyle wrappers of those do, to the byte: the message
    marked safe where autoescaping is on, and always formatted with its variables."""
    translations = get_translations()
    # The catalogues are ours, as trusted as the templates (Jinja marks them safe alike);
    # the variables formatted into them are escaped by Markup's `%`.

    @pass_context
    def gettext(context: Context, string: str, **variables: Any) -> str:
        text = translations.ugettext(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704
        return text % variables

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, count: int,
                 **variables: Any) -> str:
        variables.setdefault("num", count)
        text = translations.ungettext(singular, plural, count)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704
        return text % variables

    return {"gettext": gettext, "ngettext": ngettext}


def carry_language(endpoint: str, values: dict[str, Any]) -> None:
    """Every URL the site builds while serving a `?lang=` request carries it: the page's
    links, its forms' actions, its refresh, the status it polls, the receipt. No cookie."""
    if endpoint == "static" or values.get("lang") is not None:
        return
    chosen = asked_language()
    if chosen:
        values["lang"] = i18n.tag(chosen)


def language_links() -> list[dict[str, Any]]:
    """The picker: this page in each language, as plain links (no script needed).

    The current path and query are kept (a terminal link's data and signature too), with
    `lang` replaced; a page answered to a form post links to the page itself, and any other
    answer to a post to its own path where that path is also read (find my payment): a
    language link never posts again.
    """
    path = request.path
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    if request.method not in ("GET", "HEAD"):
        page_id = (request.view_args or {}).get("page_id")
        path, args = (f"/p/{page_id}", []) if page_id else (
            path if answers_get(path) else "/", [])
    current = str(get_locale())
    return [{"code": code, "tag": i18n.tag(code), "name": i18n.native_name(code),
             "href": path + "?" + urlencode([*args, ("lang", i18n.tag(code))]),
             "current": code == current}
            for code in current_app.config["LANGUAGES"]]


def answers_get(path: str) -> bool:
    try:
        current_app.url_map.bind_to_environ(request.environ).match(path, method="GET")
    except HTTPException:
        return False
    return True


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(i18n.TRANSLATIONS))
    if "LANGUAGES" not in app.config:
        folder = Path(app.config["BABEL_TRANSLATION_DIRECTORIES"])
        app.config["LANGUAGES"] = i18n.catalogue_languages(folder, i18n.LANGUAGES)
    Babel(app, locale_selector=select_locale)
    app.url_defaults(carry_language)
    app.add_template_filter(i18n.number, "number")
    app.add_template_filter(i18n.moment, "moment")
    app.add_template_global(language_links)
    app.add_template_global(i18n.number_format)
    app.add_template_global(i18n.tag, "language_tag")
