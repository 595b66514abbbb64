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

from . import clock, currencies, i18n, invoice_page, invoices, late, limits, money, qr, rates, uris
from .models import Deposit, Page
from .states import CANCELLED, CONFIRMED, FAILED, SEEN, WAITING

log = logging.getLogger(__name__)

# Deposit page statuses, in the order a payment goes through them (FAILED: invoices only).
DEPOSIT_STATUSES = (WAITING, SEEN, CONFIRMED, CANCELLED)

# Reasons: what a status means for the customer's money.
UNDERPAID = "underpaid"  # confirmed, short of the amount asked: not final, the rest may come
OVERPAID = "overpaid"  # confirmed, more than asked: final, the shop holds the difference
BELOW_MINIMUM = "below_minimum"  # cancelled: the processor refused a payment as too small
# Deposit.refusal values, read from the callback's `error`.
REFUSED_BELOW_MINIMUM = "below_minimum"

# A cancelled transaction (double spend) ends the page, but money that really arrives later
# on the same address must still be shown, seen or confirmed: the only moves out of a final
# state. A page paid in full may still learn that more arrived (overpaid).
_FINAL_SUCCESSORS = {CONFIRMED: frozenset({CONFIRMED}), CANCELLED: frozenset({SEEN, CONFIRMED})}


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
    flight: then the page is "seen", waiting for confirmation. More than asked is
    `confirmed`/`overpaid`. A page whose only payments were refused as too small says so.
    """
    confirmed = Decimal(0)
    in_flight = Decimal(0)
    statuses = set()
    refused_small = False
    for deposit in deposits:
        value = stored_amount(deposit)
        if value is None:
            continue  # never counted, never a broken page
        statuses.add(deposit.status)
        if deposit.status == CONFIRMED:
            confirmed += value
        elif deposit.status == SEEN:
            in_flight += value
        elif deposit.status == CANCELLED and deposit.refusal == REFUSED_BELOW_MINIMUM:
            refused_small = True
    paid = confirmed + in_flight
    if CONFIRMED in statuses:
        short = amount is not None and confirmed < amount
        if short and in_flight and amount is not None and paid >= amount:
            # The rest is already on its way: "send the rest" would ask to pay twice.
            return State(SEEN, None, paid)
        if short:
            return State(CONFIRMED, UNDERPAID, paid)
        over = amount is not None and confirmed > amount
        return State(CONFIRMED, OVERPAID if over else None, paid)
    if SEEN in statuses:
        return State(SEEN, None, paid)
    if CANCELLED in statuses:
        return State(CANCELLED, BELOW_MINIMUM if refused_small else CANCELLED, paid)
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
    now = clock.now()
    page.updated_at = now
    if state.status == CONFIRMED and state.final and page.paid_at is None:
        remember_payment(session, page, now)
    return before[:2] != (page.status, page.reason)


def remember_payment(session: Session, page: Page, now: datetime) -> None:
    """Keep when the page was paid and what the coin was worth then, for the receipt."""
    page.paid_at = now
    if page.fiat_currency:
        rate = rates.cached(session, page.currency, page.fiat_currency,
                            fetched_since=now - timedelta(seconds=rates.SHOWN_MAX_AGE))
        page.paid_rate = None if rate is None else money.text(rate)


def refresh_for_address(session: Session, address_id: int) -> list[Page]:
    """Recompute every deposit page of an address; returns them all.

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
    for page in pages:
        recompute(session, page)
    session.flush()
    return list(pages)


# ---------------------------------------------------------------------------------------------
# The page model (CONTRACT.md, "The page model")


# What the customer should do now, in one word: the page leads with it, and the script
# picks its text by it.
PHASE_WAITING = "waiting"  # nothing arrived yet: pay
PHASE_PARTIAL = "partial"  # part arrived: pay the rest, to the same address
PHASE_CONFIRMING = "confirming"  # enough is on its way: nothing more to send, wait
PHASE_PAID = "paid"
PHASE_OVERPAID = "overpaid"
PHASE_CANCELLED = "cancelled"
PHASE_BELOW_MINIMUM = "below_minimum"
PAYING_PHASES = frozenset({PHASE_WAITING, PHASE_PARTIAL})


