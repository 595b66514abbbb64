"""Deposit page state and the page model: one function builds what the page and `/status` show.

A deposit page's status follows the processor transactions (`Deposit` rows, written by the
callbacks) that reached its address at or after the page was opened. It only moves forward:
a final state is never left for a non-final one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import clock, currencies, money, qr, rates, uris
from .models import Deposit, Page

log = logging.getLogger(__name__)

# Deposit page statuses, in the order a payment goes through them.
WAITING = "waiting"
SEEN = "not_confirmed"
CONFIRMED = "confirmed"
CANCELLED = "cancelled"
DEPOSIT_STATUSES = (WAITING, SEEN, CONFIRMED, CANCELLED)
FAILED = "failed"  # invoices only; their state is the invoice engineer's

UNDERPAID = "underpaid"

# A cancelled transaction (double spend) ends the page, but money that really arrives later
# on the same address must still be shown, seen or confirmed: the only moves out of a final
# state.
_FINAL_SUCCESSORS = {CONFIRMED: frozenset[str](), CANCELLED: frozenset({SEEN, CONFIRMED})}


@dataclass(frozen=True)
class State:
    """What a page's transactions add up to."""

    status: str
    reason: str | None
    amount_paid: Decimal

    @property
    def final(self) -> bool:
        return is_final(self.status, self.reason)


def is_final(status: str, reason: str | None) -> bool:
    """Confirmed in full, cancelled (or a failed invoice): the page stops polling and offers
    the way back."""
    if status == CONFIRMED:
        return reason != UNDERPAID
    return status in (CANCELLED, FAILED)


def amount_asked(page: Page) -> Decimal | None:
    return None if page.amount is None else Decimal(page.amount)


def page_deposits(session: Session, page: Page) -> Sequence[Deposit]:
    """The page's transactions, oldest first: those first seen at its address after it
    opened and before the next page on the same address opened.

    One address serves one customer across orders, so several pages may share it; each
    payment belongs to the newest page open when it was first seen, and to no other, so a
    payment is never counted on two pages.
    """
    if page.address_id is None:
        return []
    later = (Page.created_at > page.created_at) | (
        (Page.created_at == page.created_at) & (Page.id > page.id))
    next_opened = session.scalar(
        select(func.min(Page.created_at))
        .where(Page.address_id == page.address_id, Page.kind == page.kind, later))
    query = select(Deposit).where(Deposit.address_id == page.address_id,
                                  Deposit.created_at >= page.created_at)
    if next_opened is not None:
        query = query.where(Deposit.created_at < next_opened)
    return session.scalars(query.order_by(Deposit.created_at, Deposit.id)).all()


def state_of(amount: Decimal | None, deposits: Iterable[Deposit]) -> State:
    """Confirmed money decides; a transaction in flight is "seen"; only cancellations end it.

    With an amount asked, confirmed money short of it is `confirmed` with reason `underpaid`
    (not final: the rest may still come to the same address), unless the rest is already in
    flight: then the page is "seen", waiting for confirmation.
    """
    confirmed = Decimal(0)
    in_flight = Decimal(0)
    statuses = set()
    for deposit in deposits:
        statuses.add(deposit.status)
        value = money.from_processor(deposit.amount)
        if deposit.status == CONFIRMED:
            confirmed += value
        elif deposit.status == SEEN:
            in_flight += value
    paid = confirmed + in_flight
    if CONFIRMED in statuses:
        short = amount is not None and confirmed < amount
        if short and in_flight and amount is not None and paid >= amount:
            # The rest is already on its way: "send the rest" would ask to pay twice.
            return State(SEEN, None, paid)
        return State(CONFIRMED, UNDERPAID if short else None, paid)
    if SEEN in statuses:
        return State(SEEN, None, paid)
    if CANCELLED in statuses:
        return State(CANCELLED, CANCELLED, paid)
    return State(WAITING, None, paid)


def may_move(current: str, current_reason: str | None, new: str) -> bool:
    """Forward-only: a final state is left only for one of its listed successors."""
    if not is_final(current, current_reason):
        return True
    return new in _FINAL_SUCCESSORS.get(current, frozenset())


