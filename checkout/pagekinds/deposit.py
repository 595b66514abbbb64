"""The deposit page kind: its state from the processor's transactions, its model, its words.

A deposit page's status follows the processor transactions (`Deposit` rows, written by the
callbacks) that reached its address at or after the page was opened. It only moves forward:
a final state is never left for a non-final one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.orm import Session, SessionTransaction, attributes

from .. import clock, currencies, db, i18n, limits, money, policies, rates, refund_rules
from ..models import Deposit, Merchant, Page
from ..states import CANCELLED, CONFIRMED, FAILED, OPEN_DEPOSIT, SEEN, WAITING
from .base import PageModel, mark
from .present import (
    REFUSED_BELOW_MINIMUM,
    asset_of,
    fiat_places,
    payment_uri,
    short,
    support_lines,
    testnet,
)
from .present import transaction_line as _line

log = logging.getLogger(__name__)

# Deposit page statuses, in the order a payment goes through them (FAILED: invoices only).
DEPOSIT_STATUSES = (WAITING, SEEN, CONFIRMED, CANCELLED)

# Reasons: what a status means for the customer's money.
UNDERPAID = "underpaid"  # confirmed, short of the amount asked: not final, the rest may come
OVERPAID = "overpaid"  # confirmed, more than asked: final, the shop holds the difference
# Confirmed, short by no more than the merchant's tolerance (policies.py): paid, final; the
# page keeps what was missing (`Page.shortfall`) and the shop is told (payment_news.py).
SHORT_ACCEPTED = "short_accepted"
BELOW_MINIMUM = "below_minimum"  # cancelled: the processor refused a payment as too small
# Forward-only ranks of a transaction's status: a state moves only to a higher rank; equal
# final ranks never replace each other (the first final state the processor told us stays).
RANK = {SEEN: 0, CONFIRMED: 1, CANCELLED: 1}
FINAL = frozenset({CONFIRMED, CANCELLED})

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


def accept_short(state: State, amount: Decimal | None, tolerated: bool) -> State:
    """An underpaid state the merchant's tolerance covers becomes paid ("short_accepted")."""
    if state.status != CONFIRMED or state.reason != UNDERPAID or not tolerated \
            or amount is None:
        return state
    return State(CONFIRMED, SHORT_ACCEPTED, state.amount_paid)


def confirmed_total(deposits: Iterable[Deposit]) -> Decimal:
    """The confirmed money among `deposits`: what a tolerance or a refund is judged on."""
    total = Decimal(0)
    for deposit in deposits:
        value = stored_amount(deposit) if deposit.status == CONFIRMED else None
        total += value if value is not None else Decimal(0)
    return total


def amount_asked(page: Page) -> Decimal | None:
    return None if page.amount is None else Decimal(page.amount)


# In a transaction that refreshed an address's pages (`refresh_for_address`), each page and
# what was read for it, until the page's model is built from them at commit: the
# transactions of an address are read once per callback, not once for its state and again
# for its model, and the page is not read again either (the session holds loaded rows only
# while something refers to them). `forget_read` drops them before any write to deposits;
# a commit or rollback too.
READ = "checkout.deposit.read"


