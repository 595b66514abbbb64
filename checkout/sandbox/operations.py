"""Deposits, withdrawals and exchanges: what they do to balances and when they confirm.

Each function runs inside the caller's transaction and queues the callbacks the real
processor would send. Confirmation happens later on the sandbox clock (worker task).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

from flask import Flask, current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from checkout.wire import decimals

from . import accounts, addresses, clock, currencies, invoices, outbox, payloads, store
from .currencies import Currency
from .payloads import (
    DEPOSIT_FEE,
    DEPOSIT_INTERNAL_FEE,
    DEPOSIT_TO_FIAT_FEE,
    EXCHANGE_FEE,
    MINING_FEE,
    WITHDRAWAL_FEE,
    WITHDRAWAL_INTERNAL_FEE,
)

BELOW_MINIMUM = "Transaction amount less than minimum deposit"
# UNCONFIRMED: the processor's words when a person cancels a withdrawal held by its limits.
DECLINED = "Withdrawal was declined in the back office."
WITHDRAWALS = ("withdrawal", "withdrawal_exchange")
_Q = Decimal(1).scaleb(-currencies.PLACES)


def confirm_delay(app: Flask | None = None) -> int:
    """Seconds on the sandbox clock before a transaction confirms."""
    return int((app or current_app).config.get("SANDBOX_CONFIRM_SECONDS", 10))


def down(amount: Decimal) -> Decimal:
    return amount.quantize(_Q, ROUND_DOWN)


def up(amount: Decimal) -> Decimal:
    return amount.quantize(_Q, ROUND_CEILING)


def fee(kind: str, currency: str, amount: Decimal) -> dict[str, str]:
    return {"type": kind, "currency": currency, "amount": decimals.text(amount)}


# --- deposits -------------------------------------------------------------------------

def receive(session: Session, address: store.Address, amount: Decimal, status: str,
            now: int, notify: str | None, *, internal: bool = False) -> store.Operation:
    """A payer's transaction reached `address`: record it and tell the merchant.

    `internal`: it came from another of the processor's addresses, not over the chain.
    """
    if address.invoice_id is not None and invoices.takes_payments(session, address):
        return invoices.receive(session, address, amount, status, now)
    # Otherwise a plain deposit, also at the address of an invoice that failed (expired,
    # cancelled): see invoices.takes_payments.
    source = currencies.BY_CODE[address.currency]
    target = currencies.BY_CODE[address.convert_to or address.currency]
    exchange = target.code != source.code
    received = down(currencies.convert(amount, source, target, now))
    if exchange:
        fees = [fee(DEPOSIT_INTERNAL_FEE if internal else DEPOSIT_TO_FIAT_FEE, target.code,
                    currencies.percent_of(received, currencies.EXCHANGE_FEE_PERCENT))]
    else:
        fees = [fee(DEPOSIT_INTERNAL_FEE if internal else DEPOSIT_FEE, source.code,
                    currencies.percent_of(amount, source.deposit_fee_percent))]
    error = ""
    if amount < source.minimum_amount:
        status, error = "cancelled", BELOW_MINIMUM
    op = store.Operation(
        client_id=address.client_id, type="deposit_exchange" if exchange else "deposit",
        status=status, error=error, address_id=address.id, currency_sent=source.code,
        amount_sent=decimals.text(amount), currency_received=target.code,
        amount_received=decimals.text(received), fees_json="[]", notify_url=notify,
        end_user_reference=address.end_user_reference, created_at=now,
        confirm_at=now + confirm_delay() if status == "not_confirmed" else None)
    op.fees = fees
    session.add(op)
    session.flush()
    op.txid = addresses.txid("deposit", op.id)
    if status == "confirmed":
        _credit_deposit(session, op)
    outbox.queue(session, op, now)
    return op


def _credit_deposit(session: Session, op: store.Operation) -> None:
    accounts.credit(session, op.client_id, op.currency_received,
                    Decimal(op.amount_received) - payloads.fee_total(op, op.currency_received))


# --- withdrawals ----------------------------------------------------------------------

@dataclass(frozen=True)
class WithdrawalRequest:
    foreign_id: str
    source: Currency
    chain: Currency
    address: str
    tag: str | None
    amount: Decimal | None
    amount_to: Decimal | None
    end_user_reference: str | None


def withdraw(session: Session, client_id: int, req: WithdrawalRequest, now: int,
             notify: str | None) -> store.Operation:
    """Debit the balance now; the chain leg confirms (or is cancelled) later."""
    exchange = req.source.code != req.chain.code
    if not exchange and _internal_target(session, req) is not None:
        assert req.amount is not None
        sent = received = req.amount
        # Nothing goes on chain: no mining fee, the internal withdrawal fee.
        fees = [fee(WITHDRAWAL_INTERNAL_FEE, req.chain.code,
                    currencies.percent_of(sent, req.chain.withdrawal_fee_percent))]
    elif not exchange:
        assert req.amount is not None
        sent = received = req.amount
        fees = [fee(MINING_FEE, req.chain.code, req.chain.mining_fee),
                fee(WITHDRAWAL_FEE, req.chain.code,
                    currencies.percent_of(sent, req.chain.withdrawal_fee_percent))]
    else:
        price = currencies.ratio(req.source, req.chain, now)
        if req.amount is not None:
            sent, received = req.amount, down(req.amount * price)
        else:
            assert req.amount_to is not None
            sent, received = up(req.amount_to / price), req.amount_to
        # The chain leg costs a mining fee in the coin sent, like a plain withdrawal.
        fees = [fee(WITHDRAWAL_FEE, req.source.code,
                    currencies.percent_of(sent, currencies.EXCHANGE_FEE_PERCENT)),
                fee(MINING_FEE, req.chain.code, req.chain.mining_fee)]
    op = store.Operation(
        client_id=client_id, type="withdrawal_exchange" if exchange else "withdrawal",
        scope="withdrawal", foreign_id=req.foreign_id, status="processing",
        address_id=None, currency_sent=req.source.code, amount_sent=decimals.text(sent),
        currency_received=req.chain.code, amount_received=decimals.text(received),
        to_address=req.address, to_tag=req.tag, end_user_reference=req.end_user_reference,
        notify_url=notify, created_at=now, confirm_at=now + confirm_delay())
    op.fees = fees
    accounts.debit(session, client_id, req.source.code, _charged(op))
    limit = accounts.withdrawal_limit(session, client_id, req.source.code)
    if limit is not None and sent > limit:
        # Above the account's limit it waits for a person (`decide`), and the merchant hears
        # of it at once; nothing goes on chain until then.
        op.status, op.confirm_at = "pending", None
    session.add(op)
    session.flush()
    if op.status == "pending":
        outbox.queue(session, op, now)
    return op


class NotPending(Exception):
    """Only a withdrawal waiting for approval can be approved or cancelled."""


def decide(session: Session, op: store.Operation, approve: bool, error: str | None,
           now: int) -> None:
    """A person at the processor approves a pending withdrawal (it goes on chain and
    confirms later, as any other) or cancels it (the money goes back, the merchant is told
    with the error)."""
    if op.type not in WITHDRAWALS or op.status != "pending":
        raise NotPending(op.status)
    if approve:
        op.status, op.confirm_at = "processing", now + confirm_delay()
        return
    _cancel_withdrawal(session, op, error or DECLINED)
    outbox.queue(session, op, now)


def find_withdrawal(session: Session, *, op_id: int | None = None,
                    foreign_id: str | None = None,
                    client_id: int | None = None) -> store.Operation:
    """The withdrawal with this id, or this foreign_id (unique per account: name the account
    when two have one); LookupError("none" | "several") otherwise."""
    query = select(store.Operation).where(store.Operation.type.in_(WITHDRAWALS))
    if op_id is not None:
        query = query.where(store.Operation.id == op_id)
    if foreign_id is not None:
        query = query.where(store.Operation.foreign_id == foreign_id)
    if client_id is not None:
        query = query.where(store.Operation.client_id == client_id)
    # Locked (PostgreSQL): two people deciding at once must not both return the money.
    found = session.scalars(query.limit(2).with_for_update()).all()
    if len(found) != 1:
        raise LookupError("none" if not found else "several")
    return found[0]


def pending_withdrawals(session: Session) -> list[store.Operation]:
    """Every withdrawal waiting for a person, oldest first."""
    return list(session.scalars(select(store.Operation).where(
        store.Operation.type.in_(WITHDRAWALS), store.Operation.status == "pending")
        .order_by(store.Operation.id)))


def _cancel_withdrawal(session: Session, op: store.Operation, error: str) -> None:
    op.status, op.error = "cancelled", error
    accounts.credit(session, op.client_id, op.currency_sent, _charged(op))


def _internal_target(session: Session, req: WithdrawalRequest) -> store.Address | None:
    """The processor's own deposit address a plain withdrawal goes to, if it is one."""
    found = addresses.find(session, req.address, req.tag)
    if found is None or found.currency != req.chain.code or found.invoice_id is not None:
        return None
    return found


