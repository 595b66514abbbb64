"""Invoices: the three types, payments to the invoice address, timers and cancellation.

created (type 1, no currency yet) -> pending (15-minute timer) -> processing (a payment is in
the mempool; the deadline stretches to 24 h) -> confirmed | failed. Partial payments on a
good_until_expired invoice go back to pending with `remaining_amount`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from checkout.wire import decimals

from . import accounts, addresses, clock, currencies, outbox, store
from .currencies import Currency, amount_text
from .protocol import ApiError

PENDING_SECONDS = 15 * 60
PROCESSING_SECONDS = 24 * 60 * 60
OPEN = ("created", "pending", "processing")
NOT_PAID = "Timer expired. User not paid."
TOO_LONG = "Timer expired. Transactions were in status processing too long."
UNDERPAID = "Timer expired. User paid less than requested."
CANCELLED = "Invoice was cancelled."
WRONG_STATE = {"errors": {"error": "Invoice cannot be failed in its current state.",
                          "code": "invalid_invoice_state"}}
_CODE_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_Q = Decimal(1).scaleb(-currencies.PLACES)


@dataclass(frozen=True)
class InvoiceRequest:
    foreign_id: str
    title: str
    description: str | None
    currency: Currency
    amount: Decimal
    timer: bool
    sender_currency: Currency | None
    kind: str
    url_success: str
    url_failed: str
    email_user: str | None
    end_user_reference: str | None


def minimum_eur(app: Flask | None = None) -> Decimal:
    return Decimal(str((app or current_app).config.get("SANDBOX_INVOICE_MINIMUM_EUR", "10.00")))


def below_minimum(currency: Currency, amount: Decimal, now: int) -> str | None:
    """The documented message when an invoice is worth less than the merchant's minimum."""
    floor = minimum_eur()
    worth = currencies.convert(amount, currency, currencies.BY_CODE["EUR"], now)
    if worth < floor:
        return f"The amount is too small. The minimum amount is {floor:.2f} EUR."
    return None


def sender_amount(currency: Currency, amount: Decimal, sender: Currency, now: int) -> Decimal:
    """What the payer owes in `sender` for an invoice of `amount` `currency`, rounded up."""
    if sender.code == currency.code:
        return amount
    return (amount / currencies.ratio(sender, currency, now)).quantize(_Q, ROUND_CEILING)


def _code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


def _fix_currency(session: Session, op: store.Operation, inv: store.Invoice, sender: Currency,
                  now: int) -> None:
    """The payer's currency is known: fix the rate, hand out the address, start the timer."""
    due = sender_amount(currencies.BY_CODE[inv.currency], Decimal(inv.amount), sender, now)
    address = addresses.allocate(
        session, op.client_id, sender, now, foreign_id=op.foreign_id,
        convert_to=inv.currency if inv.currency != sender.code else None,
        end_user_reference=op.end_user_reference, invoice_id=op.id)
    inv.sender_currency, inv.sender_amount = sender.code, decimals.text(due)
    op.address_id = address.id
    op.currency_sent, op.amount_sent = sender.code, decimals.text(due)
    op.status = "pending"
    if inv.expires_at is None:
        inv.fixed_at, inv.expires_at = now, now + PENDING_SECONDS


def create(session: Session, client_id: int, req: InvoiceRequest, now: int,
           notify: str | None) -> store.Operation:
    op = store.Operation(
        client_id=client_id, type="invoice", scope="invoice", foreign_id=req.foreign_id,
        status="pending" if req.timer else "created", currency_sent=req.currency.code,
        amount_sent=decimals.text(req.amount), currency_received=req.currency.code,
        amount_received=decimals.text(req.amount), end_user_reference=req.end_user_reference,
        notify_url=notify, created_at=now)
    session.add(op)
    session.flush()
    inv = store.Invoice(
        id=op.id, code=_code(), kind=req.kind, timer=req.timer, title=req.title,
        description=req.description, currency=req.currency.code, amount=decimals.text(req.amount),
        url_success=req.url_success, url_failed=req.url_failed, email_user=req.email_user)
    if req.timer:
        inv.fixed_at, inv.expires_at = now, now + PENDING_SECONDS
    session.add(inv)
    if req.sender_currency is not None:
        _fix_currency(session, op, inv, req.sender_currency, now)
    session.flush()
    return op