def forget_read(session: Session) -> None:
    session.info.pop(READ, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the transaction itself, not a savepoint, ended
        forget_read(session)


def page_deposits(session: Session, page: Page) -> Sequence[Deposit]:
    """The page's transactions, oldest first: those first seen at its address after it
    opened and before the next page on the same address opened.

    One address serves one customer across orders, so several pages may share it; each
    payment belongs to the newest page open when it was first seen, and to no other, so a
    payment is never counted on two pages.
    """
    if page.address_id is None:
        return []
    known = session.info.get(READ, {}).get(page.id)
    if known is not None:
        return known[1]
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


def recompute(session: Session, page: Page,
              deposits: Sequence[Deposit] | None = None) -> dict[str, Any]:
    """What brings one deposit page up to date with its transactions (`deposits`, when the
    caller read them already): the columns that change, and their values (none: nothing).
    The page itself is left as it is (`write_recomputed` writes them)."""
    amount = amount_asked(page)
    if deposits is None:
        deposits = page_deposits(session, page)
    state = state_of(amount, deposits)
    now = clock.now()
    confirmed = confirmed_total(deposits)
    # Once paid by tolerance a page stays paid: a later policy or rate does not un-pay it.
    tolerated = page.reason == SHORT_ACCEPTED or _short_tolerated(session, page, amount,
                                                                  confirmed, now)
    state = accept_short(state, amount, tolerated)
    if not may_move(page.status, page.reason, state.status):
        return {}
    after = {"status": state.status, "reason": state.reason,
             "amount_paid": money.text(state.amount_paid)}
    shortfall = (money.plain(amount - confirmed)
                 if state.reason == SHORT_ACCEPTED and amount is not None else None)
    if (page.status, page.reason, page.amount_paid) == tuple(after.values()):
        # What is confirmed of the same total may have moved: the shortfall follows it.
        return {} if shortfall == page.shortfall else {"shortfall": shortfall}
    changes: dict[str, Any] = {**after, "shortfall": shortfall, "updated_at": now}
    if state.status == CONFIRMED and state.final and page.paid_at is None:
        changes.update(payment_of(session, page, now))
    return changes


def _short_tolerated(session: Session, page: Page, amount: Decimal | None,
                     confirmed: Decimal, now: datetime) -> bool:
    """The merchant's tolerance, decided with the rate known now (as the page's fiat value
    is): no recent rate, no tolerance."""
    if amount is None or not 0 < confirmed < amount:
        return False
    merchant = session.get(Merchant, page.merchant_id)
    if merchant is None:
        return False
    policy = policies.of(merchant)
    if not policy.tolerates_underpayment:
        return False
    rate = rates.cached(session, page.currency, policy.currency,
                        fetched_since=now - timedelta(seconds=rates.SHOWN_MAX_AGE))
    return policies.short_tolerated(policy, amount, confirmed, rate)


def payment_of(session: Session, page: Page, now: datetime) -> dict[str, Any]:
    """When the page was paid and what the coin was worth then, kept for the receipt."""
    kept: dict[str, Any] = {"paid_at": now}
    if page.fiat_currency:
        rate = rates.cached(session, page.currency, page.fiat_currency,
                            fetched_since=now - timedelta(seconds=rates.SHOWN_MAX_AGE))
        kept["paid_rate"] = None if rate is None else money.text(rate)
    return kept


@dataclass(frozen=True)
class Refreshed:
    """The pages of an address after their transactions were read again."""

    pages: list[Page]
    # Those that became paid by the merchant's tolerance just now: the shop is told once.
    accepted_short: list[Page]


# The reads of `refresh_for_address`, built once: every callback that moves a page makes both
# (a statement built anew costs about as much as the ORM's work to run it).
ADDRESS_PAGES = (select(Page)
                 .where(Page.address_id == bindparam("address"), Page.kind == bindparam("kind"))
                 .order_by(Page.created_at, Page.id)
                 .with_for_update()
                 .execution_options(populate_existing=True))
ADDRESS_DEPOSITS = (select(Deposit)
                    .where(Deposit.address_id == bindparam("address"),
                           Deposit.created_at >= bindparam("since"))
                    .order_by(Deposit.created_at, Deposit.id))


def refresh_for_address(session: Session, address_id: int) -> Refreshed:
    """Recompute every deposit page of an address.

    Called by the callbacks after they store `Deposit` rows, inside their transaction
    (this function writes but never commits). Safe to call any number of times.

    The pages are locked before their transactions are read: two callbacks about different
    transactions at one address, applied at once on PostgreSQL, would otherwise each sum
    without the other's uncommitted row, and the later commit would overwrite the page
    with a total short of one payment. Locked, the second waits and then reads both.
    """
    pages = session.scalars(ADDRESS_PAGES, {"address": address_id, "kind": KIND.name}).all()
    read = deposits_by_page(session, address_id, pages)
    session.info[READ] = {page.id: (page, read[page.id]) for page in pages}
    accepted = []
    for page in pages:
        before = page.reason
        write_recomputed(session, page, recompute(session, page, read[page.id]))
        if page.reason == SHORT_ACCEPTED and before != SHORT_ACCEPTED:
            accepted.append(page)
    return Refreshed(list(pages), accepted)


_PAGES = db.table_of(Page)
_WRITES: dict[tuple[str, ...], Any] = {}


def write_recomputed(session: Session, page: Page, changes: dict[str, Any]) -> None:
    """Write a page's recomputed columns, and hold them in its loaded row as its committed
    state; its model is written at commit (`mark`), as after a flush of the ORM's. A
    statement built once per set of columns, on the session's connection: the ORM's unit
    of work for this one row was a ninth of a callback's time (measured)."""
    if not changes:
        return
    mark(session, [page.id])
    names = tuple(changes)
    statement = _WRITES.get(names)
    if statement is None:
        statement = _WRITES[names] = (
            update(_PAGES).where(_PAGES.c.id == bindparam("page"))
            .values({name: bindparam(f"to_{name}") for name in names}))
    session.connection().execute(statement, {
        "page": page.id, **{f"to_{name}": value for name, value in changes.items()}})
    for name, value in changes.items():
        attributes.set_committed_value(page, name, value)


def deposits_by_page(session: Session, address_id: int,
                     pages: Sequence[Page]) -> dict[str, list[Deposit]]:
    """`page_deposits` of every page of an address (`pages`, in (created_at, id) order), in
    one read: each page's window ends where the next page's begins."""
    by_page: dict[str, list[Deposit]] = {page.id: [] for page in pages}
    if not pages:
        return by_page
    deposits = session.scalars(ADDRESS_DEPOSITS, {"address": address_id,
                                                  "since": pages[0].created_at}).all()
    # page_deposits' `next_opened`: the pages are in (created_at, id) order, so the first of
    # those after a page is the next one; its window ends where the next one's begins.
    windows = [(page, pages[index + 1].created_at if index + 1 < len(pages) else None)
               for index, page in enumerate(pages)]
    for deposit in deposits:
        for page, end in windows:
            if page.created_at <= deposit.created_at and (end is None
                                                          or deposit.created_at < end):
                by_page[page.id].append(deposit)
                break
    return by_page


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
# Underpaid, and the customer asked for what they sent back instead of paying the rest.
PHASE_REFUNDING = "refunding"  # the refund is on its way (asked, approved, sent)
PHASE_REFUNDED = "refunded"  # the refund reached the chain
PAYING_PHASES = frozenset({PHASE_WAITING, PHASE_PARTIAL})


def deposit_model(session: Session, page: Page, now: datetime,
                  refund: dict[str, Any] | None = None) -> PageModel:
    """The JSON model of a deposit page: what `/status` answers and what the HTML renders from.

    Everything a customer can act on (the QR, the wallet link, the amount and its copy
    button) carries `amount_due`: what to send now, never the full amount again once part
    of it arrived.
    """
    asset = asset_of(page.currency, translate=False)
    amount = amount_asked(page)
    paid = Decimal(page.amount_paid or "0")
    deposits = page_deposits(session, page)
    final = is_final(page.status, page.reason)
    minimum = limits.minimum_payment(session, page.currency)
    test = testnet()
    phase = phase_of(page.status, page.reason, amount, paid,
                     refunding={str(r["state"]) for r in (refund or {}).get("refunds", [])})
    due = amount_due(amount, paid, minimum, asset.decimals) if phase in PAYING_PHASES else None
    rest = _rest(amount, paid, asset.decimals)
    # What the minimum makes the customer send beyond the rest (said, in coin and fiat).
    extra = due - rest if rest and due is not None and due > rest else None
    transactions = [_transaction(d, test) for d in deposits]
    receipt = _receipt(page, paid)
    model: PageModel = {
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
        "test_network": test,
        "amount": short(amount, asset.decimals),
        "amount_paid": money.plain(paid),
        "amount_due": short(due, asset.decimals),
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
                                   due if due else None, testnet=test),
        "confirmations_required": currencies.confirmations_required(page.currency),
        "transactions": transactions,
        "receipt": receipt,
        "return_url": page.url_back if final else None,
        "form": None,
        "refund_note": False,
        "invoice": None,
        "support": support_lines(
            final=final, page_id=page.id, reference=page.foreign_id, currency=page.currency,
            asked=short(amount, asset.decimals),
            paid=money.plain(paid), address=page.address, tag=page.tag,
            transactions=transactions, opened_at=page.created_at,
            paid_at=receipt["paid_at"] if receipt else None),
        "refund": refund,
    }
    if page.reason == SHORT_ACCEPTED and page.shortfall:
        # Beyond the contract, only when it applies: what the shop's tolerance let pass.
        model["shortfall"] = money.plain(Decimal(page.shortfall))
    return model