def _charged(op: store.Operation) -> Decimal:
    """What the operation takes from the `currency_sent` balance, fees included.

    A fee in the received currency (a conversion's mining fee) is paid from the sent balance
    at the operation's own rate, rounded up, so the account never gets it for free.
    """
    sent, received = Decimal(op.amount_sent), Decimal(op.amount_received)
    total = sent
    for f in op.fees:
        if f["currency"] == op.currency_sent:
            total += Decimal(f["amount"])
        elif f["currency"] == op.currency_received and received > 0:
            total += up(Decimal(f["amount"]) * sent / received)
    return total


def _settle_withdrawal(session: Session, op: store.Operation, now: int) -> None:
    chain = currencies.BY_CODE[op.currency_received]
    if payloads.is_internal(op):
        op.status = "confirmed"
        op.txid = addresses.txid("internal", op.id)
        target = addresses.find(session, op.to_address or "", op.to_tag)
        assert target is not None  # addresses are never deleted
        receive(session, target, Decimal(op.amount_received), "confirmed", now, op.notify_url,
                internal=True)
        return
    refused = addresses.refusal(chain, op.to_address or "")
    if refused is not None:
        _cancel_withdrawal(session, op, refused)
        return
    op.status = "confirmed"
    op.txid = ("0x" if chain.family == "eth" else "") + addresses.txid("withdrawal", op.id)


