"""Deliveries and flagged callbacks in the back office: the lists, each merchant's webhook
health, and the acts (retry one, replay many after a preview, pause and resume).

Filters live in the URL, so a link reproduces the view. An act answers 303 back to the list
with what happened in the query (`done`), the back office having no flash cookie.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import abort, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ... import clock, db, roles
from ...services import delivery_health
from ...services import flagged as flagged_news
from .base import (
    BadFilter,
    bp,
    client_address,
    id_filter,
    merchant_or_404,
    render,
    requires,
    signed,
)

# Ids are positive and fit a signed 64-bit column; anything else is no id.



def _date(name: str) -> date | None:
    value = request.values.get(name, "")
    if value == "":
        return None
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise BadFilter(name) from None


def _state() -> str | None:
    value = request.values.get("state", "")
    if value == "":
        return None
    if value not in delivery_health.STATES:
        raise BadFilter("state")
    return value


def _delivery_filter() -> delivery_health.Filter:
    return delivery_health.Filter(state=_state(), merchant_id=id_filter("merchant"),
                                  since=_date("from"), until=_date("to"))


def _actor() -> delivery_health.Actor:
    who = signed()
    return delivery_health.Actor(who.user.id, who.user.email, client_address())


def _back(merchant_id: int | None, **done: Any) -> ResponseReturnValue:
    return redirect(url_for("console.deliveries", merchant=merchant_id, **done), code=303)


def state_names() -> dict[str, str]:
    return {delivery_health.FAILING: _("Failing"), delivery_health.GIVEN_UP: _("Given up"),
            delivery_health.WAITING: _("Waiting"), delivery_health.DELIVERED: _("Delivered")}


@bp.route("/deliveries")
@requires(roles.READ)
def deliveries() -> ResponseReturnValue:
    who = signed()
    allowed = who.access.merchants(roles.READ)
    session = db.session()
    try:
        chosen = _delivery_filter()
        after = id_filter("after")
    except BadFilter:
        return render("console/deliveries.html", error=_("That filter is not valid."),
                      chosen=delivery_health.Filter(), listing=None, health=[],
                      merchants=flagged_news.merchant_choices(session, allowed),
                      states=state_names(), done=None, can_act=set()), 400
    listing = delivery_health.listing(session, allowed, chosen, after)
    health = delivery_health.health(session, allowed, clock.now(), chosen.merchant_id)
    can_act = {h.merchant_id for h in health
               if who.access.can(roles.DELIVERIES, h.merchant_id)}
    can_act |= {r.merchant_id for r in listing.rows
                if who.access.can(roles.DELIVERIES, r.merchant_id)}
    return render("console/deliveries.html", error=None, chosen=chosen, listing=listing,
                  health=health, merchants=flagged_news.merchant_choices(session, allowed),
                  states=state_names(), done=request.args.get("done"),
                  count=request.args.get("count", ""), can_act=can_act)


@bp.route("/deliveries/<int:delivery_id>/retry", methods=["POST"])
@requires(roles.DELIVERIES)
def delivery_retry(delivery_id: int) -> ResponseReturnValue:
    who = signed()
    session = db.session()
    try:
        merchant_id = delivery_health.merchant_of(session, who.access.merchants(roles.READ),
                                                  delivery_id)
    except LookupError:
        abort(404)
    merchant_or_404(merchant_id, roles.DELIVERIES)
    try:
        attempt = delivery_health.retry(session, who.access.merchants(roles.DELIVERIES),
                                        delivery_id, _actor())
    except delivery_health.Busy:
        return _back(merchant_id, done="busy")
    return _back(merchant_id, done="retried" if attempt.ok else "retry_failed")


def _replay_filter() -> delivery_health.Filter:
    chosen = _delivery_filter()
    if chosen.merchant_id is None or chosen.state is None:
        raise BadFilter("merchant")
    return chosen


@bp.route("/deliveries/replay")
@requires(roles.DELIVERIES)
def deliveries_replay() -> ResponseReturnValue:
    """The confirmation step: how many a replay of this filter would send, before it does."""
    who = signed()
    try:
        chosen = _replay_filter()
    except BadFilter:
        abort(400, description=_("Choose a merchant and a state to replay."))
    assert chosen.merchant_id is not None
    merchant_or_404(chosen.merchant_id, roles.DELIVERIES)
    session = db.session()
    count = delivery_health.replay_count(session, who.access.merchants(roles.DELIVERIES),
                                         chosen)
    names = flagged_news.merchant_choices(session, [chosen.merchant_id])
    return render("console/replay.html", chosen=chosen, count=count,
                  bound=delivery_health.REPLAY_BOUND, states=state_names(),
                  merchant_name=names[0][1] if names else "",
                  changed=request.args.get("changed") == "1")


@bp.route("/deliveries/replay", methods=["POST"])
@requires(roles.DELIVERIES)
def deliveries_replay_confirm() -> ResponseReturnValue:
    who = signed()
    try:
        chosen = _replay_filter()
        confirmed = int(request.values.get("count", ""))
    except (BadFilter, ValueError):
        abort(400)
    assert chosen.merchant_id is not None
    merchant_or_404(chosen.merchant_id, roles.DELIVERIES)
    try:
        done = delivery_health.replay(db.session(), who.access.merchants(roles.DELIVERIES),
                                      chosen, confirmed, _actor())
    except (delivery_health.CountChanged, delivery_health.TooMany):
        db.session().rollback()
        # Back to the preview with the count as it is now: nothing was re-opened.
        dates: dict[str, Any] = {"from": chosen.since, "to": chosen.until}
        return redirect(url_for("console.deliveries_replay", merchant=chosen.merchant_id,
                                state=chosen.state, changed=1, **dates), code=303)
    return _back(chosen.merchant_id, done="replayed", count=done)


def _set_paused(merchant_id: int, paused: bool) -> ResponseReturnValue:
    merchant_or_404(merchant_id, roles.DELIVERIES)
    try:
        changed = delivery_health.set_paused(
            db.session(), signed().access.merchants(roles.DELIVERIES), merchant_id, paused,
            _actor())
    except LookupError:
        abort(404)
    done = ("paused" if paused else "resumed") if changed else "unchanged"
    return _back(merchant_id, done=done)


@bp.route("/deliveries/merchants/<int:merchant_id>/pause", methods=["POST"])
@requires(roles.DELIVERIES)
def deliveries_pause(merchant_id: int) -> ResponseReturnValue:
    return _set_paused(merchant_id, True)


@bp.route("/deliveries/merchants/<int:merchant_id>/resume", methods=["POST"])
@requires(roles.DELIVERIES)
def deliveries_resume(merchant_id: int) -> ResponseReturnValue:
    return _set_paused(merchant_id, False)


# ---------------------------------------------------------------------------------------------
# Flagged callbacks

# The fixed reasons the site gives when it keeps a callback without applying it.
def flag_reasons() -> dict[str, str]:
    return {
        "tag differs from the tag we issued for this address":
            _("The tag differs from the tag we issued for this address."),
        "address differs from the address of our invoice":
            _("The address differs from the address of our invoice."),
        "tag differs from the tag of our invoice":
            _("The tag differs from the tag of our invoice."),
        "transaction id was seen before at another address":
            _("The transaction ID was seen before at another address."),
        "currency differs from the currency of our address":
            _("The currency differs from the currency of our address."),
        "currency sent differs from the currency of our address":
            _("The currency sent differs from the currency of our address."),
        "currency of the transaction differs from the currency of our address":
            _("The transaction's currency differs from the currency of our address."),
        "cross-currency deposit: not the currency our address was issued for":
            _("A cross-currency deposit: not the currency our address was issued for."),
        "foreign_id differs from the foreign_id of our address":
            _("The foreign_id differs from the foreign_id of our address."),
        "foreign_id differs from the foreign_id of our invoice":
            _("The foreign_id differs from the foreign_id of our invoice."),
    }


def what_was_done(row: flagged_news.Row) -> tuple[str, str | None]:
    """(what the site did, why) for one flagged callback, in the reader's language."""
    if row.outcome == "duplicate":
        return _("Ignored"), _("A replay: this news was applied before.")
    if row.outcome == "not_ours":
        return (_("Forwarded only"),
                _("An address or invoice this site never issued: nothing of ours changed."))
    why = None
    if row.flag:
        if row.flag.startswith("malformed: "):
            why = _("Malformed: %(detail)s", detail=row.flag.removeprefix("malformed: "))
        else:
            why = flag_reasons().get(row.flag, row.flag)
    if row.outcome == "applied":
        return _("Applied"), why
    return _("Stored only, not applied"), why


@bp.route("/flagged")
@requires(roles.READ)
def flagged() -> ResponseReturnValue:
    who = signed()
    allowed = who.access.merchants(roles.READ)
    session = db.session()
    try:
        chosen = flagged_news.Filter(merchant_id=id_filter("merchant"), since=_date("from"),
                                until=_date("to"))
        after = id_filter("after")
    except BadFilter:
        return render("console/flagged.html", error=_("That filter is not valid."),
                      chosen=flagged_news.Filter(), listing=None, done_of=what_was_done,
                      merchants=flagged_news.merchant_choices(session, allowed)), 400
    listing = flagged_news.listing(session, allowed, chosen, after)
    return render("console/flagged.html", error=None, chosen=chosen, listing=listing,
                  done_of=what_was_done, merchants=flagged_news.merchant_choices(session, allowed))