def choose_currency(session: Session, op: store.Operation, sender: Currency, now: int) -> None:
    """What the hosted page does when the payer picks a currency (types 1 and 2)."""
    inv = session.get(store.Invoice, op.id)
    assert inv is not None
    if op.status not in ("created", "pending") or inv.sender_currency is not None:
        raise ApiError(400, WRONG_STATE)
    _fix_currency(session, op, inv, sender, now)


def response(session: Session, op: store.Operation, base_url: str, now: int) -> dict[str, Any]:
    """The invoices/create answer (inside `data`)."""
    inv = session.get(store.Invoice, op.id)
    assert inv is not None
    address = session.get(store.Address, op.address_id) if op.address_id else None
    obj: dict[str, Any] = {"id": op.id, "url": f"{base_url}/sandbox/invoice/{inv.code}",
                           "foreign_id": op.foreign_id}
    if op.end_user_reference:
        obj["end_user_reference"] = op.end_user_reference
    obj.update({
        "address": address.address if address else None,
        # Not in the documented shape, but XRP payments are lost without it.
        "tag": address.tag if address else None,
        "title": inv.title, "status": op.status, "currency": inv.currency,
        "amount": amount_text(Decimal(inv.amount)), "sender_currency": inv.sender_currency,
        "sender_amount": amount_text(Decimal(inv.sender_amount)) if inv.sender_amount else None,
        "fixed_at": inv.fixed_at, "release_at": inv.expires_at,
        "seconds_left": max(inv.expires_at - now, 0) if inv.expires_at is not None else None})
    return obj


def _payments(session: Session, op_id: int) -> list[store.Payment]:
    return list(session.scalars(select(store.Payment).where(store.Payment.operation_id == op_id)
                                .order_by(store.Payment.id)))


def takes_payments(session: Session, address: store.Address) -> bool:
    """Whether a payment to this invoice address is the invoice's (`receive`); if not, the
    caller books it as a plain deposit to the address and sends its deposit callback.

    An invoice that failed (its timer ran out, or it was cancelled) takes no more money.
    What the processor does with coins that reach its address afterwards is UNCONFIRMED:
    no CoinsPaid source describes a late payment. The evidence for a deposit on that
    address (coinspaid-api.md): the invoice address is an ordinary permanent address of
    the merchant's (§2.5: addresses are permanent and reusable; `convert_to` converts every
    incoming deposit; invoice callbacks carry it as `crypto_address`, §3); a failed
    invoice's statuses are final (§4.3); the documented failed callbacks ("Timer expired.
    User not paid.") list no transactions, and no invoice status or error text exists for
    money after `failed`; a deposit callback is keyed by the address and its `foreign_id`
    (§3, "Common payload structure"), which the invoice address has. So the money sits in
    the merchant's account, and the merchant hears of it as a `deposit` (or, with
    `convert_to`, `deposit_exchange`) callback on that address, exactly like any deposit.
    The other reading, an invoice callback (`processing`/`confirmed`) after `failed`, is
    just as possible; the site accepts both (checkout/services/late_news.py).

    A payment after `confirmed` stays the invoice's, as before (recorded, nothing sent).
    """
    assert address.invoice_id is not None
    op = session.get(store.Operation, address.invoice_id, with_for_update=True)
    assert op is not None
    return op.status != "failed"


def receive(session: Session, address: store.Address, amount: Decimal, status: str,
            now: int) -> store.Operation:
    """A payment to an open (or confirmed) invoice's address; after `confirmed` it is
    recorded but changes nothing. After `failed` it is a deposit (`takes_payments`)."""
    assert address.invoice_id is not None
    op = session.get(store.Operation, address.invoice_id, with_for_update=True)
    inv = session.get(store.Invoice, address.invoice_id)
    assert op is not None and inv is not None
    payment = store.Payment(
        operation_id=op.id, address_id=address.id, amount=decimals.text(amount), txid="",
        status=status, created_at=now,
        confirm_at=now + int(current_app.config.get("SANDBOX_CONFIRM_SECONDS", 10))
        if status == "not_confirmed" else None)
    session.add(payment)
    session.flush()
    payment.txid = addresses.txid("invoice", payment.id)
    if op.status not in ("pending", "processing") or status == "cancelled":
        return op
    if status == "not_confirmed":
        if op.status != "processing":
            op.status = "processing"
            inv.expires_at = now + PROCESSING_SECONDS
            outbox.queue(session, op, now)
        return op
    _evaluate(session, op, inv, now)
    return op


