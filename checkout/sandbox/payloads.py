"""The callback-shaped objects (coinspaid-api.md §3), also answered by transactions/info.

Field order follows the documented examples; amounts are 8-decimal strings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import currencies, store
from .currencies import amount_text

# How deep a confirmed sandbox transaction is.
CONFIRMED_DEPTH = 3

# Fee types as the processor names them, the same in every callback type; a mining fee is
# "mining", an exchange's fee "exchange".
DEPOSIT_FEE = "fee_crypto_deposit"
DEPOSIT_TO_FIAT_FEE = "fee_crypto_deposit_to_fiat"
DEPOSIT_INTERNAL_FEE = "fee_crypto_deposit_internal"
WITHDRAWAL_FEE = "fee_crypto_withdrawal"
WITHDRAWAL_INTERNAL_FEE = "fee_crypto_withdrawal_internal"
EXCHANGE_FEE = "exchange"
MINING_FEE = "mining"
_INTERNAL_FEES = frozenset({DEPOSIT_INTERNAL_FEE, WITHDRAWAL_INTERNAL_FEE})


def is_internal(op: store.Operation) -> bool:
    """Between two of the processor's own addresses: nothing on chain, the internal fees.

    The fee is what marks it (the processor charges internal transfers their own fee), so
    no column is needed.
    """
    return any(f["type"] in _INTERNAL_FEES for f in op.fees)


def _leg_kind(op: store.Operation) -> str:
    return "internal" if is_internal(op) else "blockchain"


def _fees(op: store.Operation) -> list[dict[str, str]]:
    return [{"type": f["type"], "currency": f["currency"], "amount": amount_text(Decimal(
        f["amount"]))} for f in op.fees]


def fee_total(op: store.Operation, currency: str) -> Decimal:
    return sum((Decimal(f["amount"]) for f in op.fees if f["currency"] == currency), Decimal(0))


def _confirmations(status: str, currency: str | None = None) -> str:
    """A string, as the processor sends it ("0", "3"): Go and Rust clients parse it as one.

    A confirmed deposit is at least as deep as its currency requires (§7): ETH needs 10.
    """
    if status != "confirmed":
        return "0"
    needed = currencies.BY_CODE[currency].confirmations if currency in currencies.BY_CODE else 0
    return str(max(CONFIRMED_DEPTH, needed))


def _address_object(address: store.Address, with_foreign_id: bool = True) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": address.id, "currency": address.currency}
    if address.convert_to:
        obj["convert_to"] = address.convert_to
    obj["address"] = address.address
    obj["tag"] = address.tag
    if with_foreign_id:
        obj["foreign_id"] = address.foreign_id
    return obj


# Transactions have ids of their own, apart from the root id: an operation's chain leg,
# its exchange leg and invoice payments each take one residue, so no two legs share an id
# (a merchant may key legs by id) and a leg keeps its id from not_confirmed to confirmed.
_LEGS = 3


def chain_leg_id(operation_id: int) -> int:
    return _LEGS * operation_id


def exchange_leg_id(operation_id: int) -> int:
    return _LEGS * operation_id + 1


def payment_leg_id(payment_id: int) -> int:
    return _LEGS * payment_id + 2


def _exchange_leg(op: store.Operation, currency: str, amount: str, currency_to: str,
                  amount_to: str) -> dict[str, Any]:
    return {"id": exchange_leg_id(op.id), "currency": currency, "currency_to": currency_to,
            "transaction_type": "exchange", "type": "exchange", "amount": amount,
            "amount_to": amount_to}


def deposit(session: Session, op: store.Operation) -> dict[str, Any]:
    address = session.get(store.Address, op.address_id)
    assert address is not None
    confirmed = op.status == "confirmed"
    received = Decimal(op.amount_received)
    obj: dict[str, Any] = {"id": op.id, "type": op.type}
    if address.end_user_reference:
        obj["end_user_reference"] = address.end_user_reference
    obj["crypto_address"] = _address_object(address)
    obj["currency_sent"] = {"currency": op.currency_sent,
                            "amount": amount_text(Decimal(op.amount_sent))}
    # The fee is charged on confirmation: until then nothing is taken off.
    net = received - fee_total(op, op.currency_received) if confirmed else received
    obj["currency_received"] = {"currency": op.currency_received, "amount": amount_text(received),
                                "amount_minus_fee": amount_text(net)}
    chain_scored = address.currency in ("BTC", "BCH", "ETH") and not is_internal(op)
    legs: list[dict[str, Any]] = [{
        "id": chain_leg_id(op.id), "currency": op.currency_sent, "transaction_type": _leg_kind(op),
        "type": "deposit", "address": address.address, "tag": address.tag,
        "amount": amount_text(Decimal(op.amount_sent)), "txid": op.txid,
        "riskscore": "0.1" if chain_scored else None,
        "confirmations": _confirmations(op.status, address.currency)}]
    if legs[0]["riskscore"] is None:
        del legs[0]["riskscore"]
    if op.type == "deposit_exchange":
        legs.append(_exchange_leg(op, op.currency_sent, amount_text(Decimal(op.amount_sent)),
                                  op.currency_received, amount_text(received)))
    obj["transactions"] = legs
    obj["fees"] = _fees(op) if confirmed else []
    obj["error"] = op.error
    obj["status"] = op.status
    return obj


def withdrawal(op: store.Operation) -> dict[str, Any]:
    """A withdrawal's callback: `confirmed` or `cancelled` (documented), or `pending`, held
    by the account's withdrawal limits. No pending example is published (UNCONFIRMED): it is
    the confirmed shape before the chain, as a deposit's not_confirmed is: the amounts, no
    txid yet, confirmations "0", no fees charged yet."""
    exchange = op.type == "withdrawal_exchange"
    chain_currency = op.currency_received
    obj: dict[str, Any] = {"id": op.id, "foreign_id": op.foreign_id, "type": op.type}
    if op.end_user_reference:
        obj["end_user_reference"] = op.end_user_reference
    address: dict[str, Any] = {"id": op.id, "currency": op.currency_sent}
    if exchange:
        address["convert_to"] = op.currency_received
    address.update({"address": op.to_address, "tag": op.to_tag})
    obj["crypto_address"] = address
    sent = amount_text(Decimal(op.amount_sent))
    received = amount_text(Decimal(op.amount_received))
    if op.status != "cancelled":
        obj["currency_sent"] = {"currency": op.currency_sent, "amount": sent}
        obj["currency_received"] = {"currency": op.currency_received, "amount": received}
    legs: list[dict[str, Any]] = []
    if exchange:
        legs.append(_exchange_leg(op, op.currency_sent, sent, op.currency_received, received))
    legs.append({
        "id": chain_leg_id(op.id), "currency": chain_currency, "transaction_type": _leg_kind(op),
        "type": "withdrawal", "address": op.to_address, "tag": op.to_tag, "amount": received,
        "txid": op.txid if op.status == "confirmed" else None,
        "confirmations": _confirmations(op.status)})
    obj["transactions"] = legs
    obj["fees"] = _fees(op) if op.status == "confirmed" else []
    obj["error"] = op.error
    obj["status"] = op.status
    return obj


def exchange(op: store.Operation) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": op.id}
    if op.foreign_id is not None:
        obj["foreign_id"] = op.foreign_id
    sent = amount_text(Decimal(op.amount_sent))
    received = amount_text(Decimal(op.amount_received))
    obj.update({
        "type": "exchange",
        "currency_sent": {"currency": op.currency_sent, "amount": sent},
        "currency_received": {"currency": op.currency_received, "amount": received},
        "transactions": [_exchange_leg(op, op.currency_sent, sent, op.currency_received,
                                       received)],
        "fees": _fees(op), "error": op.error, "status": op.status})
    return obj


def invoice(session: Session, op: store.Operation) -> dict[str, Any]:
    inv = session.get(store.Invoice, op.id)
    assert inv is not None
    address = session.get(store.Address, op.address_id) if op.address_id else None
    payments = session.scalars(select(store.Payment).where(store.Payment.operation_id == op.id)
                               .order_by(store.Payment.id)).all()
    obj: dict[str, Any] = {"id": op.id, "foreign_id": op.foreign_id}
    if op.end_user_reference:
        obj["end_user_reference"] = op.end_user_reference
    obj["type"] = "invoice"
    obj["crypto_address"] = _invoice_address(inv, address)
    due = Decimal(inv.sender_amount) if inv.sender_amount else None
    # Before a currency is chosen there is nothing the payer was to send: no `currency_sent`
    # (UNCONFIRMED; typed clients declare it optional: Go `*CurrencyAmount`, Rust `Option`).
    if inv.sender_currency and due is not None:
        paid = sum((Decimal(p.amount) for p in payments if p.status != "cancelled"), Decimal(0))
        obj["currency_sent"] = {"currency": inv.sender_currency, "amount": amount_text(due),
                                "remaining_amount": amount_text(max(due - paid, Decimal(0)))}
    obj["currency_received"] = {"currency": inv.currency,
                                "amount": amount_text(Decimal(inv.amount))}
    obj["transactions"] = [{
        "id": payment_leg_id(p.id),
        "currency": address.currency if address else inv.sender_currency,
        "transaction_type": "blockchain", "type": "deposit",
        "address": address.address if address else None, "tag": address.tag if address else None,
        "amount": amount_text(Decimal(p.amount)), "txid": p.txid,
        "confirmations": _confirmations(p.status, address.currency if address else None)}
        for p in payments]
    obj["fees"] = _fees(op) if op.status == "confirmed" else []
    obj["error"] = op.error
    obj["status"] = op.status
    obj["fixed_at"] = inv.fixed_at
    obj["expires_at"] = inv.expires_at
    return obj


# An invoice no address was handed out for (type 1 or 2, cancelled or expired before the
# payer chose a currency). Every invoice callback the processor documents carries a
# `crypto_address`, and Rust's client requires one (integer `id`, string `currency` and
# `address`: null fails it); Go's reads absent and null alike as 0 and "". So the documented
# keys with the empty values both parse. UNCONFIRMED: what the processor really sends there
# (this object, none, or nulls); the site accepts all of them.
NO_ADDRESS: dict[str, Any] = {"id": 0, "currency": "", "address": "", "tag": None}


def _invoice_address(inv: store.Invoice, address: store.Address | None) -> dict[str, Any]:
    if address is None:
        return {**NO_ADDRESS, "currency": inv.sender_currency or ""}
    crypto: dict[str, Any] = {"id": address.id, "currency": address.currency}
    if address.currency != inv.currency:
        crypto["convert_to"] = inv.currency
    crypto.update({"address": address.address, "tag": address.tag})
    return crypto


def build(session: Session, op: store.Operation) -> dict[str, Any]:
    """The callback body for the operation's current state."""
    if op.type in ("deposit", "deposit_exchange"):
        return deposit(session, op)
    if op.type in ("withdrawal", "withdrawal_exchange"):
        return withdrawal(op)
    if op.type == "exchange":
        return exchange(op)
    return invoice(session, op)
