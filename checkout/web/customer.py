"""Customer pages: Payment Terminal links in, the deposit page, its status and QR out.

Pages are cookieless and authorised by their unguessable id alone, so they work inside
third-party iframes. Only opening a link talks to the processor; the page and its status
read our database (and the page may refresh a stale cached rate).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy.orm import Session, joinedload
from werkzeug.exceptions import HTTPException

from .. import (
    clock,
    currencies,
    db,
    i18n,
    limits,
    merchants,
    money,
    terminal,
)
from ..models import Merchant, Page, is_page_token
from ..pagekinds import KINDS, PageModel, page_model, present, refund_view, snapshot
from ..pagekinds import invoice as invoice_kind
from ..services import invoice_steps, opening
from . import forms, language, link_front, pagecache, pagestore, qrimages, ratelimit, security

bp = Blueprint("pages", __name__)
log = logging.getLogger(__name__)


# ---------------------------------------------------------------- terminal links

# The status of each fault of a link: refused as malformed, from no shop we know, not the
# shop's signature, or asking for what we do not serve.
LINK_STATUS: dict[terminal.Fault, int] = {
    terminal.Fault.MALFORMED: 400,
    terminal.Fault.UNKNOWN_SHOP: 404,
    terminal.Fault.UNSIGNED: 403,
    terminal.Fault.UNSERVABLE: 422,
}


@bp.get("/")
def landing() -> ResponseReturnValue:
    if not request.args:
        return no_store(make_response(render_template("landing.html")))
    return open_terminal_link()


@bp.get("/terminal")
def terminal_link() -> ResponseReturnValue:
    return open_terminal_link()


@security.no_store_view  # the 303's Location names the page: never cached
def open_terminal_link() -> ResponseReturnValue:
    """Verify the link, take (or reuse) the address, open (or reopen) its page: 303 there.

    Links refused before their signature held count against the client's address; past the
    limit they get a 429. A link whose signature verifies is served whatever its address
    sent before: customers behind one carrier or office address share it with any bot."""
    ratelimit.front_refusal()
    if any(len(request.args.getlist(name)) > 1 for name in ("data", "signature")):
        ratelimit.count_refusal("links")
        return error_page(400, _("This payment link is damaged."))
    signature = request.args.get("signature")
    try:
        read = terminal.read_link(request.args.get("data"), signature)
        # A link clicked again: one SELECT finds its page and the merchants' version, and
        # the merchant comes from this process when it is kept at that version.
        found = (link_front.found_before(request.environ, read)
                 or link_front.find(db.session().execute, merchants.cache_of(current_app), read))
        link = terminal.verify_link(
            read, str(signature), merchant_of(read.client_id, found),
            currency_places=present.deposit_places,
            convert_supported=present.is_conversion_currency,
        )
    except terminal.LinkError as exc:
        if not exc.signed:
            ratelimit.count_refusal("links")
        return error_page(LINK_STATUS[exc.fault], exc.message, frame_origins=exc.frame_origins,
                          shop=exc.shop, back_url=exc.back_url)
    language.use_merchant_language(link.merchant.language)
    if found.reopens and found.page_id is not None:
        return redirect(page_url(found.page_id), 303)
    outcome = opening.open_link(db.session(), link, now=clock.now,
                                rates_max_age=int(current_app.config["RATES_MAX_AGE"]))
    if isinstance(outcome, opening.Opened):
        render_ahead(outcome.page_id)
        return redirect(page_url(outcome.page_id), 303)
    framing = link.merchant.frame_origins if link.is_iframe else []
    shop, back_url = link.merchant.shown_name, link.url_back
    if isinstance(outcome, opening.Refused):
        return below_minimum_page(outcome.below, frame_origins=framing, shop=shop,
                                  back_url=back_url)
    if isinstance(outcome, opening.NotPayable):
        return error_page(422, _("This payment cannot be made in this currency now. "
                                 "Please choose another way to pay at the shop."),
                          frame_origins=framing, shop=shop, back_url=back_url)
    return retry_page(frame_origins=framing, shop=shop, back_url=back_url)


def merchant_of(client_id: int, found: link_front.Found) -> Merchant | None:
    """The link's merchant: kept at the version the link's SELECT read, else read now."""
    if found.kept is not None:
        return found.kept.merchant()
    snapshot = merchants.snapshot_by_client_id(db.session(), client_id, found.version)
    return snapshot.merchant() if snapshot is not None else None


def page_url(page_id: str) -> str:
    """The page's path; a shop's `lang` on the link carries over (language.carry_language)."""
    return url_for("pages.show", page_id=page_id)


# ---------------------------------------------------------------- the page


# What a rendering of the page reads beside its row: its merchant and the merchant's logo.
SHOWN = (joinedload(Page.merchant).joinedload(Merchant.logo),)


def load_page(page_id: str, *, shown: bool = False) -> Page:
    """The page; `shown`: with what its rendering reads, in the same SELECT."""
    # Only a token's letters reach the database: PostgreSQL refuses a NUL in a string with
    # an error (a 500), and every unknown id must get the same plain 404.
    if not is_page_token(page_id):
        abort(404)
    page = db.session().get(Page, page_id, options=SHOWN if shown else ())
    if page is None:
        abort(404)
    return page


@bp.get("/p/<page_id>")
def show(page_id: str) -> ResponseReturnValue:
    """Reads our database only: the worker keeps the rates fresh, no page view asks. A view
    of a page whose state was rendered before is served from that rendering (pagecache.py)
    after one SELECT; front.py answers most such views before Flask runs."""
    ratelimit.front_refusal()
    if not is_page_token(page_id):
        abort(404)
    session = db.session()
    state = pagecache.state_of(session, page_id, request.environ)
    if state is None:
        abort(404)
    language.use_merchant_language(state.language)  # known now: no query of its own
    now = clock.now()
    found = page_rendering(session, page_id, state, now)
    g.frame_ancestors = found.frame_ancestors
    body, encoding = found.encoded(snapshot.unix(now), pagecache.takes_gzip(request))
    response = Response(body, mimetype="text/html")
    for name, value in encoding:
        if name == "Vary":
            response.vary.add(value)
        else:
            response.headers[name] = value
    return no_store(response)


def page_rendering(session: Session, page_id: str, state: Any, now: datetime
                   ) -> pagecache.Rendered:
    """The page's rendering for this request (its language and address): kept in this
    process, else rendered, kept and stored for every process (pagestore.py)."""

    def render(countdown: pagecache.Countdown) -> pagecache.Rendering:
        page = load_page(page_id, shown=True)
        model = snapshot.model_of(session, page, now)
        if model["final"] and "support" not in model:
            # Stored before final pages carried their support text, and never written
            # again (nothing changes a final page): built from the tables, rendered once.
            model = page_model(session, page, now)
        html = render_page(session, page, KINDS[page.kind].template, model=model,
                           countdown=countdown)
        return pagecache.Rendering(html, model.get("seconds_left"),
                                   snapshot.fiat_at(page) if model.get("fiat") else None,
                                   g.get("frame_ancestors"), page.model_json is not None,
                                   page.model_version)

    def share(found: pagecache.Rendered) -> tuple[str, str] | None:
        stored_variant = pagestore.variant(current_app, request)
        if stored_variant is None:
            return None
        digest = pagestore.store(session, state, page_id, stored_variant, found)
        return None if digest is None else (stored_variant, digest)

    return pagecache.rendered(state, page_id, pagecache.variant(str(get_locale()), request),
                              now, render, share)


def render_ahead(page_id: str) -> None:
    """Render the page, for every process, as the view this request sends the customer to
    will ask for it (its address, with this request's `?lang=`, and its browser's
    languages): a first click's or a currency pick's redirect then finds it made, and its
    first view costs one SELECT. Nothing when it is made already; never an error for the
    request it runs in (it is logged); run after that request's own work is committed."""
    session = db.session()
    if session.new or session.dirty or session.deleted:
        return  # nothing of the request's own may ride on the rendering's commit
    try:
        with page_view(page_id):
            shared = pagestore.variant(current_app, request)
            if shared is None:
                return
            kept = pagestore.kept_digest(current_app, page_id, shared)
            state = session.connection().execute(pagestore.STATE_AND_STORED_DIGEST, {
                "page_id": page_id, "variant": shared, "kept": kept}).first()
            if state is None:
                return
            current = pagestore.digest(current_app, state)
            if current in (state.stored_state, kept):
                return  # stored by another process, or kept here: made already
            language.use_merchant_language(state.language)
            page_rendering(session, page_id, state, clock.now())
    except Exception:
        session.rollback()
        log.exception("page %s could not be rendered ahead", page_id)