# --- exchanges ------------------------------------------------------------------------

@dataclass(frozen=True)
class Exchange:
    source: Currency
    target: Currency
    sender_amount: Decimal
    receiver_amount: Decimal
    fee_amount: Decimal
    price: Decimal


def quote(source: Currency, target: Currency, sender_amount: Decimal | None,
          receiver_amount: Decimal | None, now: int) -> Exchange:
    """The exchange at the current rate; the fee is 1% of what is bought, charged in the
    receiver currency (kept from what is credited)."""
    exact = currencies.ratio(source, target, now)
    if sender_amount is not None:
        receiver_amount = down(sender_amount * exact)
    else:
        assert receiver_amount is not None
        sender_amount = up(receiver_amount / exact)
    return Exchange(source, target, sender_amount, receiver_amount,
                    currencies.percent_of(receiver_amount, currencies.EXCHANGE_FEE_PERCENT),
                    currencies.rate(source, target, now))


def exchange(session: Session, client_id: int, deal: Exchange, foreign_id: str, now: int,
             notify: str | None) -> store.Operation:
    op = store.Operation(
        client_id=client_id, type="exchange", scope="exchange", foreign_id=foreign_id,
        status="processing", currency_sent=deal.source.code,
        amount_sent=decimals.text(deal.sender_amount), currency_received=deal.target.code,
        amount_received=decimals.text(deal.receiver_amount), notify_url=notify, created_at=now,
        confirm_at=now + confirm_delay())
    op.fees = [fee(EXCHANGE_FEE, deal.target.code, deal.fee_amount)]
    accounts.debit(session, client_id, deal.source.code, deal.sender_amount)
    session.add(op)
    session.flush()
    return op


# --- the confirmation task ------------------------------------------------------------

def _settle(session: Session, op: store.Operation, now: int) -> None:
    if op.type in ("deposit", "deposit_exchange"):
        op.status = "confirmed"
        _credit_deposit(session, op)
    elif op.type in WITHDRAWALS:
        _settle_withdrawal(session, op, now)
    elif op.type == "exchange":
        op.status = "confirmed"
        accounts.credit(session, op.client_id, op.currency_received,
                        Decimal(op.amount_received) - payloads.fee_total(op, op.currency_received))


def confirm_due(app: Flask) -> int:
    """Worker task: confirm every transaction whose time has come; returns how many."""
    with store.transaction(app) as session:
        now = clock.now(session, app)
        due_ops = session.scalars(
            select(store.Operation.id)
            .where(store.Operation.confirm_at <= now, store.Operation.type != "invoice")
            .order_by(store.Operation.id)).all()
        due_payments = session.scalars(
            select(store.Payment.id)
            .where(store.Payment.status == "not_confirmed", store.Payment.confirm_at <= now)
            .order_by(store.Payment.id)).all()
    done = 0
    for op_id in due_ops:
        with store.transaction(app) as session:
            now = clock.now(session, app)
            # Claim: only the worker whose UPDATE matched settles it.
            claimed = session.execute(
                update(store.Operation)
                .where(store.Operation.id == op_id, store.Operation.confirm_at <= now)
                .values(confirm_at=None))
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            op = session.get(store.Operation, op_id)
            assert op is not None
            if op.status in ("not_confirmed", "processing"):
                _settle(session, op, now)
                outbox.queue(session, op, now)
                done += 1
    for payment_id in due_payments:
        with store.transaction(app) as session:
            now = clock.now(session, app)
            if invoices.confirm_payment(session, payment_id, now):
                done += 1
    return done
