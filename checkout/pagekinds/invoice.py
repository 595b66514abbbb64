"""The invoice page kind: its phase, what to pay now, the currencies on offer, the outcome in
plain words. It answers the same model keys as the deposit kind, so one template layout and
one script serve both.

The invoice's state itself is the invoice service's (`invoices`, moved forward by the
processor's callbacks); this module reads it: the Page row `invoices.sync_page` keeps in
step, the Invoice, and its quotes. The reads the service shares with the page (the current
quote, whether money was seen, the forward-only ranks) are defined here, below the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import currencies, i18n, merchants, money, rates, returns
from ..models import Invoice, InvoiceQuote, Merchant, Page, RateQuote
from ..states import CONFIRMED, CREATED, FAILED, PENDING, PROCESSING, UNPAID_INVOICE
from . import invoice_late
from .base import PageModel
from .deposit import PHASE_OVERPAID, amount_asked, is_final
from .deposit import status_labels as deposit_labels
from .present import (
    EARLIER,
    asset_of,
    payment_uri,
    short,
    support_lines,
    testnet,
    transaction_line,
)

# Invoice statuses (also its page's): open while money may come, final once decided, and
# their forward-only ranks (equal final ranks never replace each other).
OPEN = frozenset({CREATED, PENDING, PROCESSING})
FINAL = frozenset({CONFIRMED, FAILED})
RANK = {CREATED: 0, PENDING: 1, PROCESSING: 2, CONFIRMED: 3, FAILED: 3}

# Invoice phases beyond the deposit page's (waiting, partial, confirming, paid, overpaid).
PHASE_CHOOSE = "choose"  # no currency yet: the customer picks one
PHASE_EMAIL = "email"  # the processor needs an email before the address is shown
PHASE_REQUOTE = "requote"  # no shop timer, the rate ran out unpaid: a fresh quote in one click
PHASE_EXPIRED = "expired"  # the time to pay ran out, nothing paid
PHASE_UNDERPAID = "underpaid"  # less than asked arrived in time: the processor returns it
PHASE_TIMEOUT = "timeout"  # the payment stayed unconfirmed too long: the shop decides
PHASE_CANCELLED = "cancelled_by_shop"
PHASE_LATE = "late"  # money arrived after the invoice failed: settled on the page
PHASE_SHORT = "short"  # less than asked is on its way: it fails unless more arrives
FORM_PHASES = frozenset({PHASE_CHOOSE, PHASE_EMAIL, PHASE_REQUOTE})
PAY_PHASES = frozenset({"waiting", "partial"})
# Where money came in that the processor returns (it emails the payer how), the page says
# so. Late money is not among them: it is settled on the page (invoice_late.py).
REFUND_PHASES = frozenset({PHASE_UNDERPAID, "overpaid"})

_FAILED_PHASES = {"expired": PHASE_EXPIRED, "underpaid": PHASE_UNDERPAID,
                  "timeout": PHASE_TIMEOUT, "cancelled": PHASE_CANCELLED, "late": PHASE_LATE}
# Options on the currency picker, at most: a page is no catalogue.
MAX_OPTIONS = 24


@dataclass(frozen=True)
class Option:
    """A currency the customer may pay in, with about what it would cost."""

    currency: str
    ticker: str
    network: str
    amount: str | None


def invoice_of(session: Session, page: Page) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.page_id == page.id))


# An invoice made in the transaction under way, with its quotes: nothing else can have
# touched either before that transaction commits, so the page's model built in it takes
# them as the session holds them instead of reading them back (two round trips of a new
# invoice's one commit).
MADE = "checkout.invoice.made"


def made_in_transaction(session: Session, invoice: Invoice,
                        quotes: list[InvoiceQuote]) -> None:
    session.info[MADE] = (session.get_transaction(), invoice, list(quotes))


def invoice_and_quotes(session: Session, page: Page) -> tuple[Invoice | None,
                                                              list[InvoiceQuote]]:
    """The page's invoice and all its quotes (the current one among them), each read once,
    or as made in this very transaction (`made_in_transaction`)."""
    made = session.info.get(MADE)
    if made is not None:
        transaction, invoice, quotes = made
        if transaction is not None and transaction is session.get_transaction() \
                and invoice.page_id == page.id:
            return invoice, quotes
    invoice = invoice_of(session, page)
    return invoice, quotes_of(session, invoice.id) if invoice is not None else []


def current_quote(session: Session, invoice_id: int) -> InvoiceQuote | None:
    return session.scalar(select(InvoiceQuote).where(
        InvoiceQuote.invoice_id == invoice_id, InvoiceQuote.current.is_(True))
        .execution_options(populate_existing=True))


def quotes_of(session: Session, invoice_id: int) -> list[InvoiceQuote]:
    return list(session.scalars(select(InvoiceQuote).where(
        InvoiceQuote.invoice_id == invoice_id).order_by(InvoiceQuote.id)
        .execution_options(populate_existing=True)))


def paid_anything(quotes: list[InvoiceQuote]) -> bool:
    return any(Decimal(q.amount_paid or "0") > 0 or q.status in (PROCESSING, CONFIRMED)
               for q in quotes)


def payment_seen(quotes: list[InvoiceQuote]) -> bool:
    """Money reached, or is on its way to, one of these quotes: any transaction at all."""
    return paid_anything(quotes) or any(q.transactions for q in quotes)


def may_change_currency(invoice: Invoice, quotes: list[InvoiceQuote]) -> bool:
    """A customer may pick (again) while the invoice is open and none of its quotes saw a
    payment."""
    return invoice.status in (CREATED, PENDING) and not paid_anything(quotes)


def current_of(quotes: list[InvoiceQuote]) -> InvoiceQuote | None:
    """The quote on screen, of an invoice's quotes (`quotes_of`): as `current_quote` reads it."""
    return next((quote for quote in quotes if quote.current), None)


