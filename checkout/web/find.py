"""Find my payment: a customer who lost their payment page gets its link back by giving what
their wallet shows, a transaction id or the address they paid (services/find_payment.py).

Only an exact match answers with links; every miss gets one and the same neutral message,
whatever was typed: nothing tells a guess that came close from one that did not, nor names
a shop, an amount or a state. The form posts, so what was typed stays out of server logs,
browser history and Referer headers. Rate limited per client address (RATELIMIT_FIND).
"""

from __future__ import annotations

from flask import Blueprint, Flask, make_response, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from .. import db, urls
from ..services import find_payment
from . import forms
from .customer import no_store

bp = Blueprint("find", __name__)


@bp.get("/find")
def form() -> ResponseReturnValue:
    return answer(forms.FindForm(formdata=None))


@bp.post("/find")
def search() -> ResponseReturnValue:
    try:
        query = find_payment.parse(request.form.get("text"), request.form.get("tag"))
    except find_payment.BadQuery as refused:
        # Not shown again: a text refused for its characters or length is no help to see.
        return answer(forms.FindForm(formdata=None), error=problem_text(refused), status=400)
    form = forms.FindForm()
    form.text.data, form.tag.data = query.text, query.tag  # as searched: stripped
    found = find_payment.find(db.session(), query)
    return answer(form, searched=True, links=[link_to(page_id) for page_id in found])


def link_to(page_id: str) -> dict[str, str]:
    """The page's link (in this request's language), and its address to keep, plain."""
    href = url_for("pages.show", page_id=page_id)
    return {"href": href, "shown": urls.public_base() + href.partition("?")[0]}


def problem_text(refused: find_payment.BadQuery) -> str:
    if refused.problem == find_payment.BadQuery.EMPTY:
        return _("Please enter a transaction ID or an address.")
    if refused.problem == find_payment.BadQuery.TOO_LONG:
        if refused.field == "tag":
            return _("The tag or memo is too long (at most %(num)d characters).",
                     num=find_payment.MAX_TAG)
        return _("This is too long for a transaction ID or an address (at most %(num)d "
                 "characters).", num=find_payment.MAX_TEXT)
    return _("Please paste only the transaction ID or the address: the text contains "
             "invisible or control characters.")


def answer(form: forms.FindForm, *, searched: bool = False,
           links: list[dict[str, str]] | None = None, error: str | None = None,
           status: int = 200) -> ResponseReturnValue:
    html = render_template("find.html", form=form, searched=searched, links=links or [],
                           error=error, max_text=find_payment.MAX_TEXT,
                           max_tag=find_payment.MAX_TAG, max_links=find_payment.MAX_LINKS)
    # What a customer typed and the pages it found are payment data: never kept.
    return no_store(make_response(html, status))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # FindForm says why it carries no token: the session-bound check stands aside for it.
    forms.exempt_from_session_csrf(app, search)