def page_model(session: Session, page: Page, *, now: datetime | None = None) -> dict[str, Any]:
    """The JSON model of a page: what `/status` answers and what the HTML renders from.

    Everything a customer can act on (the QR, the wallet link, the amount and its copy
    button) carries `amount_due`: what to send now, never the full amount again once part
    of it arrived.
    """
    asset = describe(page.currency, translate=False)
    amount = amount_asked(page)
    paid = Decimal(page.amount_paid or "0")
    deposits = page_deposits(session, page)
    final = is_final(page.status, page.reason)
    now = now or clock.now()
    minimum = minimum_payment(session, page.currency)
    if page.kind == "invoice":
        return invoice_model(session, page, now)
    phase = phase_of(page.status, page.reason, amount, paid)
    due = amount_due(amount, paid, minimum, asset.decimals) if phase in PAYING_PHASES else None
    rest = _rest(amount, paid, asset.decimals)
    # What the minimum makes the customer send beyond the rest (said, in coin and fiat).
    extra = due - rest if rest and due is not None and due > rest else None
    testnet = bool(current_app.config.get("SANDBOX"))
    return {
        "id": page.id,
        "kind": page.kind,
        "status": page.status,
        "reason": page.reason,
        "final": final,
        "phase": phase,
        "pay_now": phase in PAYING_PHASES,
        "currency": page.currency,
        "address": page.address,
        "tag": page.tag,
        "network": asset.network,
        "test_network": testnet,
        "amount": _short(amount, asset.decimals),
        "amount_paid": money.plain(paid),
        "amount_due": _short(due, asset.decimals),
        # Set when what is left is less than the processor accepts in one payment: the
        # customer is asked for the minimum instead, and told why.
        "rest_below_minimum": (money.plain(rest) if rest and due is not None and due > rest
                               else None),
        "minimum_extra": None if extra is None else money.plain(extra),
        "amount_over": _over(phase, amount, paid),
        "minimum": None if minimum is None else money.plain(minimum),
        "fiat": _fiat(session, page, amount, due, now, extra),
        "seconds_left": _seconds_left(page.expires_at, now, final),
        "payment_uri": payment_uri(page.currency, page.address or "", page.tag,
                                   due if due else None, testnet=testnet),
        "confirmations_required": currencies.confirmations_required(page.currency),
        "transactions": [_transaction(d, asset.decimals, testnet) for d in deposits],
        "receipt": _receipt(page, paid),
        "return_url": page.url_back if final else None,
        # Beyond the contract: the form the page shows instead of pay instructions (invoice
        # currency picker, email), whether money that came in is refunded, the invoice.
        "form": None,
        "refund_note": False,
        "invoice": None,
    }


def invoice_model(session: Session, page: Page, now: datetime) -> dict[str, Any]:
    """An invoice page's model: the same keys, filled from the invoice and its quote."""
    asset = describe(page.currency, translate=False)
    part = invoice_page.model_part(session, page, now)
    invoice = invoice_page.invoice_of(session, page)
    testnet = bool(current_app.config.get("SANDBOX"))
    late.amend(session, invoice, invoices.current_quote(session, invoice.id) if invoice else None,
               part, testnet)
    amount = amount_asked(page)
    paid: Decimal = part.pop("amount_paid", None) or Decimal(0)
    due: Decimal | None = part.pop("amount_due", None)
    final = is_final(page.status, page.reason)
    phase = str(part["phase"])
    return {
        "id": page.id, "kind": page.kind, "status": page.status, "reason": page.reason,
        "final": final, "phase": phase, "pay_now": part["pay_now"],
        "currency": page.currency, "address": page.address, "tag": page.tag,
        "network": asset.network, "test_network": testnet,
        "amount": _short(amount, asset.decimals), "amount_paid": money.plain(paid),
        "amount_due": _short(due, asset.decimals), "rest_below_minimum": None,
        "minimum_extra": None,
        "amount_over": money.plain(paid - amount) if phase == PHASE_OVERPAID and amount
        else None,
        "minimum": None, "fiat": part.get("fiat"), "seconds_left": part.get("seconds_left"),
        "payment_uri": payment_uri(page.currency, page.address or "", page.tag, due or None,
                                   testnet=testnet) if page.address else "",
        "confirmations_required": currencies.confirmations_required(page.currency),
        "transactions": part.get("transactions", []), "receipt": part.get("receipt"),
        "return_url": part.get("return_url") if final else None,
        "form": part.get("form"), "refund_note": part.get("refund_note", False),
        "invoice": part.get("invoice"),
        # Money that arrived after the invoice closed (late.py), and whether the script
        # keeps asking about a final page (late money may still come, or confirm).
        "late": part.get("late"), "watch": part.get("watch", False),
    }