def return_url(invoice: Invoice, merchant: Merchant) -> str | None:
    """Where the final screen sends the customer, outcome appended and signed; None while open."""
    if invoice.status == CONFIRMED:
        url = invoice.url_success
    elif invoice.status == FAILED:
        url = invoice.url_failed
    else:
        return None
    return returns.signed_outcome(url, status=invoice.status, foreign_id=invoice.foreign_id,
                                  secret=merchant.api_secret)


def phase_of(invoice: Invoice, quote: InvoiceQuote | None, paid: Decimal,
             due: Decimal | None) -> str:
    if invoice.status == FAILED:
        if invoice.reason == "expired" and paid > 0:
            return PHASE_LATE
        return _FAILED_PHASES.get(invoice.reason or "", PHASE_EXPIRED)
    if invoice.status == CONFIRMED:
        asked = _decimal(quote.sender_amount) if quote is not None else None
        return "overpaid" if asked is not None and paid > asked else "paid"
    if quote is None or quote.status in ("new", "refused"):
        return PHASE_CHOOSE
    if quote.status == FAILED:
        return PHASE_REQUOTE if paid == 0 else PHASE_LATE
    if not invoice.email_user:
        return PHASE_EMAIL
    if invoice.status == PROCESSING or quote.status == PROCESSING:
        if due is not None and due > 0 and paid > 0 and invoice.type == "good_until_expired" \
                and quote.status != PROCESSING:
            return "partial"
        # An exchange's withdrawal fee makes this common: "nothing more needs to be sent"
        # would be untrue, the processor fails a short invoice.
        asked = _decimal(quote.sender_amount)
        if asked is not None and 0 < paid < asked:
            return PHASE_SHORT
        return "confirming"
    if paid > 0 and due is not None and due > 0:
        return "partial"
    if due == 0:
        return "confirming"
    return "waiting"