@contextmanager
def page_view(page_id: str) -> Iterator[None]:
    """This request's context turned into the page view its redirect leads to: GET of the
    page's path with this request's `?lang=` and headers, and a `g` of its own (the
    request's own is put back after)."""
    chosen = language.asked_language()
    environ = {**request.environ, "REQUEST_METHOD": "GET", "PATH_INFO": f"/p/{page_id}",
               "QUERY_STRING": f"lang={i18n.tag(chosen)}" if chosen else "",
               "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO()}
    environ.pop(pagecache.READ_STATE, None)
    own = vars(g._get_current_object())
    kept = dict(own)
    own.clear()
    try:
        with current_app.request_context(environ):
            yield
    finally:
        own.clear()
        own.update(kept)


@bp.get("/p/<page_id>/receipt")
def receipt(page_id: str) -> ResponseReturnValue:
    """A printable receipt of a paid page; before that, the page itself."""
    session = db.session()
    page = load_page(page_id)
    if snapshot.model_of(session, page)["receipt"] is None:
        return redirect(url_for("pages.show", page_id=page.id), 303)
    return no_store(make_response(render_page(session, page, "receipt.html")))


def render_page(session: Session, page: Page, template: str, *,
                pick_form: forms.PickForm | None = None,
                email_form: forms.EmailForm | None = None,
                form_error: str | None = None, model: PageModel | None = None,
                countdown: pagecache.Countdown | None = None,
                refund_form: forms.RefundForm | None = None, refund_error: str | None = None,
                refund_error_field: str | None = None) -> str:
    if model is None:
        model = snapshot.model_of(session, page)  # what the poll sends, to the byte
    kind = KINDS[page.kind]
    asset = present.asset_of(page.currency)
    framable = page.is_iframe or kind.framable
    if framable:
        g.frame_ancestors = page.merchant.frame_origins
    shop = page.merchant.shown_name
    labels = kind.labels()
    if kind.chooses_currency:
        pick_form = pick_form or invoice_pick_form(page, model)
        email_form = email_form or forms.EmailForm(page.id)
    return render_template(
        template, page=page, model=model, merchant=page.merchant, asset=asset,
        iframe=page.is_iframe, framable=framable,
        coin=present.coin_name(asset, page.currency),
        labels=labels, tx_labels=present.transaction_labels(),
        status_text=present.fill(labels.get(present.label_key(model))
                                 or labels.get(str(model["phase"])) or str(model["status"]),
                                 present.label_values(model, asset.ticker, shop)),
        again_form=(forms.AgainForm(page.id)
                    if kind.pays_again and page.amount is not None else None),
        pick_form=pick_form, email_form=email_form, form_error=form_error,
        refund_form=refund_form or (forms.RefundForm(page.id)
                                    if refund_view.offered(model.get("refund")) else None),
        cancel_form=(forms.RefundCancelForm(page.id)
                     if refund_view.states(model.get("refund")) & {"requested"} else None),
        refund_error=refund_error, refund_error_field=refund_error_field,
        noscript_refresh=noscript_refresh(model),
        countdown=countdown or pagecache.Countdown.of(model.get("seconds_left")),
        support_labels=present.support_labels(),
        **language.bound_gettext(),
    )


def invoice_pick_form(page: Page, model: PageModel,
                      formdata: Any = None) -> forms.PickForm:
    """The picker with the currencies the page offers as its only choices."""
    invoice = model.get("invoice") or {}
    form = forms.PickForm(page.id, formdata=formdata)
    form.currency.choices = [(str(o["currency"]), str(o["ticker"]))
                             for o in invoice.get("options", [])]
    return form


@bp.post("/p/<page_id>/pick")
def pick(page_id: str) -> ResponseReturnValue:
    """The customer picks (or changes, or re-quotes) the currency of an invoice, with their
    email where the shop gave none: then the processor invoice for it is made."""
    session = db.session()
    page = load_page(page_id)
    if not KINDS[page.kind].chooses_currency:
        abort(404)
    model = page_model(session, page)
    form = invoice_pick_form(page, model, formdata=request.form)
    invoice = invoice_kind.invoice_of(session, page)
    if invoice is None:
        abort(404)
    if not form.validate_on_submit():
        return page_with_error(session, page, 400, first_error(form), pick_form=form)
    step = invoice_steps.pick(page, invoice, str(form.currency.data),
                              str(form.email.data) if form.email.data else None)
    return after_step(session, page, step, pick_form=form)


@bp.post("/p/<page_id>/email")
def give_email(page_id: str) -> ResponseReturnValue:
    session = db.session()
    page = load_page(page_id)
    if not KINDS[page.kind].chooses_currency:
        abort(404)
    form = forms.EmailForm(page.id, formdata=request.form)
    if not form.validate_on_submit():
        return page_with_error(session, page, 400, first_error(form), email_form=form)
    return after_step(session, page, invoice_steps.give_email(page.id, str(form.email.data)))


def after_step(session: Session, page: Page, step: invoice_steps.Step,
               pick_form: forms.PickForm | None = None) -> ResponseReturnValue:
    """The page after a customer's step: itself, or with the step's error (the picker the
    customer filled is shown again when their email was missing)."""
    if isinstance(step, invoice_steps.EmailNeeded):
        return page_with_error(session, page, 400, _(
            "Please enter your email address before you pay: the payment processor needs it."),
            pick_form=pick_form)
    if isinstance(step, invoice_steps.EmailFixed):
        return page_with_error(session, page, 409, email_fixed_message())
    if isinstance(step, invoice_steps.QuoteRefused):
        return page_with_error(session, page, 422, _(
            "This currency cannot be used for this payment now (the amount may be below what "
            "it accepts). Please choose another one."))
    if isinstance(step, invoice_steps.Busy):
        return page_with_error(session, page, 503, _(
            "The payment service is busy. Nothing was charged. Please try again in a moment."))
    render_ahead(page.id)
    return redirect(url_for("pages.show", page_id=page.id), 303)


def email_fixed_message() -> str:
    return _("A payment for this order has already been seen, so the email address for "
             "refund instructions can no longer be changed.")


def first_error(form: forms.PageForm) -> str:
    for errors in form.errors.values():
        for error in errors:
            return str(error)
    return _("Please check your answer.")


def page_with_error(session: Session, page: Page, status: int, message: str,
                    **form: Any) -> Response:
    session.rollback()
    html = render_page(session, page, KINDS[page.kind].template, form_error=message, **form)
    return no_store(make_response(html, status))


def noscript_refresh(model: PageModel) -> int | None:
    """Seconds between refreshes of a page without JavaScript; None: never refresh.

    A refresh drops a text selection and a screen reader's place (WCAG 2.2.1), so it comes
    only while something can still change, and slowly; the page also has a "check again"
    link.
    """
    # A final page is left alone, unless money that came late is still confirming; a form
    # to fill is never reloaded under the customer's hands: what they chose or typed would
    # be lost. Sending it shows whatever changed meanwhile.
    late_money = model.get("watch") and model.get("late")
    # A refund on its way is followed like a payment. (The claim form stays on a page that
    # refreshes only where the rest may still be paid, an underpaid one: there the payment
    # arriving is what the customer waits for.)
    moving = refund_view.in_flight(model.get("refund"))
    if (model["final"] and not late_money and not moving) or model.get("form"):
        return None
    if moving and not model["pay_now"]:
        return int(current_app.config.get("NOSCRIPT_REFRESH_SEEN",
                                          current_app.config.get("NOSCRIPT_REFRESH", 60)))
    key = "NOSCRIPT_REFRESH" if model["pay_now"] else "NOSCRIPT_REFRESH_SEEN"
    default = 30 if model["pay_now"] else 60
    return int(current_app.config.get(key, current_app.config.get("NOSCRIPT_REFRESH", default)))


@bp.post("/p/<page_id>/again")
def pay_again(page_id: str) -> ResponseReturnValue:
    """"Make another payment" on a paid page: the same order's link moves to a fresh page
    on the same address. A form with a token bound to the page, so no other site can make
    a customer's browser do it."""
    session = db.session()
    page = load_page(page_id)
    form = forms.AgainForm(page.id)
    if not form.validate_on_submit():
        return error_page(400, _("This form has expired. Please reload the page and try again."),
                          frame_origins=page.merchant.frame_origins if page.is_iframe else None)
    return redirect(url_for("pages.show",
                            page_id=opening.pay_again(session, page, now=clock.now)), 303)


@bp.get("/p/<page_id>/status")
def status(page_id: str) -> ResponseReturnValue:
    """What front.py, in front of Flask, does not answer itself: a poll over its limit, a page
    without a stored model yet, a malformed id. Otherwise as there: one SELECT by primary
    key, and 304 to the script's If-None-Match when the model is unchanged."""
    ratelimit.front_refusal()
    if not is_page_token(page_id):
        abort(404)
    session = db.session()
    found = snapshot.read(session, page_id)
    if found is None:  # no model written yet (or no such page): built from the tables
        page = load_page(page_id)
        body = money.dumps(page_model(session, page)).encode()
        tag = snapshot.etag(body)
    else:
        body, tag = found
    if tag in request.if_none_match:
        response = Response(status=304)
    else:
        response = Response(body, mimetype="application/json")
    response.set_etag(tag)
    return no_store(response)


@bp.get("/p/<page_id>/qr.<fmt>")
def qr_image(page_id: str, fmt: str) -> ResponseReturnValue:
    """What front.py, in front of Flask, does not answer itself: an image over its limit, a
    page without a stored model yet, a malformed id. Otherwise the same answer."""
    ratelimit.front_refusal()
    if fmt not in qrimages.FORMATS:
        abort(404)
    if not is_page_token(page_id):
        abort(404)
    session = db.session()
    found = session.execute(qrimages.READ, {"page_id": page_id}).first()
    if found is None:
        abort(404)
    language.use_merchant_language(found.language)
    # The payment URI, currency and address are not moment-of-reading fields: the stored
    # text has them.
    model = (json.loads(found.model_json) if found.model_json
             else page_model(session, load_page(page_id)))
    image = qrimages.image(current_app, present.qr_text_for(model), fmt, str(get_locale()))
    if image.etag in request.if_none_match:
        response = Response(status=304)
    else:
        response = Response(image.body, content_type=image.content_type)
    response.set_etag(image.etag)
    # The QR carries the amount due now, which changes with every payment, and it is
    # payment data: never kept. The ETag still spares a repeated download.
    response.headers["Cache-Control"] = "no-store"
    if fmt == "svg":
        # The SVG's title is translated: a cached copy must not answer another language.
        response.vary.add("Accept-Language")
    return response


@bp.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    """Browsers ask for it on every page; the pages name their icon, this answers quietly."""
    response = Response(status=204)
    response.headers["Cache-Control"] = "public, max-age=604800"
    return response


# ---------------------------------------------------------------- responses


def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(status: int, message: str, *, frame_origins: list[str] | None = None,
               shop: str | None = None, back_url: str | None = None) -> Response:
    """`frame_origins`: the shop that signed an iframe link sees the error in its frame.
    `shop`, `back_url`: known once a link's signature held; the customer is never stranded."""
    framed = allow_framing(frame_origins)
    response = make_response(render_template("error.html", status=status, message=message,
                                             iframe=framed, shop=shop, back_url=back_url),
                             status)
    return no_store(response)


def below_minimum_page(below: limits.BelowMinimum, *, frame_origins: list[str],
                       shop: str, back_url: str | None) -> Response:
    known = currencies.get(below.currency)
    message = _("This amount is below the smallest payment the network accepts for "
                "%(currency)s (%(minimum)s). Please go back to the shop.",
                currency=known.ticker if known else below.currency,
                minimum=money.plain(below.minimum))
    return error_page(422, message, frame_origins=frame_origins, shop=shop, back_url=back_url)


def retry_page(*, frame_origins: list[str] | None = None, shop: str | None = None,
               back_url: str | None = None) -> Response:
    framed = allow_framing(frame_origins)
    response = make_response(render_template("retry.html", retry_url=request.full_path,
                                             iframe=framed, shop=shop, back_url=back_url), 503)
    response.headers["Retry-After"] = "5"
    return no_store(response)


def allow_framing(frame_origins: list[str] | None) -> bool:
    """Let these origins frame this response (security.py reads `g.frame_ancestors`)."""
    if not frame_origins:
        return False
    g.frame_ancestors = frame_origins
    return True


def customer_error(exc: HTTPException) -> ResponseReturnValue:
    """The HTML page of an error a customer route met (errors.py sends machines theirs)."""
    code = exc.code or 500
    messages = {
        404: _("This page does not exist. Please check the link from the shop."),
        405: _("This address cannot be used this way."),
        413: _("This form is too large to be sent. Please go back and try again."),
    }
    return error_page(code, messages.get(code, _("Something went wrong on our side. "
                                                 "Please try again in a moment.")))


def template_helpers() -> dict[str, Any]:
    return {"get_locale": get_locale, "text_direction": i18n.text_direction,
            "wallet_link": present.wallet_link, "minimum_note": present.minimum_note,
            "short_note": present.short_note,
            "refund_signature": refund_view.signature, "refund_moving": refund_view.in_flight}


def init_app(app: Flask) -> None:
    """Register the customer blueprint (errors.py answers its errors with customer_error)."""
    app.register_blueprint(bp)
    # The page's own forms check a token bound to the page (forms.PageCSRF), which works
    # without cookies in a shop's iframe; the session-bound check would refuse them there.
    forms.exempt_from_session_csrf(app, pay_again, pick, give_email)
    app.context_processor(template_helpers)