def phase_of(status: str, reason: str | None, amount: Decimal | None, paid: Decimal) -> str:
    if status == CANCELLED:
        return PHASE_BELOW_MINIMUM if reason == BELOW_MINIMUM else PHASE_CANCELLED
    if status == CONFIRMED and reason != UNDERPAID:
        return PHASE_OVERPAID if reason == OVERPAID else PHASE_PAID
    if amount is not None and paid >= amount:
        return PHASE_CONFIRMING  # everything asked for is seen, some of it not confirmed yet
    if status == SEEN and amount is None:
        return PHASE_CONFIRMING  # an open amount: the payment on its way is the payment
    return PHASE_PARTIAL if paid > 0 else PHASE_WAITING


def amount_due(amount: Decimal | None, paid: Decimal, minimum: Decimal | None,
               places: int) -> Decimal | None:
    """What to send now: the rest, rounded up to what the chain can carry, and never less
    than the processor's minimum (a smaller payment would be refused and lost)."""
    rest = _rest(amount, paid, places)
    if rest is None:
        return None
    if minimum is not None and 0 < rest < minimum:
        return money.ceil(minimum, places)
    return rest


def minimum_payment(session: Session, currency: str) -> Decimal | None:
    """The processor's smallest accepted payment in this currency, from the cache (never the
    network); None when unknown or when there is none."""
    minimum = limits.minimum(session, currency)
    return minimum if minimum else None


def _rest(amount: Decimal | None, paid: Decimal, places: int) -> Decimal | None:
    if amount is None:
        return None
    return money.ceil(max(amount - paid, Decimal(0)), places)


def _short(amount: Decimal | None, places: int) -> str | None:
    """Shortest exact text, rounded up to the chain's places: 0.012, not 0.012000000000000000."""
    return None if amount is None else money.plain(money.ceil(amount, places))


def _over(phase: str, amount: Decimal | None, paid: Decimal) -> str | None:
    if phase != PHASE_OVERPAID or amount is None or paid <= amount:
        return None
    return money.plain(paid - amount)


def _seconds_left(expires_at: datetime | None, now: datetime, final: bool) -> int | None:
    if expires_at is None or final:
        return None
    return max(0, int((expires_at - now).total_seconds()))


def _fiat(session: Session, page: Page, amount: Decimal | None, due: Decimal | None,
          now: datetime, extra: Decimal | None = None) -> dict[str, str | None] | None:
    """Approximate value from the cached rate only: a poll never reaches the processor.
    An old quote shows no value rather than a wrong one."""
    if amount is None or not page.fiat_currency:
        return None
    rate = rates.cached(session, page.currency, page.fiat_currency,
                        fetched_since=now - timedelta(seconds=rates.SHOWN_MAX_AGE))
    if rate is None:
        return None
    places = _fiat_places(page.fiat_currency)
    value: dict[str, str | None] = {
        "currency": page.fiat_currency,
        "amount": money.text(money.ceil(amount * rate, places), places),
        "due": None if due is None else money.text(money.ceil(due * rate, places), places),
        "rate": money.plain(rate),
    }
    if extra is not None:  # what the minimum asks beyond the rest, only when it does
        value["extra"] = money.text(money.ceil(extra * rate, places), places)
    return value


def _fiat_places(code: str) -> int:
    return currencies.fiat_places(code) if currencies.is_fiat(code) else 2