def model_part(session: Session, page: Page, now: datetime, invoice: Invoice | None,
               quotes: list[InvoiceQuote]) -> dict[str, Any]:
    """The invoice page's values for the shared page model's keys, and its own `invoice`,
    from the page's invoice and its quotes (read once by the caller)."""
    if invoice is None:  # a page row the service has not finished making
        return {"phase": PHASE_CHOOSE, "pay_now": False, "invoice": None}
    quote = current_of(quotes)
    earlier = [q for q in quotes if quote is None or q.id != quote.id]
    info = currencies.get(page.currency)
    places = info.decimals if info is not None else 8
    paid = arrived(quote)
    remaining = _decimal(quote.remaining_amount) if quote is not None else None
    due = None if remaining is None else money.ceil(max(remaining, Decimal(0)), places)
    phase = phase_of(invoice, quote, paid, due)
    pay_now = phase in PAY_PHASES
    merchant = merchants.in_transaction(session, invoice.merchant_id)  # no row when kept
    asked = _decimal(quote.sender_amount) if quote is not None else None
    return {
        "phase": phase,
        "pay_now": pay_now,
        "form": phase if phase in FORM_PHASES else None,
        "amount_due": due if pay_now else None,
        "amount_paid": paid,
        "seconds_left": _seconds_left(page, invoice, phase, now),
        "fiat": _invoice_value(invoice, page, due if pay_now else None),
        "transactions": _legs(quote, page.currency)
        + [leg for q in earlier for leg in _legs(q, q.sender_currency, refusal=EARLIER)],
        "receipt": _receipt(invoice, page, paid, asked),
        "return_url": (return_url(invoice, merchant)
                       if merchant is not None else None),
        "refund_note": phase in REFUND_PHASES,
        "invoice": {
            "title": invoice.title,
            "description": invoice.description,
            "amount": money.plain(Decimal(invoice.amount)),
            "currency": invoice.currency,
            "type": invoice.type,
            "reference": invoice.foreign_id,
            "email_needed": not invoice.email_user,
            # Where the processor sends its instructions to get money back, in full: the
            # payer gave it (or the shop, for them), and only in full can they see a typo.
            # Anyone holding the page's address reads it, as they read the page itself.
            "refund_email": invoice.email_user or None,
            # Once money is seen the email is fixed: its refund must not be redirected.
            "email_fixed": payment_seen(
                [q for q in (quote, *earlier) if q is not None]),
            # The quote on screen replaced one with another address: a payment may be on
            # its way there.
            "earlier_address": any(q.address for q in earlier),
            "over_fiat": _over_value(invoice, page, paid, asked) if phase == "overpaid"
            else None,
            "can_change_currency": (invoice.sender_currency is None
                                    and may_change_currency(invoice, quotes)),
            "options": [vars(o) for o in options(session, invoice, now)]
            if phase in (PHASE_CHOOSE, PHASE_REQUOTE) or pay_now and paid == 0 else [],
        },
    }


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def arrived(quote: InvoiceQuote | None) -> Decimal:
    """What reached the quote's address: the processor's own count (asked less what it still
    misses) or the sum of its transactions, whichever is more. The processor counts no more
    than it asked, so an overpayment shows only in the transactions; the page's headline
    never says less than its own list."""
    if quote is None:
        return Decimal(0)
    counted = _decimal(quote.amount_paid) or Decimal(0)
    legs = sum((Decimal(str(leg.get("amount", "0"))) for leg in quote.transactions
                if leg.get("transaction_type") != "exchange"), Decimal(0))
    return max(counted, legs)


def _seconds_left(page: Page, invoice: Invoice, phase: str, now: datetime) -> int | None:
    """The clock runs while the customer should act; once money is seen, it stops (the
    processor stretches the deadline to 24 hours)."""
    if phase not in PAY_PHASES and phase not in (PHASE_CHOOSE, PHASE_EMAIL):
        return None
    # The picker runs on the shop's timer; the email step (a quote the shop fixed) and the
    # pay screens on the quote's own.
    deadline = page.expires_at if phase in PAY_PHASES else invoice.release_at
    if phase == PHASE_EMAIL and page.expires_at is not None:
        deadline = page.expires_at
    if deadline is None:
        return None
    return max(0, int((deadline - now).total_seconds()))


