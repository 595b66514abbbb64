"""Money that reached an invoice's address after the invoice failed (its time ran out, or the
shop cancelled it): kept, and told to the shop once (the customer's side is
checkout/pagekinds/invoice_late.py).

What the processor does with such money is UNCONFIRMED (coinspaid-api.md has no word on
it), so both readings are accepted (deposit_news.py and invoice_news.py route them here):

- a `deposit` / `deposit_exchange` callback on the address of one of our quotes (the
  address is an ordinary permanent address of the merchant's; the embedded sandbox
  sends this one, see sandbox/invoices.py `takes_payments`);
- an invoice callback for the quote (`processing`, `pending`, `confirmed`) carrying
  transactions, after the quote or the invoice failed.

Either way the payment is stored as a `Deposit` row (the news engine's forward-only,
once-only machinery) at a `DepositAddress` for the quote's address under the quote's own
foreign_id, which is exactly how the processor keeps that address. The invoice keeps its
first final word (failed); the shop receives the processor's news about its invoice in the
shop's own ids (our invoice id, its foreign_id), every processor value passed on as sent
(8-decimal amount strings, string confirmations), encoded as PHP's json_encode writes it.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock, money
from ..clock import unix
from ..models import Deposit, DepositAddress, Invoice, InvoiceQuote, Merchant
from ..pagekinds import invoice_late
from . import deliveries, invoices

log = logging.getLogger(__name__)

# The Deposit status a late invoice callback stands for: money seen, or credited.
STATUS_OF_INVOICE_NEWS = {invoices.PROCESSING: "not_confirmed", invoices.PENDING: "confirmed",
                          invoices.CONFIRMED: "confirmed"}
MAX_LEGS = 50


# ---------------------------------------------------------------------------------------------
# Which quote, which address


def quote_by_foreign_id(session: Session, merchant_id: int, foreign_id: Any
                        ) -> InvoiceQuote | None:
    """Our quote whose foreign_id a deposit's `crypto_address.foreign_id` names."""
    if not isinstance(foreign_id, str | int) or isinstance(foreign_id, bool):
        return None
    text = str(foreign_id)
    if len(text) > 255 or not invoices.QUOTE_FOREIGN_ID.fullmatch(text):
        return None  # most deposits are a terminal link's, under the shop's own foreign_id
    return session.scalar(select(InvoiceQuote).where(
        InvoiceQuote.merchant_id == merchant_id, InvoiceQuote.foreign_id == text))


def quote_by_address(session: Session, merchant_id: int, address: str, tag: str | None
                     ) -> InvoiceQuote | None:
    """Our quote at this address (and tag), for a deposit callback that names no foreign_id."""
    quotes = session.scalars(select(InvoiceQuote).where(
        InvoiceQuote.merchant_id == merchant_id, InvoiceQuote.address == address)
        .order_by(InvoiceQuote.id)).all()
    return next((q for q in quotes if q.tag == tag), None)


def invoice_of(session: Session, quote: InvoiceQuote) -> Invoice:
    """The quote's invoice, locked: its page and its events follow one writer at a time."""
    return session.scalars(select(Invoice).where(Invoice.id == quote.invoice_id)
                           .with_for_update().execution_options(populate_existing=True)).one()


def address_of(session: Session, quote: InvoiceQuote, invoice: Invoice) -> DepositAddress:
    """The quote's address as a deposit address: the processor's address under the quote's
    foreign_id, converted to the invoice's currency when the payer's differs. Made once; the
    invoice row is locked by the caller, so two callbacks never both make it."""
    convert_to = invoice.currency if invoice.currency != quote.sender_currency else ""
    found = session.scalar(select(DepositAddress).where(
        DepositAddress.merchant_id == quote.merchant_id,
        DepositAddress.foreign_id == quote.foreign_id,
        DepositAddress.currency == quote.sender_currency,
        DepositAddress.convert_to == convert_to))
    if found is not None:
        return found
    row = DepositAddress(merchant_id=quote.merchant_id, foreign_id=quote.foreign_id,
                         currency=quote.sender_currency, convert_to=convert_to,
                         address=quote.address or "", tag=quote.tag,
                         processor_id=None)
    session.add(row)
    session.flush()
    return row


# ---------------------------------------------------------------------------------------------
# The invoice-callback reading: which legs are new since the quote's last word


def _leg_key(leg: dict[str, Any]) -> str:
    txid, leg_id = leg.get("txid"), leg.get("id")
    return f"txid:{txid}" if isinstance(txid, str) and txid else f"id:{leg_id}"


