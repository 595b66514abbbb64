"""Invoice news: a processor invoice callback about one of our quotes moves the quote, and
with its current quote the shop's invoice, forward; each move of the invoice is told to the
shop once, as its own invoice (invoices.forward).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from .. import clock, money, states
from ..clock import from_unix
from ..models import Invoice, InvoiceQuote, Merchant, QuoteTxid
from ..pagekinds import snapshot
from . import invoices, late_news
from .deposit_news import DepositFacts, advance_deposit
from .late_news import (
    STATUS_OF_INVOICE_NEWS,
    address_of,
    forward_invoice,
    invoice_of,
    is_late_news,
    late_legs,
)
from .news_base import (
    APPLIED,
    FLAGGED,
    IGNORED,
    NOT_OURS,
    STALE,
    Key,
    Malformed,
    Result,
    bounded_amount,
    confirmations_of,
    not_forward,
    remaining_of,
    storable,
    text_or_none,
    valid_id,
)

FAILURE_REASONS = (
    ("paid less", "underpaid"),
    ("processing too long", "timeout"),
    ("not paid", "expired"),
    ("cancel", "cancelled"),
)


def failure_reason(error: Any) -> str | None:
    text = error.lower() if isinstance(error, str) else ""
    for needle, reason in FAILURE_REASONS:
        if needle in text:
            return reason
    return None


def _bounded_text(value: Any, limit: int) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not storable(value):
        return None
    return value[:limit]


LEG_TEXT = {"currency": 16, "transaction_type": 16, "type": 16, "address": 255, "tag": 64,
            "txid": 255}
MAX_LEGS = 50


def _legs(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The processor's transaction legs, each field bounded (what the shop's event and the
    receipt show); an unreadable leg is left out rather than stored."""
    legs = payload.get("transactions")
    if not isinstance(legs, list):
        return []
    kept: list[dict[str, Any]] = []
    for leg in legs[:MAX_LEGS]:
        if not isinstance(leg, dict):
            continue
        item: dict[str, Any] = {}
        if valid_id(leg.get("id")):
            item["id"] = leg["id"]
        for name, limit in LEG_TEXT.items():
            item[name] = _bounded_text(leg.get(name), limit)
        try:
            item["amount"] = money.text(bounded_amount(leg.get("amount"), "amount"),
                                        invoices.PLACES)
        except Malformed:
            continue
        item["confirmations"] = confirmations_of(leg.get("confirmations"))
        kept.append(item)
    return kept


def _fees(payload: dict[str, Any]) -> list[dict[str, Any]]:
    fees = payload.get("fees")
    if not isinstance(fees, list):
        return []
    kept = []
    for fee in fees[:MAX_LEGS]:
        if not isinstance(fee, dict):
            continue
        try:
            amount = money.text(bounded_amount(fee.get("amount"), "fee"), invoices.PLACES)
        except Malformed:
            continue
        kept.append({"type": _bounded_text(fee.get("type"), 64),
                     "currency": _bounded_text(fee.get("currency"), 16), "amount": amount})
    return kept


def invoice_moves(current: str, new: str, current_remaining: Decimal | None,
                  new_remaining: Decimal | None) -> Result | None:
    """None when `new` is news that moves an invoice (or quote) forward; else why not.

    Final states keep the first final word. Otherwise money decides first: less still
    missing is always news (an instalment), more missing is older news. With the same amount
    missing the status must rank higher, except `processing` -> `pending` while something is
    still missing: a seen part confirmed and the rest is due (good_until_expired).
    """
    if current in invoices.FINAL or new in invoices.FINAL:
        return not_forward(current, new, invoices.RANK, invoices.FINAL)
    if current_remaining is not None and new_remaining is not None:
        if new_remaining < current_remaining:
            return None
        if new_remaining > current_remaining:
            return Result(STALE)
    if current == invoices.PROCESSING and new == invoices.PENDING and new_remaining:
        return None
    if invoices.RANK[new] > invoices.RANK.get(current, -1):
        return None
    return Result(STALE)


def adopt_quote(session: Session, quote: InvoiceQuote, key: Key, payload: dict[str, Any]
                ) -> None:
    """Complete an unanswered quote from the processor's callback, as its answer would have;
    it becomes the invoice's current quote unless another one is."""
    quote.processor_id = key.processor_id
    crypto = payload.get("crypto_address")
    if isinstance(crypto, dict):
        # An empty address is the processor saying it gave none (see shop_event).
        quote.address = _bounded_text(crypto.get("address"), 255) or None
        quote.tag = _bounded_text(text_or_none(crypto.get("tag")), 64)
    sent = payload.get("currency_sent")
    if isinstance(sent, dict) and sent.get("amount") is not None:
        quote.sender_amount = money.text(bounded_amount(sent.get("amount"), "amount"))
    quote.fixed_at = from_unix(payload.get("fixed_at"))
    quote.release_at = from_unix(payload.get("expires_at"))
    quote.status = invoices.PENDING
    quote.remaining_amount = quote.sender_amount
    session.flush()
    if invoices.current_quote(session, quote.invoice_id) is None:
        invoices.make_current(session, quote.invoice_id, quote.id)
        quote.current = True