def may_owe(page: Page) -> bool:
    """Only confirmed money beyond or short of the amount is ever owed back (owed.py); a page
    ever in such a state keeps it (forward-only), so its refunds stay shown."""
    return page.status == CONFIRMED and page.reason in (OVERPAID, UNDERPAID)


def phase_of(status: str, reason: str | None, amount: Decimal | None, paid: Decimal,
             refunding: set[str] | frozenset[str] = frozenset()) -> str:
    """`refunding`: the states of the page's refunds. An underpaid page whose customer asked
    for their money back instead of paying the rest stops asking for the rest."""
    if status == CONFIRMED and reason == UNDERPAID and refunding & refund_rules.CHOSEN:
        return (PHASE_REFUNDING if refunding & refund_rules.IN_FLIGHT
                else PHASE_REFUNDED)
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


def _rest(amount: Decimal | None, paid: Decimal, places: int) -> Decimal | None:
    if amount is None:
        return None
    return money.ceil(max(amount - paid, Decimal(0)), places)


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
    places = fiat_places(page.fiat_currency)
    value: dict[str, str | None] = {
        "currency": page.fiat_currency,
        "amount": money.text(money.ceil(amount * rate, places), places),
        "due": None if due is None else money.text(money.ceil(due * rate, places), places),
        "rate": money.plain(rate),
    }
    if extra is not None:  # what the minimum asks beyond the rest, only when it does
        value["extra"] = money.text(money.ceil(extra * rate, places), places)
    return value


