"""One payment's story (/console/payments/<page_id>) and the acts on it: resend the latest
event to the shop, ask the processor now, add a note. Each act is a POST answered with a 303
back to the story, whose `done` parameter names the confirmation shown (no session cookie
holds flashes)."""

from __future__ import annotations

from flask import abort, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ... import db, roles
from ...models import Page
from ...services import story
from . import refunds
from .base import bp, client_address, merchant_or_404, render, requires, signed


def _messages() -> dict[str, str]:
    """`done` words -> what the person reads (translated at the request's language)."""
    return {
        "resent": _("The latest event is queued for the shop again; it is signed and sent "
                    "like any other."),
        "waiting": _("A resend of this event is already waiting to be sent."),
        "nothing": _("The shop has not been sent any event of this payment yet."),
        "no_webhook": _("The merchant has no webhook address: nothing can be sent."),
        "asked": _("The processor was asked; its answer is at the end of the story."),
        "unavailable": _("The processor could not be asked now. Please try again later."),
        "noted": _("Your note is added."),
        "repeated": _("This note was added already."),
    }


def _note_errors() -> dict[str, str]:
    return {
        "empty": _("Please write a note."),
        "too_long": _("A note has at most %(count)d characters.", count=story.NOTE_MAX),
        "unreadable": _("This note contains characters that are not allowed."),
    }


def outcome_label(outcome: str) -> str:
    """What the site did with a callback or an answer, in words."""
    labels = {
        "applied": _("applied"),
        "stale": _("older than what we knew: not applied"),
        "duplicate": _("a replay: applied before"),
        "not_ours": _("not one of this site's payments: forwarded only"),
        "ignored": _("nothing to change"),
        "flagged": _("flagged, not applied"),
        "unreadable": _("unreadable"),
    }
    return labels.get(outcome, outcome)


def _page_or_404(page_id: str, capability: str) -> Page:
    """The page among those the person may read (404 otherwise, as for no page at all); 403
    when they may read it but not do `capability` there."""
    try:
        page = story.find(db.session(), page_id, signed().access.merchants(roles.READ))
    except story.NotFound:
        abort(404)
    merchant_or_404(page.merchant_id, capability)
    return page


def _actor() -> story.Actor:
    who = signed()
    return story.Actor(who.user.id, who.user.email, client_address())


def _back(page_id: str, done: str) -> ResponseReturnValue:
    return redirect(url_for("console.payment", page_id=page_id, done=done), 303)


@bp.route("/payments/<page_id>")
@requires(roles.READ)
def payment(page_id: str) -> ResponseReturnValue:
    return _show(page_id)


def _show(page_id: str, *, note: str = "", note_error: str | None = None,
          status: int = 200) -> ResponseReturnValue:
    page = _page_or_404(page_id, roles.READ)
    who = signed()
    told = story.load(db.session(), page.id, who.access.merchants(roles.READ),
                      testnet=bool(current_app.config["SANDBOX"]))
    done = request.args.get("done", "")
    return render("console/payment.html", story=told, done=_messages().get(done),
                  can_resend=who.access.can(roles.RESEND, page.merchant_id),
                  can_note=who.access.can(roles.NOTE, page.merchant_id),
                  note=note, note_error=note_error, note_max=story.NOTE_MAX,
                  outcome_label=outcome_label, refund_states=refunds.state_names(),
                  refund_causes=refunds.cause_names()), status


@bp.route("/payments/<page_id>/resend", methods=["POST"])
@requires(roles.RESEND)
def payment_resend(page_id: str) -> ResponseReturnValue:
    page = _page_or_404(page_id, roles.RESEND)
    try:
        story.resend(db.session(), page.id, signed().access.merchants(roles.RESEND), _actor())
    except story.Refused as refused:
        return _back(page.id, refused.reason)
    return _back(page.id, "resent")


@bp.route("/payments/<page_id>/ask", methods=["POST"])
@requires(roles.RESEND)
def payment_ask(page_id: str) -> ResponseReturnValue:
    page = _page_or_404(page_id, roles.RESEND)
    try:
        story.ask(db.session(), page.id, signed().access.merchants(roles.RESEND), _actor())
    except story.Refused as refused:
        return _back(page.id, refused.reason)
    return _back(page.id, "asked")


@bp.route("/payments/<page_id>/notes", methods=["POST"])
@requires(roles.NOTE)
def payment_note(page_id: str) -> ResponseReturnValue:
    page = _page_or_404(page_id, roles.NOTE)
    text = request.form.get("text", "")
    try:
        added = story.add_note(db.session(), page.id, signed().access.merchants(roles.NOTE),
                               _actor(), text)
    except story.Refused as refused:
        # Bad input loses nothing: the page comes back with the text as it was written.
        return _show(page.id, note=text[:story.NOTE_MAX * 2],
                     note_error=_note_errors()[refused.reason], status=400)
    return _back(page.id, "noted" if added else "repeated")