def _receipt(page: Page, paid: Decimal) -> dict[str, str | None] | None:
    """What a paid page proves: when, how much, and what it was worth then."""
    if page.paid_at is None or page.status != CONFIRMED:
        return None
    fiat_amount = None
    if page.paid_rate and page.fiat_currency:
        places = _fiat_places(page.fiat_currency)
        fiat_amount = money.text(money.ceil(paid * Decimal(page.paid_rate), places), places)
    places = _fiat_places(page.fiat_currency) if page.fiat_currency else 2
    return {
        "paid_at": page.paid_at.replace(microsecond=0).isoformat() + "Z",
        # A rate to read (48715.62), not the processor's 8 places: amounts stay exact.
        "rate": None if page.paid_rate is None else money.text(
            money.readable_rate(Decimal(page.paid_rate), places)),
        "fiat_currency": page.fiat_currency if fiat_amount else None,
        "fiat_amount": fiat_amount,
        "reference": page.foreign_id,
    }


def stored_amount(deposit: Deposit) -> Decimal | None:
    """A stored payment's amount; None for a value no currency can hold (logged): whatever
    was stored, the page stays readable."""
    try:
        return money.from_processor(deposit.amount)
    except money.AmountError:
        log.error("deposit %s has an unreadable amount; it is not counted", deposit.id)
        return None


