"""Money that reached an invoice's address after the invoice failed, as the customer sees it:
the page model's `late` part (stored by the news engine as `Deposit` rows at the quote's
address: services/late_news.py), and the merchant's late-payment policy applied to it.

Each late payment is judged when it is confirmed, by its value then (what the processor
converted it to when it says, else the cached rate times the amount): once the confirmed
late money's value covers the invoice's price, and the merchant accepts late payments
(policies.py), the order is paid ("accepted"). Otherwise the customer chooses on the page
("choosing"): pay the difference at today's rate to the same address (the quote's address is
permanent and credited), or ask for the money back (pagekinds/owed.py owes it then).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock, currencies, limits, money, policies, rates
from .. import refund_rules as rules
from ..models import Callback, Deposit, DepositAddress, Invoice, InvoiceQuote, Refund
from ..states import CONFIRMED, FAILED
from .present import fiat_places, transaction_line

PHASE = "late"
# Invoice.late_state: the confirmed late money covers the price and the order is paid; or
# it does not (or the merchant takes no late money) and the customer chooses.
ACCEPTED, CHOOSING = "accepted", "choosing"
# What the page says of it: paid; short (pay the difference, or a refund); refused (the
# merchant takes no late money, or its worth is unknown: a refund only).
SHORT, REFUSED = "short", "refused"


def deposits_of(session: Session, invoice_id: int) -> list[Deposit]:
    """Every late payment to any quote of the invoice, oldest first."""
    return list(session.scalars(
        select(Deposit).join(DepositAddress, DepositAddress.id == Deposit.address_id)
        .join(InvoiceQuote, (InvoiceQuote.merchant_id == DepositAddress.merchant_id)
              & (InvoiceQuote.foreign_id == DepositAddress.foreign_id))
        .where(InvoiceQuote.invoice_id == invoice_id)
        .order_by(Deposit.id)))


def _fiat_of(session: Session, deposit: Deposit) -> dict[str, str] | None:
    """What the processor converted the payment to, when it says (a deposit_exchange
    callback's `currency_received`); an estimate would be a guess after the rate expired."""
    bodies = session.scalars(select(Callback.body).where(
        Callback.merchant_id == deposit.merchant_id,
        Callback.processor_id == deposit.processor_id,
        Callback.type == "deposit_exchange", Callback.outcome == "applied")
        .order_by(Callback.id.desc()).limit(1)).all()
    for body in bodies:
        try:
            received = money.loads(body).get("currency_received") or {}
            currency = str(received.get("currency", ""))
            amount = money.from_processor(received.get("amount"))
        except (ValueError, AttributeError, money.AmountError):
            return None
        if not currency or amount <= 0:
            return None
        places = currencies.fiat_places(currency) if currencies.is_fiat(currency) else 8
        return {"currency": currency, "amount": money.text(amount.quantize(
            Decimal(1).scaleb(-places)), places)}
    return None


# ---------------------------------------------------------------------------------------------
# The merchant's policy: judged once per payment, when it is confirmed


def converted_of(payload: dict[str, Any]) -> tuple[str, Decimal] | None:
    """What a deposit_exchange callback says the processor converted the payment to."""
    received = payload.get("currency_received")
    if payload.get("type") != "deposit_exchange" or not isinstance(received, dict):
        return None
    currency = received.get("currency")
    try:
        amount = money.from_processor(received.get("amount"))
    except money.AmountError:
        return None
    if not isinstance(currency, str) or amount <= 0:
        return None
    return currency.upper(), amount


def value_at_arrival(session: Session, invoice: Invoice, deposit: Deposit,
                     converted: tuple[str, Decimal] | None, now: datetime) -> Decimal | None:
    """The payment's worth in the invoice's currency now: the processor's converted amount
    when it names that currency, else the cached rate (a recent one) times the amount."""
    if converted is not None and converted[0] == invoice.currency.upper():
        return converted[1]
    try:
        amount = money.from_processor(deposit.amount)
    except money.AmountError:
        return None
    if deposit.currency.upper() == invoice.currency.upper():
        return amount
    rate = _rate(session, deposit.currency, invoice.currency, now)
    return None if rate is None else amount * rate


def _rate(session: Session, coin: str, currency: str, now: datetime) -> Decimal | None:
    return rates.cached(session, coin, currency,
                        fetched_since=now - timedelta(seconds=rates.SHOWN_MAX_AGE))


def judge(session: Session, invoice: Invoice, deposit: Deposit,
          converted: tuple[str, Decimal] | None) -> str | None:
    """A late payment to the (locked) invoice was just confirmed: add its value now to the
    late money's and apply the merchant's policy. The new `late_state` when it changed (the
    shop is told then), else None. Accepted stays accepted; a refund asked for keeps the
    customer's choice (its money is on its way back)."""
    if invoice.status != FAILED or invoice.late_state == ACCEPTED or \
            deposit.status != CONFIRMED:
        return None
    value = value_at_arrival(session, invoice, deposit, converted, clock.now())
    known = _decimal(invoice.late_value)
    if value is not None:
        known = value + (known or Decimal(0))
    invoice.late_value = None if known is None else money.plain(known)
    price = _decimal(invoice.amount)
    accepted = price is not None and not refund_asked(session, invoice.page_id) and \
        policies.late_accepted(policies.of(invoice.merchant), known, price)
    new = ACCEPTED if accepted else CHOOSING
    if new == invoice.late_state:
        return None
    invoice.late_state = new
    return new


def refund_asked(session: Session, page_id: str) -> bool:
    """Whether a refund holds any of the page's money (asked, approved, on its way, sent)."""
    held = session.execute(select(Refund.state, Refund.amount).where(Refund.page_id == page_id))
    return rules.held([(state, amount) for state, amount in held]) > 0


def _decimal(text: str | None) -> Decimal | None:
    try:
        value = Decimal(text) if text is not None else None
    except InvalidOperation:
        return None
    return value if value is not None and value.is_finite() else None


def confirmed_of(session: Session, invoice: Invoice) -> list[Deposit]:
    """The invoice's late payments that are confirmed: the only money ever owed back."""
    return [d for d in deposits_of(session, invoice.id) if d.status == CONFIRMED]


def decision_of(invoice: Invoice) -> str | None:
    """What the page offers for the confirmed late money: None while none is judged."""
    if invoice.status != FAILED or invoice.late_state is None:
        return None
    if invoice.late_state == ACCEPTED:
        return ACCEPTED
    policy = policies.of(invoice.merchant)
    return SHORT if policy.late_accept and invoice.late_value is not None else REFUSED


def difference(session: Session, invoice: Invoice, coin: str, now: datetime
               ) -> dict[str, str] | None:
    """What is still missing, in the invoice's currency (at the value the late money had)
    and in the payer's coin at today's cached rate, rounded up and never below the smallest
    payment the processor takes; None when it cannot be said (no rate today)."""
    price, value = _decimal(invoice.amount), _decimal(invoice.late_value)
    if price is None or value is None or value >= price:
        return None
    missing = price - value
    same = coin.upper() == invoice.currency.upper()
    rate = Decimal(1) if same else _rate(session, coin, invoice.currency, now)
    if rate is None or rate <= 0:
        return None
    known = currencies.get(coin)
    places = known.decimals if known is not None else money.PROCESSOR_PLACES
    due = money.ceil(missing / rate, places)
    minimum = limits.minimum_payment(session, coin)
    if minimum is not None and due < minimum:
        due = money.ceil(minimum, places)
    shown = places if same else fiat_places(invoice.currency)
    return {"amount": money.plain(due), "currency": coin,
            "fiat": money.text(money.ceil(missing, shown), shown),
            "fiat_currency": invoice.currency, "rate": money.plain(rate)}


def _transaction(deposit: Deposit, testnet: bool) -> dict[str, Any]:
    return transaction_line(deposit.currency, deposit.txid, money.plain(Decimal(deposit.amount)),
                            deposit.status, None, deposit.confirmations, testnet)


def page_part(session: Session, invoice: Invoice, quote: InvoiceQuote | None,
              testnet: bool) -> dict[str, Any] | None:
    """The late payments of a closed invoice, for the page model; None when there are none
    (or the invoice still takes payments: then the money is the invoice's own news)."""
    closed = invoice.status == FAILED or (
        quote is not None and quote.status == FAILED)
    if not closed:
        return None
    kept = [d for d in deposits_of(session, invoice.id) if d.status != "cancelled"]
    if not kept:
        return None
    amount = sum((Decimal(d.amount) for d in kept), Decimal(0))
    fiats = [_fiat_of(session, d) for d in kept]
    fiat = None
    if all(fiats) and len({f["currency"] for f in fiats if f}) == 1:
        total = sum((Decimal(f["amount"]) for f in fiats if f), Decimal(0))
        first = fiats[0]
        assert first is not None
        fiat = {"currency": first["currency"], "amount": money.plain(total)}
    transactions = [_transaction(d, testnet) for d in kept]
    seen = any(d.status == "not_confirmed" for d in kept)
    decision = decision_of(invoice)
    value = _decimal(invoice.late_value)
    return {
        "amount": money.plain(amount),
        "currency": kept[0].currency,
        "fiat": fiat,
        "transactions": transactions,
        "status": "not_confirmed" if seen else "confirmed",
        "reason": invoice.reason,
        # The merchant's policy applied (accepted | short | refused; None: nothing confirmed
        # yet), the confirmed late money's worth when it came, and what is still missing.
        "decision": decision,
        "value": None if value is None else {
            "currency": invoice.currency, "amount": money.text(
                money.floor(value, fiat_places(invoice.currency)),
                fiat_places(invoice.currency))},
        "difference": difference(session, invoice, kept[0].currency, clock.now())
        if decision == SHORT and not refund_asked(session, invoice.page_id) else None,
        # What the page's script compares to redraw the page when the late money changes.
        "state": json.dumps([[t["txid"], t["amount"], t["status"]] for t in transactions]
                            + [decision]),
    }


def amend(session: Session, invoice: Invoice | None, quote: InvoiceQuote | None,
          part: dict[str, Any], testnet: bool) -> dict[str, Any]:
    """Turn a closed invoice's page part into the late phase when money arrived late; keep
    watching (the script polls a final page) while money can still arrive or confirm."""
    part.setdefault("late", None)
    part.setdefault("watch", False)
    if invoice is None:
        return part
    late = page_part(session, invoice, quote, testnet)
    if late is None:
        # A failed invoice with an address: the customer may still send to it.
        part["watch"] = invoice.status == FAILED and quote is not None \
            and quote.address is not None
        return part
    paid = part.get("amount_paid") or Decimal(0)
    rest = late["difference"]
    part.update({
        "phase": PHASE, "pay_now": rest is not None, "form": None,
        "amount_due": None if rest is None else Decimal(rest["amount"]),
        # What arrived in time and fell short is still the processor's to return.
        "seconds_left": None, "refund_note": invoice.reason == "underpaid", "receipt": None,
        "amount_paid": paid + Decimal(late["amount"]),
        "transactions": list(part.get("transactions") or []) + late["transactions"],
        # While the difference is offered the page keeps asking: its payment accepts it.
        "late": late, "watch": late["status"] == "not_confirmed" or rest is not None,
    })
    if rest is not None:
        part["fiat"] = {"currency": rest["fiat_currency"], "amount": rest["fiat"],
                        "due": rest["fiat"], "rate": rest["rate"]}
    if isinstance(part.get("invoice"), dict):
        part["invoice"] = {**part["invoice"], "options": [], "can_change_currency": False}
    return part