def late_legs(quote: InvoiceQuote, legs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chain legs of a callback the quote did not hold when it closed."""
    held = {_leg_key(leg) for leg in quote.transactions}
    return [leg for leg in legs if leg.get("transaction_type") != "exchange"
            and _leg_key(leg) not in held]


def is_late_news(quote: InvoiceQuote, invoice: Invoice, status: str,
                 legs: list[dict[str, Any]]) -> bool:
    """An invoice callback that reports money after the quote or the invoice failed."""
    closed = invoices.FAILED in (quote.status, invoice.status)
    return closed and status in STATUS_OF_INVOICE_NEWS and bool(late_legs(quote, legs))


# ---------------------------------------------------------------------------------------------
# What the shop receives


def _as_php(value: Any) -> Any:
    """The processor's values as they came; a bare JSON number with a fraction (parsed as
    Decimal) is written as its decimal text: PHP would print a float."""
    if isinstance(value, Decimal):
        return money.text(value)
    if isinstance(value, dict):
        return {key: _as_php(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_php(item) for item in value[:MAX_LEGS]]
    return value


def _enqueue(session: Session, merchant: Merchant, event: dict[str, Any],
             callback_id: int | None, page_id: str) -> bool:
    try:
        body = deliveries.encode(event)
    except (ValueError, TypeError) as exc:  # a value PHP cannot carry: kept, not sent
        log.warning("late payment event for merchant %s not encodable: %s",
                    merchant.client_id, exc)
        return False
    deliveries.enqueue_body(session, merchant, body, callback_id=callback_id, page_id=page_id)
    return True


def forward_deposit(session: Session, merchant: Merchant, invoice: Invoice,
                    payload: dict[str, Any], callback_id: int | None) -> bool:
    """The processor's deposit callback as the shop would have had it from the processor
    for its own invoice: the address named by our invoice id and the shop's foreign_id
    (never our quote's), every other field and type as the processor sent it."""
    event = _as_php(payload)
    crypto = dict(event.get("crypto_address") or {})
    crypto["id"] = invoice.id
    crypto["foreign_id"] = invoice.foreign_id
    event["crypto_address"] = crypto
    return _enqueue(session, merchant, event, callback_id, invoice.page_id)


def forward_invoice(session: Session, merchant: Merchant, invoice: Invoice,
                    quote: InvoiceQuote, payload: dict[str, Any], status: str,
                    callback_id: int | None) -> bool:
    """The processor's late invoice news as the shop's invoice event (`invoices.shop_event`),
    with the processor's own status, transactions, fees and remaining amount as sent."""
    error = payload.get("error")
    event = invoices.shop_event(invoice, quote, status=status,
                                error=error if isinstance(error, str) else "")
    sent = payload.get("currency_sent")
    if isinstance(sent, dict) and "currency_sent" in event:
        remaining = sent.get("remaining_amount")
        if remaining is not None:
            event["currency_sent"]["remaining_amount"] = remaining
    for name in ("transactions", "fees"):
        if isinstance(payload.get(name), list):
            event[name] = payload[name]
    return _enqueue(session, merchant, _as_php(event), callback_id, invoice.page_id)


# ---------------------------------------------------------------------------------------------
# The merchant's late-payment policy, and the shop's own event about it (README "Late
# payments"): the processor's callbacks above say what arrived, this says what it means.

EVENT_TYPE = "late_payment"
STATUS_OF_STATE = {invoice_late.ACCEPTED: "accepted", invoice_late.CHOOSING: "not_accepted"}


def judge(session: Session, merchant: Merchant, invoice: Invoice, merchant_id: int,
          processor_id: int, payload: dict[str, Any]) -> None:
    """A late payment's news was applied: once it is confirmed, the policy judges it (the
    invoice is locked by the caller), and the shop hears each new decision once."""
    deposit = session.scalar(select(Deposit).where(Deposit.merchant_id == merchant_id,
                                                   Deposit.processor_id == processor_id))
    if deposit is None:
        return
    new = invoice_late.judge(session, invoice, deposit, invoice_late.converted_of(payload))
    if new is not None:
        _enqueue(session, merchant, late_event(session, invoice, new), None, invoice.page_id)


def late_event(session: Session, invoice: Invoice, state: str) -> dict[str, Any]:
    """The shop's late-payment event: its invoice and order, the price, the confirmed late
    money in the payer's coin and its worth when it came (in the invoice's currency)."""
    confirmed = invoice_late.confirmed_of(session, invoice)
    received = sum((Decimal(d.amount) for d in confirmed), Decimal(0))
    return {
        "type": EVENT_TYPE,
        "status": STATUS_OF_STATE[state],
        "invoice_id": invoice.id,
        "page_id": invoice.page_id,
        "foreign_id": invoice.foreign_id,
        "currency": invoice.currency,
        "amount": _amount(invoice.amount),
        "received_currency": confirmed[0].currency if confirmed else None,
        "received_amount": _amount(money.plain(received)),
        "value": None if invoice.late_value is None else _amount(invoice.late_value),
        "created_at": unix(clock.now()),
    }


def _amount(text: str) -> str:
    return money.text(Decimal(text), money.PROCESSOR_PLACES)