def recompute(session: Session, page: Page) -> bool:
    """Bring one deposit page up to date with its transactions; True when its status changed."""
    amount = amount_asked(page)
    state = state_of(amount, page_deposits(session, page))
    if not may_move(page.status, page.reason, state.status):
        return False
    before = (page.status, page.reason, page.amount_paid)
    page.status = state.status
    page.reason = state.reason
    page.amount_paid = money.text(state.amount_paid)
    if (page.status, page.reason, page.amount_paid) == before:
        return False
    page.updated_at = clock.now()
    return before[:2] != (page.status, page.reason)


def refresh_for_address(session: Session, address_id: int) -> list[Page]:
    """Recompute every deposit page of an address; returns the pages whose status changed.

    Called by the callbacks after they store `Deposit` rows, inside their transaction
    (this function flushes but never commits). Safe to call any number of times.

    The pages are locked before their transactions are read: two callbacks about different
    transactions at one address, applied at once on PostgreSQL, would otherwise each sum
    without the other's uncommitted row, and the later commit would overwrite the page
    with a total short of one payment. Locked, the second waits and then reads both.
    """
    pages = session.scalars(
        select(Page)
        .where(Page.address_id == address_id, Page.kind == "deposit")
        .order_by(Page.created_at, Page.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    changed = [page for page in pages if recompute(session, page)]
    session.flush()
    return changed


# ---------------------------------------------------------------------------------------------
# The page model (CONTRACT.md, "The page model")


def page_model(session: Session, page: Page, *, now: datetime | None = None) -> dict[str, Any]:
    """The JSON model of a page: what `/status` answers and what the HTML renders from."""
    asset = describe(page.currency)
    amount = amount_asked(page)
    paid = Decimal(page.amount_paid or "0")
    deposits = page_deposits(session, page)
    final = is_final(page.status, page.reason)
    now = now or clock.now()
    return {
        "id": page.id,
        "kind": page.kind,
        "status": page.status,
        "reason": page.reason,
        "final": final,
        "currency": page.currency,
        "address": page.address,
        "tag": page.tag,
        "network": asset.network,
        "amount": _amount_text(amount, asset.decimals),
        "amount_paid": money.text(paid, asset.decimals),
        "amount_due": _due(amount, paid, asset.decimals),
        "fiat": _fiat(session, page, amount, now),
        "seconds_left": _seconds_left(page.expires_at, now, final),
        "payment_uri": payment_uri(page.currency, page.address or "", page.tag, amount),
        "transactions": [_transaction(d, asset.decimals) for d in deposits],
        "return_url": page.url_back if final else None,
    }


def _amount_text(amount: Decimal | None, places: int) -> str | None:
    return None if amount is None else money.text(money.ceil(amount, places), places)


def _due(amount: Decimal | None, paid: Decimal, places: int) -> str | None:
    if amount is None:
        return None
    return money.text(money.ceil(max(amount - paid, Decimal(0)), places), places)


def _seconds_left(expires_at: datetime | None, now: datetime, final: bool) -> int | None:
    if expires_at is None or final:
        return None
    return max(0, int((expires_at - now).total_seconds()))


def _fiat(session: Session, page: Page, amount: Decimal | None,
          now: datetime) -> dict[str, str] | None:
    """Approximate value from the cached rate only: a poll never reaches the processor.
    An old quote shows no value rather than a wrong one."""
    if amount is None or not page.fiat_currency:
        return None
    rate = rates.cached(session, page.currency, page.fiat_currency,
                        fetched_since=now - timedelta(seconds=rates.SHOWN_MAX_AGE))
    if rate is None:
        return None
    places = currencies.fiat_places(page.fiat_currency) if currencies.is_fiat(
        page.fiat_currency) else 2
    return {
        "currency": page.fiat_currency,
        "amount": money.text(money.ceil(amount * rate, places), places),
        "rate": money.text(rate),
    }


def _transaction(deposit: Deposit, places: int) -> dict[str, Any]:
    return {
        "txid": deposit.txid,
        "amount": money.text(money.from_processor(deposit.amount), places),
        "status": deposit.status,
        "confirmations": deposit.confirmations,
    }


# ---------------------------------------------------------------------------------------------
# Currencies, payment URIs and QR images, as the page needs them


@dataclass(frozen=True)
class Asset:
    """What the page says about a currency: its wallet name, network, tag name and places."""

    code: str
    network: str
    tag_label: str | None
    decimals: int
    # What the payer's wallet calls it: USDTT and USDTE are both "USDT", told apart by network.
    ticker: str


def describe(code: str) -> Asset:
    """Translated network and tag names; a currency dropped after the page opened still shows."""
    info = currencies.get(code)
    if info is None:
        return Asset(code, code, None, 8, code)
    label = _(info.tag_label) if info.tag_label else None
    return Asset(code, _(info.network), label, info.decimals, info.ticker)


def deposit_places(code: str) -> int | None:
    """Decimal places of a currency customers can deposit; None when not supported."""
    info = currencies.get(code)
    return None if info is None else info.decimals


def is_conversion_currency(code: str) -> bool:
    return currencies.is_fiat(code) or currencies.is_supported(code)


def fiat_for(convert_to: str | None) -> str:
    """The fiat the approximate value is shown in: the conversion's, else the site's default."""
    if convert_to and currencies.is_fiat(convert_to):
        return convert_to
    return str(current_app.config.get("FIAT_CURRENCY", "EUR"))


def payment_uri(currency: str, address: str, tag: str | None, amount: Decimal | None) -> str:
    """The wallet URI; parts a wallet URI cannot carry leave the plain address instead."""
    try:
        return uris.payment_uri(currency, address, amount, tag=tag)
    except uris.UriError:
        log.warning("no payment URI for a %s page; the QR holds the address", currency)
        return address


# Schemes of the URIs `uris.payment_uri` builds; cash addresses name their own network.
WALLET_SCHEMES = frozenset(
    {c.uri_scheme for c in currencies.CURRENCIES.values() if c.uri_scheme}
    | {"bchtest", "bchreg"})


def wallet_link(uri: str) -> str | None:
    """The URI as a link target, or None when it is a bare address (TRON, BNB memo, ...).

    A bare address in an href is a relative URL: "Open in your wallet" would open a 404 page
    of this site. Only a scheme a wallet registers for ever reaches an href.
    """
    scheme, colon, rest = uri.partition(":")
    if not colon or not rest or scheme.lower() not in WALLET_SCHEMES:
        return None
    if scheme.lower() in ("http", "https") and not rest.startswith("//"):
        return None
    return uri


def qr_text_for(page: Page) -> str:
    amount = amount_asked(page)
    return uris.qr_text(payment_uri(page.currency, page.address or "", page.tag, amount))


def qr_image(text: str, fmt: str) -> tuple[bytes, str]:
    if fmt == "svg":
        return qr.svg(text, _("QR code with the payment address")), "image/svg+xml"
    return qr.png(text), "image/png"


# ---------------------------------------------------------------------------------------------
# What each state means to the customer (also handed to the script, so it speaks our language)


def status_labels() -> dict[str, str]:
    """Customer text per `status` or `status:reason`, translated; keys as the script reads them."""
    return {
        WAITING: _("Waiting for your payment."),
        SEEN: _("Payment seen, waiting for confirmation. You can close this page; "
                "the shop is told when it is confirmed."),
        CONFIRMED: _("Payment confirmed. Thank you!"),
        f"{CONFIRMED}:{UNDERPAID}": _("Part of the amount is confirmed. Please send the rest "
                                      "to the same address."),
        CANCELLED: _("The payment was cancelled by the network (for example, a double spend), "
                     "so no funds arrived. Please contact the shop."),
    }


def status_text(status: str, reason: str | None) -> str:
    labels = status_labels()
    return labels.get(f"{status}:{reason}") or labels.get(status) or status


def transaction_labels() -> dict[str, str]:
    return {
        SEEN: _("seen, waiting for confirmation"),
        CONFIRMED: _("confirmed"),
        CANCELLED: _("cancelled"),
    }