def _invoice_value(invoice: Invoice, page: Page, due: Decimal | None) -> dict[str, Any] | None:
    """The invoice's own amount in its own currency: exact, not an estimate."""
    if page.amount is None or invoice.currency.upper() == page.currency.upper():
        return None
    asked = Decimal(page.amount)
    amount = Decimal(invoice.amount)
    places = currencies.fiat_places(invoice.currency) if currencies.is_fiat(
        invoice.currency) else 8
    rate = amount / asked if asked else None
    share = None if due is None or not asked else money.ceil(amount * due / asked, places)
    return {
        "currency": invoice.currency,
        "amount": money.text(amount, places),
        "due": None if share is None else money.text(share, places),
        "rate": None if rate is None else money.plain(money.ceil(rate, 8)),
    }


def _legs(quote: InvoiceQuote | None, currency: str, *, refusal: str | None = None
          ) -> list[dict[str, Any]]:
    if quote is None:
        return []
    legs = []
    for leg in quote.transactions:
        if leg.get("transaction_type") == "exchange":
            continue
        raw_txid = leg.get("txid")
        txid = raw_txid if isinstance(raw_txid, str) else None
        confirmations = leg.get("confirmations") or 0
        seen = quote.status == PROCESSING and not confirmations
        legs.append(transaction_line(
            currency, txid, money.plain(Decimal(str(leg.get("amount", "0")))),
            "not_confirmed" if seen else "confirmed", refusal, confirmations, testnet()))
    return legs


def _receipt(invoice: Invoice, page: Page, paid: Decimal, asked: Decimal | None
             ) -> dict[str, Any] | None:
    if invoice.status != CONFIRMED or asked is None:
        return None
    value = _invoice_value(invoice, page, None)
    places = _places(invoice.currency)
    return {
        "paid_at": invoice.updated_at.replace(microsecond=0).isoformat() + "Z",
        # A rate to read, not to compute with: the invoice's amounts stay exact.
        "rate": money.text(money.readable_rate(Decimal(value["rate"]), places))
        if value and value["rate"] else None,
        "fiat_currency": value["currency"] if value else None,
        # What arrived, at the invoice's own rate: more than the invoice if overpaid.
        "fiat_amount": money.text(_at_invoice_rate(invoice, paid, asked), places)
        if value else None,
        "reference": invoice.foreign_id,
    }


def _places(currency: str) -> int:
    return currencies.fiat_places(currency) if currencies.is_fiat(currency) else 8


def _at_invoice_rate(invoice: Invoice, coins: Decimal, asked: Decimal) -> Decimal:
    """`coins` of the quote's currency in the invoice's, at the rate the quote fixed."""
    places = _places(invoice.currency)
    return (Decimal(invoice.amount) * coins / asked).quantize(
        Decimal(1).scaleb(-places), ROUND_HALF_UP)


def _over_value(invoice: Invoice, page: Page, paid: Decimal, asked: Decimal | None
                ) -> str | None:
    """What the overpayment is worth in the invoice's currency, at the quote's rate."""
    if asked is None or not asked or invoice.currency.upper() == page.currency.upper():
        return None
    return money.text(_at_invoice_rate(invoice, paid - asked, asked), _places(invoice.currency))


def options(session: Session, invoice: Invoice, now: datetime) -> list[Option]:
    """Currencies that convert to the invoice's, with what each would cost, from the rates
    the worker keeps: a page view spends no `exchange/calculate` call (30 a minute per IP)."""
    amount = Decimal(invoice.amount)
    fresh_since = now - timedelta(seconds=rates.SHOWN_MAX_AGE)
    quotes = session.scalars(select(RateQuote).where(
        RateQuote.currency_to == invoice.currency.upper(),
        RateQuote.fetched_at >= fresh_since).order_by(RateQuote.currency_from)).all()
    found: list[Option] = []
    own = currencies.get(invoice.currency)
    if own is not None:  # a crypto invoice can be paid in its own coin
        found.append(Option(own.code, own.ticker, own.network,
                            money.plain(money.ceil(amount, own.decimals))))
    for quote in quotes:
        info = currencies.get(quote.currency_from)
        # A network that stopped (BNB Beacon) is never offered, even if the processor lists it.
        if (info is None or info.testnet or info.retired
                or (own is not None and info.code == own.code)):
            continue
        rate = Decimal(quote.rate)
        cost = money.plain(money.approx(amount / rate, info.decimals)) if rate > 0 else None
        found.append(Option(info.code, info.ticker, info.network, cost))
        if len(found) >= MAX_OPTIONS:
            break
    return found