@dataclass(frozen=True)
class InvoiceNews:
    """One invoice callback about a quote of ours, read once, with what the quote missed
    before it (the invoice follows one quote at a time: what that quote last missed is
    comparable with what it misses now)."""

    status: str
    remaining: Decimal | None  # what the callback says is still missing
    held: Decimal | None  # what the quote missed before this callback
    legs: list[dict[str, Any]]
    error: str
    expires_at: datetime | None
    fees: list[dict[str, Any]]


def read_news(key: Key, payload: dict[str, Any], legs: list[dict[str, Any]],
              quote: InvoiceQuote) -> InvoiceNews:
    return InvoiceNews(
        status=key.status, remaining=remaining_of(payload),
        held=None if quote.remaining_amount is None else Decimal(quote.remaining_amount),
        legs=legs, error=_bounded_text(payload.get("error"), 255) or "",
        expires_at=from_unix(payload.get("expires_at")), fees=_fees(payload))


def apply_invoice(session: Session, merchant_id: int, key: Key, payload: dict[str, Any],
                  callback_id: int) -> Result:
    """A processor invoice callback: about one of our quotes, by its processor id.

    The quote always keeps the processor's latest word (amounts, legs). The shop's invoice
    moves forward only with its current quote; a superseded quote moves it only when money
    arrived there in full (confirmed); any other money on a superseded quote is flagged and
    kept. An expired quote of an invoice without a timer leaves the invoice open: the
    customer may pick again. Each move is forwarded to the shop once, as its own invoice.
    """
    quote = our_quote(session, merchant_id, key, payload)
    if isinstance(quote, Result):
        return quote
    if key.status not in invoices.RANK:
        return Result(IGNORED)
    invoice = invoice_of(session, quote)
    legs = _legs(payload)
    if is_late_news(quote, invoice, key.status, legs):
        return apply_late_invoice(session, merchant_id, key, payload, quote, invoice,
                                  callback_id)
    news = read_news(key, payload, legs, quote)
    refused = record_on_quote(session, quote, news)
    if refused is not None and refused.outcome == FLAGGED:
        return refused
    money_seen = bool(legs) or Decimal(quote.amount_paid or "0") > 0
    if not quote.current and (news.status != invoices.CONFIRMED or refused is not None):
        return superseded(quote, news, refused, money_seen)
    if refused is not None:
        return refused
    return move_invoice(session, merchant_id, invoice, quote, news, money_seen, callback_id)


def our_quote(session: Session, merchant_id: int, key: Key, payload: dict[str, Any]
              ) -> InvoiceQuote | Result:
    """The quote (locked) this callback is about; NOT_OURS, or FLAGGED when it names another
    foreign_id than ours."""
    quote = _locked_quote(session, InvoiceQuote.merchant_id == merchant_id,
                          InvoiceQuote.processor_id == key.processor_id)
    if quote is None:
        quote = unanswered_quote(session, merchant_id, key, payload)
    if quote is None:
        return Result(NOT_OURS)
    foreign_id = payload.get("foreign_id")
    if foreign_id is not None and str(foreign_id) != quote.foreign_id:
        return Result(FLAGGED, "foreign_id differs from the foreign_id of our invoice")
    return quote


def unanswered_quote(session: Session, merchant_id: int, key: Key, payload: dict[str, Any]
                     ) -> InvoiceQuote | None:
    """A quote whose processor answer we never stored (lost, or not yet committed), adopted
    from the callback: the foreign_id is ours, stored before the call, so it still finds it."""
    foreign_id = payload.get("foreign_id")
    if not isinstance(foreign_id, str) or not storable(foreign_id):
        return None
    quote = _locked_quote(session, InvoiceQuote.merchant_id == merchant_id,
                          InvoiceQuote.foreign_id == foreign_id,
                          InvoiceQuote.processor_id.is_(None))
    if quote is not None:
        adopt_quote(session, quote, key, payload)
    return quote


def _locked_quote(session: Session, *where: ColumnElement[bool]) -> InvoiceQuote | None:
    return session.scalars(select(InvoiceQuote).where(*where).with_for_update()
                           .execution_options(populate_existing=True)).first()


def record_on_quote(session: Session, quote: InvoiceQuote, news: InvoiceNews) -> Result | None:
    """Give the quote the processor's latest word when it is news: None when it moved, else
    why not (and the quote is left as it was)."""
    refused = invoice_moves(quote.status, news.status, news.held, news.remaining)
    if refused is None:
        quote.status = news.status
        if news.remaining is not None:
            quote.remaining_amount = money.text(news.remaining)
            if quote.sender_amount is not None:
                paid = max(Decimal(quote.sender_amount) - news.remaining, Decimal(0))
                quote.amount_paid = money.text(paid)
        quote.transactions_json = json.dumps(news.legs)
        remember_txids(session, quote, news.legs)
        quote.release_at = news.expires_at or quote.release_at
        quote.error = news.error or None
        quote.updated_at = clock.now()
        session.flush()
    return refused