def _receipt(page: Page, paid: Decimal) -> dict[str, str | None] | None:
    """What a paid page proves: when, how much, and what it was worth then."""
    if page.paid_at is None or page.status != CONFIRMED:
        return None
    fiat_amount = None
    if page.paid_rate and page.fiat_currency:
        places = fiat_places(page.fiat_currency)
        fiat_amount = money.text(money.ceil(paid * Decimal(page.paid_rate), places), places)
    places = fiat_places(page.fiat_currency) if page.fiat_currency else 2
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


def _transaction(deposit: Deposit, testnet: bool) -> dict[str, Any]:
    amount = stored_amount(deposit)
    return _line(deposit.currency, deposit.txid, "?" if amount is None else money.plain(amount),
                 deposit.status, deposit.refusal, deposit.confirmations, testnet)


# ---------------------------------------------------------------------------------------------
# What each state means to the customer (also handed to the script, so it speaks our language)


@i18n.per_language
def status_labels() -> dict[str, str]:
    """Customer text per phase, translated, with `{placeholders}` that the page (server and
    script alike) fills from the model: one wording whoever renders it."""
    ph = {"paid": "{paid}", "due": "{due}", "over": "{over}", "ticker": "{ticker}",
          "shop": "{shop}", "minimum": "{minimum}", "rest": "{rest}", "extra": "{extra}",
          "extra_fiat": "{extra_fiat}", "fiat": "{fiat}", "shortfall": "{shortfall}"}
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
        # Not a phase: said under "paid" when the shop's tolerance accepted a small shortfall.
        "note:short_accepted": _("Payment accepted: %(shortfall)s %(ticker)s less than asked "
                                 "arrived, and %(shop)s accepted it.", **ph),
        PHASE_REFUNDING: _("You asked for your payment back, so nothing more needs to be "
                           "sent. The refund's progress is shown below."),
        PHASE_REFUNDED: _("Your payment was sent back to you. Nothing more needs to be sent."),
        # Not a phase: an overpaid page that offers (or made) the refund on the page itself.
        "overpaid:refund": _("Payment confirmed. You sent %(over)s %(ticker)s more than asked: "
                             "you can get the difference back below.", **ph),
        "overpaid:refund-asked": _("Payment confirmed. You sent %(over)s %(ticker)s more than "
                                   "asked: its refund is shown below.", **ph),
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


class DepositKind:
    """A deposit page: an address the customer pays to, its state the processor's
    transactions at it (refreshed by the news engine)."""

    name = "deposit"
    template = "deposit.html"
    open_states: tuple[str, ...] = OPEN_DEPOSIT
    final_states: frozenset[str] = FINAL
    ranks: Mapping[str, int] = RANK
    framable = False  # only a page opened for a frame (is_iframe) may be framed
    chooses_currency = False
    pays_again = True

    def is_final(self, status: str, reason: str | None) -> bool:
        return is_final(status, reason)

    def model(self, session: Session, page: Page, now: datetime,
              refund: dict[str, Any] | None = None) -> PageModel:
        return deposit_model(session, page, now, refund)

    def may_owe(self, page: Page) -> bool:
        return may_owe(page)

    def labels(self) -> dict[str, str]:
        return status_labels()


KIND = DepositKind()