@i18n.per_language
def phase_labels() -> dict[str, str]:
    """Customer text per invoice phase, with the page model's {placeholders}.

    Over- and underpayments of an invoice are the processor's to return: it emails the
    payer (`email_user`, shown as {email}) instructions to get the money back
    (coinspaid-api.md §4.5). Money after the invoice failed is not: it is settled on this
    page, so no text about it mentions an email."""
    ph = {"shop": "{shop}", "email": "{email}", "paid": "{paid}", "due": "{due}",
          "ticker": "{ticker}", "over": "{over}", "late": "{late}", "amount": "{amount}"}
    return {
        PHASE_CHOOSE: _("Choose the currency you want to pay with."),
        PHASE_EMAIL: _("Please enter your email address before you pay: the payment "
                       "processor needs it."),
        # What we know is what reached us: a payment may still be on its way.
        PHASE_REQUOTE: _("The time to pay at this rate ran out, and no payment has reached us "
                         "yet. If you have not paid, get a fresh quote to pay this order."),
        PHASE_EXPIRED: _("The time to pay ran out before any payment reached us. Please go back "
                         "to %(shop)s to start again. If you sent a payment anyway, do not send "
                         "it again: it will show on this page when it arrives, with what "
                         "happens next.", **ph),
        # Whether more sent now would count is not the processor's documented behaviour:
        # the words neither ask for more nor say that nothing more is needed.
        PHASE_SHORT: _("Your payment of %(paid)s %(ticker)s is on its way, but it is less than "
                       "the %(amount)s %(ticker)s asked. If no more arrives, this payment fails "
                       "and the payment processor emails %(email)s instructions to get back "
                       "what you sent.", **ph),
        PHASE_UNDERPAID: _("Less than asked arrived, so this payment failed. The payment "
                           "processor emails %(email)s instructions to get back what you sent.",
                           **ph),
        # The processor's facts say nothing of what becomes of such a payment: the shop does.
        PHASE_TIMEOUT: _("Your payment was not confirmed by the network in time, so this "
                         "payment failed. Contact %(shop)s with its transaction ID about what "
                         "happens to it.", **ph),
        PHASE_CANCELLED: _("%(shop)s cancelled this payment. Nothing more needs to be sent.",
                           **ph),
        # Whether late money is kept for the order or returned is decided later, on this
        # page: the words promise neither.
        PHASE_LATE: _("Your payment of %(late)s %(ticker)s arrived after this invoice had "
                      "closed.", **ph),
        "overpaid": _("Payment confirmed. You sent %(over)s %(ticker)s more than asked: the "
                      "payment processor emails %(email)s instructions to get the difference "
                      "back.", **ph),
        # Not phases: before the money, what happens if too much or too little is sent.
        "note:over-under": _("If you send more than asked, the payment goes through and the "
                             "payment processor emails %(email)s instructions to get the "
                             "difference back. If you send less, the payment fails and the "
                             "payment processor emails %(email)s instructions to get back what "
                             "you sent.", **ph),
        "note:over-under-parts": _("If you send more than asked, the payment goes through and "
                                   "the payment processor emails %(email)s instructions to get "
                                   "the difference back. If less than asked has arrived when "
                                   "the time runs out, the payment fails and the payment "
                                   "processor emails %(email)s instructions to get back what "
                                   "you sent.", **ph),
        # The late phase once the merchant's policy judged the confirmed late money
        # (invoice_late.py): the status line the model's `late.decision` picks.
        f"{PHASE_LATE}:{invoice_late.ACCEPTED}": _("Your late payment was accepted: the order "
                                                    "is paid.", **ph),
        f"{PHASE_LATE}:{invoice_late.SHORT}": _(
            "Your payment of %(paid)s %(ticker)s arrived after this invoice had closed, and it "
            "was worth less than the price then. Pay the difference below to complete your "
            "order, or ask for your money back.", **ph),
        f"{PHASE_LATE}:{invoice_late.REFUSED}": _(
            "Your payment of %(paid)s %(ticker)s arrived after this invoice had closed, so it "
            "could not be applied to it. You can ask for your money back.", **ph),
    }