def _evaluate(session: Session, op: store.Operation, inv: store.Invoice, now: int) -> None:
    """After a payment confirmed: paid in full, still waiting, or short."""
    payments = _payments(session, op.id)
    due = Decimal(inv.sender_amount or "0")
    paid = sum((Decimal(p.amount) for p in payments if p.status == "confirmed"), Decimal(0))
    waiting = any(p.status == "not_confirmed" for p in payments)
    if paid >= due:
        _pay_out(session, op, inv, due)
        op.status = "confirmed"
    elif waiting:
        return
    elif inv.kind == "good_until_expired":
        op.status = "pending"
    else:
        op.status, op.error = "failed", UNDERPAID
    outbox.queue(session, op, now)


def _pay_out(session: Session, op: store.Operation, inv: store.Invoice, due: Decimal) -> None:
    sender = currencies.BY_CODE[inv.sender_currency or inv.currency]
    fee = currencies.percent_of(due, sender.deposit_fee_percent)
    op.fees = [{"type": "fee_crypto_deposit", "currency": sender.code,
                "amount": decimals.text(fee)}]
    amount = Decimal(inv.amount)
    # The fee is charged in the payer's currency; credited at the invoice's own fixed rate.
    fee_in_invoice = (fee * amount / due).quantize(_Q) if due else Decimal(0)
    accounts.credit(session, op.client_id, inv.currency, amount - fee_in_invoice)


def confirm_payment(session: Session, payment_id: int, now: int) -> bool:
    """Worker step: a mempool payment confirms; the invoice is re-evaluated."""
    claimed = session.execute(
        update(store.Payment)
        .where(store.Payment.id == payment_id, store.Payment.status == "not_confirmed",
               store.Payment.confirm_at <= now)
        .values(status="confirmed", confirm_at=None))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    payment = session.get(store.Payment, payment_id)
    assert payment is not None
    op = session.get(store.Operation, payment.operation_id, with_for_update=True)
    inv = session.get(store.Invoice, payment.operation_id)
    assert op is not None and inv is not None
    if op.status in ("pending", "processing"):
        _evaluate(session, op, inv, now)
    return True


def _fail(session: Session, op_id: int, error: str, now: int) -> bool:
    """Move an open invoice to failed; False when someone else settled it first."""
    claimed = session.execute(
        update(store.Operation)
        .where(store.Operation.id == op_id, store.Operation.status.in_(OPEN))
        .values(status="failed", error=error))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    op = session.get(store.Operation, op_id)
    assert op is not None
    session.refresh(op)
    outbox.queue(session, op, now)
    return True


def _expiry_reason(session: Session, op_id: int) -> str:
    payments = [p for p in _payments(session, op_id) if p.status != "cancelled"]
    if not payments:
        return NOT_PAID
    if any(p.status == "not_confirmed" for p in payments):
        return TOO_LONG
    return UNDERPAID


def expire_due(app: Flask) -> int:
    """Worker task: fail every open invoice whose timer ran out; returns how many."""
    with store.transaction(app) as session:
        now = clock.now(session, app)
        due = session.scalars(
            select(store.Operation.id).join(store.Invoice, store.Invoice.id == store.Operation.id)
            .where(store.Operation.status.in_(OPEN), store.Invoice.expires_at <= now)
            .order_by(store.Operation.id)).all()
    done = 0
    for op_id in due:
        with store.transaction(app) as session:
            now = clock.now(session, app)
            if _fail(session, op_id, _expiry_reason(session, op_id), now):
                done += 1
    return done


def by_foreign_id(session: Session, client_id: int, foreign_id: str) -> store.Operation | None:
    return session.scalar(select(store.Operation).where(
        store.Operation.client_id == client_id, store.Operation.scope == "invoice",
        store.Operation.foreign_id == foreign_id))


def cancel(session: Session, client_id: int, foreign_id: str, now: int) -> None:
    """invoices/<foreign_id>/cancel/: only open invoices; they end `failed`."""
    op = by_foreign_id(session, client_id, foreign_id)
    if op is None:
        raise ApiError(404, {"errors": {"foreign_id": "The selected foreign id is invalid."}})
    if not _fail(session, op.id, CANCELLED, now):
        raise ApiError(400, WRONG_STATE)


def exists(session: Session, client_id: int, foreign_id: str) -> bool:
    return by_foreign_id(session, client_id, foreign_id) is not None