def remember_txids(session: Session, quote: InvoiceQuote, legs: list[dict[str, Any]]) -> None:
    """Index the legs' txids, so that the back office finds this invoice by one of them."""
    txids = {leg["txid"] for leg in legs if isinstance(leg.get("txid"), str) and leg["txid"]}
    if not txids:
        return
    known = set(session.scalars(select(QuoteTxid.txid).where(QuoteTxid.quote_id == quote.id)))
    session.add_all(QuoteTxid(quote_id=quote.id, txid=txid) for txid in sorted(txids - known))


def superseded(quote: InvoiceQuote, news: InvoiceNews, refused: Result | None,
               money_seen: bool) -> Result:
    """News on a quote the customer left that does not pay the invoice in full: money there is
    flagged on the quote (kept for an operator), anything else changes nothing."""
    if money_seen:
        quote.flag = f"{news.status}: payment to a superseded quote"
        return Result(FLAGGED, quote.flag)
    return refused or Result(IGNORED)


def price_expired(invoice: Invoice, news: InvoiceNews, money_seen: bool) -> bool:
    """No shop-facing timer: an unpaid quote that expired ended the price, not the invoice.
    A fresh pick quotes again."""
    return (not invoice.timer and news.status == invoices.FAILED and not money_seen
            and failure_reason(news.error) == "expired"
            and invoice.status in states.UNPAID_INVOICE)


def move_invoice(session: Session, merchant_id: int, invoice: Invoice, quote: InvoiceQuote,
                 news: InvoiceNews, money_seen: bool, callback_id: int) -> Result:
    """The quote's news, applied to the shop's invoice and its page when it moves it."""
    if price_expired(invoice, news, money_seen):
        invoices.sync_page(session, invoice, quote)
        return Result(APPLIED)
    moved = invoice_moves(invoice.status, news.status, news.held, news.remaining)
    if moved is not None:
        return invoice_stays(session, invoice, news, moved, money_seen)
    settle_invoice(session, invoice, quote, news)
    merchant = session.get(Merchant, merchant_id)
    assert merchant is not None
    invoices.forward(session, merchant, invoice, quote, status=news.status, error=news.error,
                     fees=news.fees, callback_id=callback_id)
    return Result(APPLIED)


def invoice_stays(session: Session, invoice: Invoice, news: InvoiceNews, refused: Result,
                  money_seen: bool) -> Result:
    """The quote moved but the invoice cannot follow: money that contradicts the invoice's
    word is flagged; otherwise its page shows the quote's news under the invoice's status."""
    if refused.outcome == FLAGGED or money_seen and news.status != invoice.status:
        return Result(FLAGGED, refused.flag or f"{news.status} after {invoice.status}")
    invoices.sync_page(session, invoice, invoices.current_quote(session, invoice.id))
    return refused


def settle_invoice(session: Session, invoice: Invoice, quote: InvoiceQuote,
                   news: InvoiceNews) -> None:
    """Move the invoice (and its page) to the quote's status."""
    if not quote.current:
        # Paid in full where the customer was asked before: that quote is the invoice's now.
        invoices.make_current(session, invoice.id, quote.id)
    invoice.status = news.status
    invoice.reason = failure_reason(news.error) if news.status == invoices.FAILED else None
    invoice.updated_at = clock.now()
    session.flush()
    invoices.sync_page(session, invoice, quote)


def apply_late_invoice(session: Session, merchant_id: int, key: Key, payload: dict[str, Any],
                       quote: InvoiceQuote, invoice: Invoice, callback_id: int) -> Result:
    """An invoice callback reporting money after the quote or the invoice failed: the
    invoice keeps its first final word; the money is kept as a Deposit at the quote's
    address (keyed by the processor's invoice id, one row per quote, moving forward from
    seen to credited), shown on the page, and the shop hears the processor's news once."""
    legs = late_legs(quote, _legs(payload))
    ours = address_of(session, quote, invoice)
    amount = sum((Decimal(str(leg["amount"])) for leg in legs), Decimal(0))
    txid = legs[0].get("txid")
    facts = DepositFacts(
        currency=quote.sender_currency.upper(), amount=money.text(amount),
        txid=txid if isinstance(txid, str) else None,
        confirmations=min(int(leg.get("confirmations") or 0) for leg in legs))
    status = STATUS_OF_INVOICE_NEWS[key.status]
    result = advance_deposit(session, merchant_id, Key(key.processor_id, key.type, status),
                             ours, facts)
    if result.outcome == APPLIED:
        snapshot.mark(session, [invoice.page_id])
        merchant = session.get(Merchant, merchant_id)
        assert merchant is not None
        forward_invoice(session, merchant, invoice, quote, payload, key.status, callback_id)
        late_news.judge(session, merchant, invoice, merchant_id, key.processor_id, payload)
    return result