def invoice_model(session: Session, page: Page, now: datetime,
                  refund: dict[str, Any] | None = None) -> PageModel:
    """An invoice page's model: the deposit page's keys, filled from the invoice and its
    quote, and money that arrived after it closed (invoice_late.py)."""
    asset = asset_of(page.currency, translate=False)
    invoice, quotes = invoice_and_quotes(session, page)
    quote = current_of(quotes)
    part = model_part(session, page, now, invoice, quotes)
    test = testnet()
    invoice_late.amend(session, invoice, quote, part, test)
    amount = amount_asked(page)
    paid: Decimal = part.pop("amount_paid", None) or Decimal(0)
    due: Decimal | None = part.pop("amount_due", None)
    final = is_final(page.status, page.reason)
    phase = str(part["phase"])
    transactions: list[dict[str, Any]] = part.get("transactions", [])
    receipt = part.get("receipt")
    shop_invoice = part.get("invoice") or {}
    return {
        "id": page.id, "kind": page.kind, "status": page.status, "reason": page.reason,
        "final": final, "phase": phase, "pay_now": part["pay_now"],
        "currency": page.currency, "address": page.address, "tag": page.tag,
        "network": asset.network, "test_network": test,
        "amount": short(amount, asset.decimals), "amount_paid": money.plain(paid),
        "amount_due": short(due, asset.decimals), "rest_below_minimum": None,
        "minimum_extra": None,
        "amount_over": money.plain(paid - amount) if phase == PHASE_OVERPAID and amount
        else None,
        "minimum": None, "fiat": part.get("fiat"), "seconds_left": part.get("seconds_left"),
        "payment_uri": payment_uri(page.currency, page.address or "", page.tag, due or None,
                                   testnet=test) if page.address else "",
        "confirmations_required": currencies.confirmations_required(page.currency),
        "transactions": transactions, "receipt": receipt,
        "return_url": part.get("return_url") if final else None,
        "form": part.get("form"), "refund_note": part.get("refund_note", False),
        "invoice": part.get("invoice"),
        # Late money is the one thing an invoice page may owe back itself (owed.py).
        "refund": refund,
        "late": part.get("late"), "watch": part.get("watch", False),
        "support": support_lines(
            final=final, page_id=page.id, reference=page.foreign_id, currency=page.currency,
            asked=short(amount, asset.decimals),
            paid=money.plain(paid), address=page.address, tag=page.tag,
            transactions=transactions, opened_at=page.created_at,
            paid_at=receipt["paid_at"] if receipt else None,
            price=((shop_invoice["amount"], shop_invoice["currency"]) if shop_invoice
                   else None)),
    }


class InvoiceKind:
    """An invoice page: the shop's invoice, paid in the currency the customer picks on it
    (a quote at the processor), its state the invoice's."""

    name = "invoice"
    template = "invoice.html"
    open_states: tuple[str, ...] = UNPAID_INVOICE
    final_states: frozenset[str] = FINAL
    ranks: Mapping[str, int] = RANK
    # The processor's API has no is_iframe flag: an invoice page may always be framed by
    # the merchant's own registered origins, and tells them its status.
    framable = True
    chooses_currency = True
    pays_again = False

    def is_final(self, status: str, reason: str | None) -> bool:
        return is_final(status, reason)

    def model(self, session: Session, page: Page, now: datetime,
              refund: dict[str, Any] | None = None) -> PageModel:
        return invoice_model(session, page, now, refund)

    def may_owe(self, page: Page) -> bool:
        """Only money that came after the invoice failed is ours to give back (owed.py):
        over- and underpayments of a live invoice are the processor's."""
        return page.status == FAILED

    def labels(self) -> dict[str, str]:
        """The deposit page's phases it shares, and its own."""
        from_deposit = deposit_labels()
        from_deposit.update(phase_labels())
        return from_deposit


KIND = InvoiceKind()