def _transaction(deposit: Deposit, places: int, testnet: bool) -> dict[str, Any]:
    amount = stored_amount(deposit)
    return {
        "txid": deposit.txid,
        "amount": "?" if amount is None else money.plain(amount),
        "status": deposit.status,
        "refusal": deposit.refusal,
        "confirmations": deposit.confirmations,
        "explorer_url": currencies.explorer_url(deposit.currency, deposit.txid,
                                                testnet=testnet),
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
    # Whether the QR carries the amount; else the page says to type it in the wallet.
    qr_has_amount: bool = False
    # The one app that opens the payment link, when only one does (its button is named so).
    wallet_app: str | None = None


def describe(code: str, *, translate: bool = True) -> Asset:
    """Network and tag names (translated for a page, the English msgids for the stored
    model, which serves every language); a currency dropped after the page opened still
    shows."""
    info = currencies.get(code)
    if info is None:
        return Asset(code, code, None, 8, code)
    say = _ if translate else str
    label = say(info.tag_label) if info.tag_label else None
    return Asset(code, say(info.network), label, info.decimals, info.ticker,
                 info.qr_has_amount, info.wallet_app)


def coin_name(asset: Asset, code: str) -> str:
    """The coin as the heading names it: "USDT on TRON (TRC-20)" where the wallet's name alone
    (USDT) would fit another network too."""
    if currencies.shares_ticker(code):
        return _("%(ticker)s on %(network)s", ticker=asset.ticker, network=asset.network)
    return asset.ticker


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


def payment_uri(currency: str, address: str, tag: str | None, amount: Decimal | None, *,
                testnet: bool = False) -> str:
    """The wallet URI; parts a wallet URI cannot carry leave the plain address instead."""
    try:
        return uris.payment_uri(currency, address, amount, tag=tag, testnet=testnet)
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


def qr_text_for(model: dict[str, Any]) -> str:
    """What the page's QR holds: the model's link with the amount due now, or the bare
    address where wallets read no better form (uris.qr_content)."""
    return uris.qr_content(str(model.get("currency") or ""), str(model.get("address") or ""),
                           str(model.get("payment_uri") or ""))


def qr_image(text: str, fmt: str) -> tuple[bytes, str]:
    if fmt == "svg":
        return qr.svg(text, _("QR code with the payment address")), "image/svg+xml"
    return qr.png(text), "image/png"


# ---------------------------------------------------------------------------------------------
# What each state means to the customer (also handed to the script, so it speaks our language)


def status_labels() -> dict[str, str]:
    """Customer text per phase, translated, with `{placeholders}` that the page (server and
    script alike) fills from the model: one wording whoever renders it."""
    ph = {"paid": "{paid}", "due": "{due}", "over": "{over}", "ticker": "{ticker}",
          "shop": "{shop}", "minimum": "{minimum}", "rest": "{rest}", "extra": "{extra}",
          "extra_fiat": "{extra_fiat}", "fiat": "{fiat}"}
    return {
        PHASE_WAITING: _("Waiting for your payment."),
        PHASE_PARTIAL: _("%(paid)s %(ticker)s received. Please send %(due)s %(ticker)s more, "
                         "to the same address.", **ph),
        PHASE_CONFIRMING: _("Your payment of %(paid)s %(ticker)s is on its way and waiting for "
                            "confirmation. Nothing more needs to be sent.", **ph),
        PHASE_PAID: _("Payment confirmed. Thank you!"),
        PHASE_OVERPAID: _("Payment confirmed. You sent %(over)s %(ticker)s more than asked; "
                          "%(shop)s has received all of it. Contact the shop about the "
                          "difference.", **ph),
        PHASE_CANCELLED: _("The network cancelled this payment (for example, a double spend), "
                           "so no funds arrived. Please contact %(shop)s.", **ph),
        # The processor keeps a refused payment and sends nothing back by itself
        # (coinspaid-api.md §3: a "cancelled" callback, nothing more): the page promises no
        # refund, it says who can ask for one.
        PHASE_BELOW_MINIMUM: _("Your payment was refused because it is below the smallest "
                               "payment accepted for %(ticker)s (%(minimum)s %(ticker)s). It was "
                               "not credited to %(shop)s, and it is not sent back "
                               "automatically: please contact %(shop)s about it, with the "
                               "transaction below, before you pay again.", **ph),
        # Not phases: shown beside the amount when the rest is below the minimum.
        "note:minimum": _("The rest, %(rest)s %(ticker)s, is less than the smallest payment "
                          "accepted (%(minimum)s %(ticker)s), so you have to send %(due)s "
                          "%(ticker)s: %(extra)s %(ticker)s more than the rest. Everything you "
                          "send is credited to %(shop)s.", **ph),
        "note:minimum-fiat": _("The rest, %(rest)s %(ticker)s, is less than the smallest "
                               "payment accepted (%(minimum)s %(ticker)s), so you have to send "
                               "%(due)s %(ticker)s: %(extra)s %(ticker)s (about %(extra_fiat)s "
                               "%(fiat)s) more than the rest. Everything you send is credited "
                               "to %(shop)s.", **ph),
    }


def fill(template: str, values: dict[str, str]) -> str:
    """Put the model's values into a label, as checkout.js does."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def label_values(model: dict[str, Any], ticker: str, shop: str) -> dict[str, str]:
    """Amounts in the page language's marks, every digit kept (checkout.js does the same)."""
    minimum = model.get("minimum")
    fiat = model.get("fiat") or {}
    return {"paid": i18n.number(model["amount_paid"]),
            "due": i18n.number(model.get("amount_due") or ""),
            "over": i18n.number(model.get("amount_over") or ""), "ticker": ticker, "shop": shop,
            "minimum": i18n.number(minimum) if minimum else "?",
            "rest": i18n.number(model.get("rest_below_minimum") or ""),
            "extra": i18n.number(model.get("minimum_extra") or ""),
            "extra_fiat": i18n.number(fiat.get("extra") or ""),
            "fiat": str(fiat.get("currency") or "")}


def minimum_note(labels: dict[str, str], model: dict[str, Any], ticker: str, shop: str) -> str:
    """Why more than the rest is asked: with the fiat worth of the difference when known."""
    fiat = model.get("fiat") or {}
    key = "note:minimum-fiat" if fiat.get("extra") else "note:minimum"
    return fill(labels[key], label_values(model, ticker, shop))


def transaction_labels() -> dict[str, str]:
    return {
        SEEN: _("seen, waiting for confirmation"),
        CONFIRMED: _("confirmed"),
        CANCELLED: _("cancelled"),
        f"{CANCELLED}:{REFUSED_BELOW_MINIMUM}": _("refused: below the minimum"),
        # An invoice's earlier quote (its address was replaced by a fresh quote's).
        f"{SEEN}:{invoice_page.EARLIER}": _("on its way to an earlier address of this order"),
        f"{CONFIRMED}:{invoice_page.EARLIER}": _("arrived at an earlier address of this "
                                                 "order: not counted for it"),
    }
