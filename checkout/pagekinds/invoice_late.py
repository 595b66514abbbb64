"""Money that reached an invoice's address after the invoice failed, as the customer sees it:
the page model's `late` part (stored by the news engine as `Deposit` rows at the quote's
address: services/late_news.py).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import currencies, money
from ..models import Callback, Deposit, DepositAddress, Invoice, InvoiceQuote
from ..states import FAILED
from .present import transaction_line

PHASE = "late"


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
    return {
        "amount": money.plain(amount),
        "currency": kept[0].currency,
        "fiat": fiat,
        "transactions": transactions,
        "status": "not_confirmed" if seen else "confirmed",
        "reason": invoice.reason,
        # What the page's script compares to redraw the page when the late money changes.
        "state": json.dumps([[t["txid"], t["amount"], t["status"]] for t in transactions]),
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
    part.update({
        "phase": PHASE, "pay_now": False, "form": None, "amount_due": None,
        # What arrived in time and fell short is still the processor's to return.
        "seconds_left": None, "refund_note": invoice.reason == "underpaid", "receipt": None,
        "amount_paid": paid + Decimal(late["amount"]),
        "transactions": list(part.get("transactions") or []) + late["transactions"],
        "late": late, "watch": late["status"] == "not_confirmed",
    })
    if isinstance(part.get("invoice"), dict):
        part["invoice"] = {**part["invoice"], "options": [], "can_change_currency": False}
    return part
