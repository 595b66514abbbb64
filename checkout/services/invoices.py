"""Invoices made through our drop-in `invoices/create`: the service behind the API and the page.

A shop's `Invoice` is ours; the processor only ever sees `InvoiceQuote`s, one type 3 invoice
(timer and sender currency) per currency the customer picks. The shop never learns the
processor's ids or foreign ids: it hears of its invoice under our `Invoice.id` and its own
`foreign_id`, in CoinsPaid's invoice callback format (`shop_event`).

Every processor call happens with no database transaction open: the quote (and its foreign_id,
ours) is committed first, then the processor is asked, then its answer is stored in a new
transaction. A crash in between leaves a quote in status "new", which the next attempt for
the same currency finds and completes under the same foreign_id.

Types (coinspaid-api.md §2.11):
1. no timer, no sender currency: status `created`; nothing at the processor until the pick.
2. timer, no sender currency: `pending`, with the shop-facing 15-minute timer from now; the
   quote made on the pick has the processor's own timer.
3. timer and sender currency: the quote is made at once, and the answer carries its address.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock, currencies, db, money, processor
from ..clock import from_unix as _from_unix
from ..clock import unix as _unix
from ..emails import valid_email
from ..models import Invoice, InvoiceQuote, Merchant, Page
from ..pagekinds import snapshot
from ..pagekinds.invoice import (  # noqa: F401 (the workflows and tests that move invoices read them here)
    FINAL,
    OPEN,
    RANK,
    current_quote,
    made_in_transaction,
    paid_anything,
    payment_seen,
    quotes_of,
    return_url,
)
from ..states import (  # noqa: F401 (likewise)
    CONFIRMED,
    CREATED,
    FAILED,
    PENDING,
    PROCESSING,
    UNPAID_INVOICE,
)
from . import deliveries

log = logging.getLogger(__name__)

# Quote statuses before the processor's own: not yet answered, and refused by it.
NEW, REFUSED = "new", "refused"

PLACES = 8  # the processor's amounts are 8-place strings
TIMER = timedelta(minutes=15)
TAKEN = "The foreign id has already been taken."
# The processor's failure texts (coinspaid-api.md §3), also in the events we make ourselves.
NOT_PAID = "Timer expired. User not paid."
CANCELLED_TEXT = "Invoice was cancelled."
PAGE_TOKEN_BYTES = 24


class InvalidRequest(Exception):
    """The processor-worded `{"errors": {...}}` answer, with its HTTP status."""

    def __init__(self, errors: Mapping[str, str], status: int = 400) -> None:
        super().__init__(dict(errors))
        self.errors = dict(errors)
        self.status = status


class WrongState(Exception):
    """The invoice cannot do that now (cancel a final invoice, change currency after paying)."""


class UnknownInvoice(Exception):
    """No invoice of this merchant has that foreign_id."""


class QuoteRefused(Exception):
    """The processor refused to make this quote (too small, no exchange for the pair...)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(dict(errors))
        self.errors = dict(errors)


# ---------------------------------------------------------------------------------------------
# What the API asked for, validated (web/invoice_wire.py)


@dataclass(frozen=True)
class InvoiceRequest:
    foreign_id: str
    title: str
    description: str | None
    currency: str
    amount: Decimal
    timer: bool
    sender_currency: str | None
    type: str
    url_success: str
    url_failed: str
    email_user: str | None
    end_user_reference: str | None


# ---------------------------------------------------------------------------------------------
# Creating


@dataclass(frozen=True)
class Made:
    """What `store_new` committed. Holding the page keeps it in the session's identity map
    (a weak one) until the change's last commit, which then reads it from there."""

    invoice: Invoice
    page: Page
    quote: InvoiceQuote | None

    @property
    def current(self) -> InvoiceQuote | None:
        """The invoice's current quote as this request left it (the API's answer shows it)."""
        return self.quote if self.quote is not None and self.quote.current else None


def create(session: Session, merchant: Merchant, req: InvoiceRequest) -> Invoice:
    """Store the invoice and its page (committed); InvalidRequest when foreign_id is taken.

    The unique (merchant, foreign_id) decides between two identical requests at once; no
    SELECT asks first, as a taken foreign_id is the exception.
    """
    return store_new(session, merchant, req, quote_in=None).invoice


def store_new(session: Session, merchant: Merchant, req: InvoiceRequest, *,
              quote_in: str | None) -> Made:
    """`create`, and with `quote_in` its first quote (status "new", our foreign_id) in the
    same commit: the foreign_id is ours before the processor hears of it."""
    now = clock.now()
    page_id = secrets.token_urlsafe(PAGE_TOKEN_BYTES)
    invoice = Invoice(
        merchant_id=merchant.client_id, foreign_id=req.foreign_id, page_id=page_id,
        title=req.title, description=req.description, currency=req.currency,
        amount=money.text(req.amount), timer=req.timer, type=req.type,
        email_user=req.email_user, sender_currency=req.sender_currency,
        end_user_reference=req.end_user_reference, url_success=req.url_success,
        url_failed=req.url_failed, status=PENDING if req.timer else CREATED, reason=None,
        fixed_at=now if req.timer else None, release_at=now + TIMER if req.timer else None,
        created_at=now, updated_at=now)
    # Born in step with its invoice (as sync_page keeps it): one INSERT, no UPDATE after.
    page = Page(id=page_id, kind="invoice", merchant_id=merchant.client_id,
                created_at=now, updated_at=now, **page_fields(invoice, None))
    session.add(page)
    session.add(invoice)
    quote: InvoiceQuote | None = None
    try:
        if quote_in is not None:
            session.flush()  # the invoice's id names its quote
            quote = new_quote(invoice, quote_in)
            session.add(quote)
        made_in_transaction(session, invoice, [] if quote is None else [quote])
        session.commit()
    except IntegrityError:
        session.rollback()
        raise InvalidRequest({"foreign_id": TAKEN}) from None
    return Made(invoice, page, quote)


# Every quote's foreign_id at the processor has this shape (`new_quote`): a deposit callback
# whose foreign_id has another is about no quote of ours, and is asked no question about one.
QUOTE_FOREIGN_ID = re.compile(r"[0-9]+\.[0-9a-f]{16}")


def new_quote(invoice: Invoice, sender_currency: str) -> InvoiceQuote:
    """A quote not yet asked for, under a foreign_id of ours (`QUOTE_FOREIGN_ID`)."""
    now = clock.now()
    return InvoiceQuote(
        invoice_id=invoice.id, merchant_id=invoice.merchant_id,
        foreign_id=f"{invoice.id}.{secrets.token_hex(8)}", sender_currency=sender_currency,
        status=NEW, amount_paid="0", current=False, created_at=now, updated_at=now)


def open_invoice(merchant: Merchant, req: InvoiceRequest) -> Made:
    """What `invoices/create` does: store, and for type 3 make the quote at once.

    Types 1 and 2 are one commit. Type 3 is two: the invoice, its page and its quote's
    foreign_id before the processor is asked, then the answer with the page's model, built
    once, for the outcome (snapshot.one_change).
    A type 3 quote the processor refuses (too small, no exchange) leaves no invoice behind:
    the shop gets the processor's 400 and may send the same foreign_id again.
    """
    session = db.session()
    if req.sender_currency is None:
        return store_new(session, merchant, req, quote_in=None)
    with snapshot.one_change(session):
        made = store_new(session, merchant, req, quote_in=req.sender_currency)
        _quote_at_once(session, merchant, made)
    return made


def _quote_at_once(session: Session, merchant: Merchant, made: Made) -> None:
    invoice, quote = made.invoice, made.quote
    assert quote is not None
    try:
        first_quote(session, merchant, invoice, quote)
    except QuoteRefused as exc:
        discard(session, invoice.id)
        raise InvalidRequest(exc.errors) from exc
    except processor.Unavailable as exc:
        if not exc.maybe_created:
            discard(session, invoice.id)
            raise
        # The processor may hold the quote: keep it ("new"); the page completes it under
        # the same foreign_id, and the shop's answer has no address yet.
        log.warning("invoice %s: quote may exist at the processor; left to the page",
                    invoice.id)
    except processor.ProcessorError:
        discard(session, invoice.id)
        raise


def first_quote(session: Session, merchant: Merchant, invoice: Invoice,
                quote: InvoiceQuote) -> None:
    """Ask the processor for the quote `store_new` committed, and store its answer,
    uncommitted: the change's last commit (one_change's) stores it with the page's model."""
    try:
        answer = _ask(processor.client_for(merchant), invoice, quote, resumed=False)
    except processor.ValidationError as exc:
        raise QuoteRefused(exc.errors or {"error": exc.message}) from exc
    try:
        store_answer(session, invoice.id, quote.id, answer, commit=False)
    except BaseException:
        session.rollback()
        raise


def discard(session: Session, invoice_id: int) -> None:
    """Remove an invoice the shop never received an answer for (its type 3 quote failed)."""
    invoice = session.get(Invoice, invoice_id, populate_existing=True)
    if invoice is None:
        return
    for quote in session.scalars(select(InvoiceQuote).where(
            InvoiceQuote.invoice_id == invoice_id)):
        session.delete(quote)
    page = session.get(Page, invoice.page_id)
    session.delete(invoice)
    session.flush()
    if page is not None:
        session.delete(page)
    session.commit()


# ---------------------------------------------------------------------------------------------
# Quotes: the processor invoice for the customer's currency


def _lock_invoice(session: Session, invoice_id: int) -> Invoice:
    """The invoice, locked for this transaction: a write first (SQLite takes its write lock
    only on a write, so reading first would decide on what another writer is changing)."""
    session.execute(update(Invoice).where(Invoice.id == invoice_id)
                    .values(updated_at=Invoice.updated_at))
    invoice = session.scalars(select(Invoice).where(Invoice.id == invoice_id)
                              .with_for_update().execution_options(populate_existing=True)
                              ).one()
    return invoice


def choose_currency(page_id: str, sender_currency: str) -> InvoiceQuote:
    """The customer picked `sender_currency` on the page: the current quote in it.

    A quote still open in that currency is kept; otherwise a new processor invoice is made
    and the old quote is cancelled at the processor (after commit, best effort).
    Raises WrongState, QuoteRefused, or processor errors (ProcessorError: try again later).
    """
    session = db.session()
    invoice = session.scalar(select(Invoice).where(Invoice.page_id == page_id))
    if invoice is None:
        raise LookupError(page_id)
    code = currencies.get(sender_currency)
    if code is None:
        raise QuoteRefused({"sender_currency": "The selected sender currency is invalid."})
    return make_quote(session, invoice.id, code.code)


def make_quote(session: Session, invoice_id: int, sender_currency: str) -> InvoiceQuote:
    """Commit a quote (our foreign_id), ask the processor, store its answer: three steps."""
    invoice = _lock_invoice(session, invoice_id)
    if invoice.status not in (CREATED, PENDING):
        session.rollback()
        raise WrongState(invoice.status)
    quotes = quotes_of(session, invoice.id)
    if paid_anything(quotes):
        session.rollback()
        raise WrongState("paid")
    current = next((q for q in quotes if q.current), None)
    if current is not None and current.sender_currency == sender_currency and \
            current.status == PENDING:
        session.commit()
        return current
    # An unanswered quote in this currency (a crash or timeout mid-call) is completed, never
    # replaced: the processor may hold an invoice under its foreign_id already.
    quote = next((q for q in quotes if q.status == NEW
                  and q.sender_currency == sender_currency), None)
    resumed = quote is not None
    if quote is None:
        quote = new_quote(invoice, sender_currency)
        session.add(quote)
    session.commit()  # the foreign_id is ours before the processor hears of it
    merchant = session.get(Merchant, invoice.merchant_id)
    assert merchant is not None
    client = processor.client_for(merchant)
    try:
        answer = _ask(client, invoice, quote, resumed=resumed)
    except processor.ValidationError as exc:
        refuse_quote(session, quote.id, exc)
        raise QuoteRefused(exc.errors or {"error": exc.message}) from exc
    old = store_answer(session, invoice.id, quote.id, answer)
    for stale in old:
        cancel_at_processor(merchant, stale)
    fresh = session.get(InvoiceQuote, quote.id, populate_existing=True)
    assert fresh is not None
    return fresh


def _ask(client: processor.ProcessorClient, invoice: Invoice, quote: InvoiceQuote, *,
         resumed: bool) -> processor.Invoice:
    """The processor invoice under the quote's foreign_id: found after a lost answer, or made."""
    if resumed:
        found = _find(client, quote.foreign_id)
        if found is not None:
            return found
    try:
        return client.invoices_create(
            foreign_id=quote.foreign_id, title=invoice.title, currency=invoice.currency,
            amount=Decimal(invoice.amount), url_success=invoice.url_success,
            url_failed=invoice.url_failed, timer=True, email_user=invoice.email_user,
            description=invoice.description, sender_currency=quote.sender_currency,
            type=invoice.type, end_user_reference=invoice.end_user_reference)
    except processor.ValidationError as exc:
        if exc.errors.get("foreign_id") == TAKEN:
            # Our earlier attempt reached the processor after all: that invoice is the quote.
            found = _find(client, quote.foreign_id)
            if found is not None:
                return found
        raise


def _find(client: processor.ProcessorClient, foreign_id: str) -> processor.Invoice | None:
    """The processor's invoice under our foreign_id, read from transactions/info."""
    try:
        obj = client.transactions_info(foreign_id=foreign_id)
    except processor.ValidationError:
        return None
    if obj.get("type") != "invoice" or str(obj.get("foreign_id")) != foreign_id:
        return None
    sent, received = _part(obj, "currency_sent"), _part(obj, "currency_received")
    address = _part(obj, "crypto_address")
    try:
        return processor.Invoice(
            id=int(obj["id"]), url="", foreign_id=foreign_id, title=None,
            status=str(obj.get("status")), currency=str(received.get("currency")),
            amount=money.from_processor(received.get("amount")),
            sender_currency=sent.get("currency"),
            sender_amount=money.from_processor(sent.get("amount")),
            # "" is the empty crypto_address of an invoice no address was given for.
            address=address.get("address") or None, fixed_at=obj.get("fixed_at"),
            release_at=obj.get("expires_at"), seconds_left=None,
            tag=processor.parse_tag(address.get("tag")))
    except (KeyError, TypeError, ValueError, processor.ProcessorError):
        raise processor.BadResponse("transactions/info: unreadable invoice") from None


def _part(obj: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = obj.get(name)
    return value if isinstance(value, dict) else {}


def refuse_quote(session: Session, quote_id: int, exc: processor.ValidationError) -> None:
    quote = session.get(InvoiceQuote, quote_id, populate_existing=True)
    assert quote is not None
    quote.status = REFUSED
    quote.error = _bounded(json.dumps(exc.errors or {"error": exc.message}), 2000)
    quote.updated_at = clock.now()
    session.commit()


def store_answer(session: Session, invoice_id: int, quote_id: int,
                 answer: processor.Invoice, *, commit: bool = True) -> list[InvoiceQuote]:
    """The processor made the quote: it becomes current; the quotes it replaces are returned,
    to be cancelled at the processor once this is committed (by the caller when `commit`
    is False)."""
    invoice = _lock_invoice(session, invoice_id)
    quotes = quotes_of(session, invoice.id)
    quote = next(q for q in quotes if q.id == quote_id)
    others = [q for q in quotes if q.id != quote_id]
    quote.processor_id = answer.id
    quote.sender_amount = None if answer.sender_amount is None else money.text(
        answer.sender_amount)
    quote.remaining_amount = quote.sender_amount
    quote.address = _bounded(answer.address, processor.ADDRESS_MAX)
    quote.tag = answer.tag
    quote.fixed_at = _from_unix(answer.fixed_at)
    quote.release_at = _from_unix(answer.release_at)
    quote.status = answer.status if answer.status in RANK else PENDING
    quote.updated_at = clock.now()
    replaced: list[InvoiceQuote] = []
    if invoice.status in (CREATED, PENDING) and not paid_anything(others):
        for other in others:
            if other.current:
                other.current = False
                other.updated_at = clock.now()
                replaced.append(other)
        quote.current = True
        if invoice.status == CREATED:
            invoice.status = PENDING  # as at the processor: a currency was chosen
        invoice.updated_at = clock.now()
    else:
        # The invoice moved on (paid or cancelled) while we asked: this quote stays aside.
        replaced.append(quote)
    session.flush()
    current = quote if quote.current else next((q for q in others if q.current), None)
    sync_page(session, invoice, current)
    if commit:
        session.commit()
    return [q for q in replaced if q.processor_id is not None and q.status in OPEN]


def cancel_at_processor(merchant: Merchant, quote: InvoiceQuote) -> None:
    """Best effort, never in a transaction: a superseded quote left open simply expires."""
    try:
        processor.client_for(merchant, retry_delays=()).invoices_cancel(quote.foreign_id)
    except processor.ProcessorError as exc:
        log.info("quote %s: processor cancel failed (%s); it will expire", quote.id,
                 type(exc).__name__)


# ---------------------------------------------------------------------------------------------
# The customer's email, cancel, expiry


class EmailFixed(WrongState):
    """A payment was seen: the email its refund instructions go to stays as it is."""


def set_email(page_id: str, email: str) -> None:
    """The page asked for the payer's email (the processor's refund instructions go there).
    ValueError when it is no email address; WrongState once the invoice is final;
    EmailFixed when an email is set and a payment was seen: whoever holds the page's address
    must not be able to redirect the refund of someone else's money."""
    value = email.strip()
    if not valid_email(value) or len(value) > 255:
        raise ValueError("not an email address")
    with db.transaction() as session:
        found = session.scalar(select(Invoice.id).where(Invoice.page_id == page_id))
        if found is None:
            raise LookupError(page_id)
        invoice = _lock_invoice(session, found)
        if invoice.status in FINAL:
            raise WrongState(invoice.status)
        if invoice.email_user and payment_seen(quotes_of(session, invoice.id)):
            raise EmailFixed("paid")
        invoice.email_user = value
        invoice.updated_at = clock.now()


def by_foreign_id(session: Session, merchant_id: int, foreign_id: str) -> Invoice | None:
    return session.scalar(select(Invoice).where(
        Invoice.merchant_id == merchant_id, Invoice.foreign_id == foreign_id))


def cancel(merchant: Merchant, foreign_id: str) -> None:
    """invoices/<foreign_id>/cancel/: an open invoice ends failed/cancelled; the shop hears it.

    UnknownInvoice for a foreign_id we do not know; WrongState once final.
    """
    session = db.session()
    found = by_foreign_id(session, merchant.client_id, foreign_id)
    if found is None:
        session.rollback()
        raise UnknownInvoice(foreign_id)
    invoice = _lock_invoice(session, found.id)
    if invoice.status not in OPEN:
        session.rollback()
        raise WrongState(invoice.status)
    quote = current_quote(session, invoice.id)
    finish(session, invoice, FAILED, "cancelled")
    forward(session, merchant, invoice, quote, status=FAILED, error=CANCELLED_TEXT)
    session.commit()
    if quote is not None and quote.processor_id is not None:
        cancel_at_processor(merchant, quote)


def finish(session: Session, invoice: Invoice, status: str, reason: str | None) -> None:
    invoice.status, invoice.reason = status, reason
    invoice.updated_at = clock.now()
    session.flush()
    sync_page(session, invoice, current_quote(session, invoice.id))


def expire_due() -> int:
    """Worker task: a type 2 invoice whose shop-facing timer ran out before any quote was made
    fails `expired` (a quote's own timer is the processor's, which tells us itself)."""
    session = db.session()
    now = clock.now()
    due = session.scalars(select(Invoice.id).where(
        Invoice.status.in_(UNPAID_INVOICE), Invoice.release_at.is_not(None),
        Invoice.release_at <= now).order_by(Invoice.id)).all()
    session.commit()
    done = 0
    for invoice_id in due:
        invoice = _lock_invoice(session, invoice_id)
        quotes = quotes_of(session, invoice_id)
        if invoice.status not in UNPAID_INVOICE or any(q.current for q in quotes) or \
                any(q.status == NEW for q in quotes):
            session.rollback()
            continue
        finish(session, invoice, FAILED, "expired")
        merchant = session.get(Merchant, invoice.merchant_id)
        assert merchant is not None
        forward(session, merchant, invoice, None, status=FAILED, error=NOT_PAID)
        session.commit()
        done += 1
    return done


# ---------------------------------------------------------------------------------------------
# The page row, the API answer, the shop's callbacks, the return


def sync_page(session: Session, invoice: Invoice, quote: InvoiceQuote | None) -> None:
    """Keep the invoice's Page in step: the page model reads Page, Invoice and InvoiceQuote.

    Page.status/reason are the invoice's; currency/amount/address/tag/expiry the current
    quote's (before a pick: the invoice currency, no amount, the shop-facing timer);
    processor_invoice_id the current quote's processor id (never shown to the shop).
    """
    page = session.get(Page, invoice.page_id)
    assert page is not None
    for name, value in page_fields(invoice, quote).items():
        setattr(page, name, value)
    page.updated_at = clock.now()
    session.flush()


def page_fields(invoice: Invoice, quote: InvoiceQuote | None) -> dict[str, Any]:
    """The Page columns that follow the invoice and its current quote (sync_page)."""
    fields: dict[str, Any] = {"status": invoice.status, "reason": invoice.reason,
                              "foreign_id": invoice.foreign_id,
                              "url_failed": invoice.url_failed}
    if quote is not None:
        fields.update(
            currency=quote.sender_currency, amount=quote.sender_amount,
            amount_paid=quote.amount_paid or "0", address=quote.address, tag=quote.tag,
            expires_at=quote.release_at, processor_invoice_id=quote.processor_id,
            fiat_currency=invoice.currency if invoice.currency != quote.sender_currency
            else None)
    else:
        fields.update(
            currency=invoice.currency, amount=None, amount_paid="0", address=None, tag=None,
            expires_at=invoice.release_at, processor_invoice_id=None, fiat_currency=None)
    return fields


def page_url(invoice: Invoice) -> str:
    """`<public url>/p/<page id>`: the customer page the shop sends its customer to."""
    from ..urls import public_base

    return f"{public_base()}/p/{invoice.page_id}"


def _amount(value: str | Decimal | None) -> str | None:
    return None if value is None else money.text(Decimal(value), PLACES)


def answer(invoice: Invoice, quote: InvoiceQuote | None) -> dict[str, Any]:
    """`data` of the invoices/create answer, in the current shape of §2.11, with the
    invoice's current quote (None: none yet) as the request that made it left it."""
    if quote is not None:
        fixed_at, release_at = quote.fixed_at, quote.release_at
    else:
        fixed_at, release_at = invoice.fixed_at, invoice.release_at
    now = clock.now()
    seconds_left = None if release_at is None else max(int((release_at - now)
                                                           .total_seconds()), 0)
    data: dict[str, Any] = {"id": invoice.id, "url": page_url(invoice),
                            "foreign_id": invoice.foreign_id}
    data["end_user_reference"] = invoice.end_user_reference
    data.update({
        "address": quote.address if quote else None,
        "title": invoice.title, "status": invoice.status, "currency": invoice.currency,
        "amount": _amount(invoice.amount),
        "sender_currency": quote.sender_currency if quote else invoice.sender_currency,
        "sender_amount": _amount(quote.sender_amount) if quote else None,
        "fixed_at": _unix(fixed_at), "release_at": _unix(release_at),
        "seconds_left": seconds_left,
    })
    return data


def shop_event(invoice: Invoice, quote: InvoiceQuote | None, *, status: str,
               error: str | None, fees: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An invoice callback as CoinsPaid sends it (coinspaid-api.md §3), about the shop's
    invoice: our id, the shop's foreign_id, the processor's amounts, no processor ids.

    Every field has the JSON type of the processor's documented example, because shops parse
    these with typed clients: Go's declares `confirmations` `int ,string` and answers 400 to
    an integer; Rust's requires `crypto_address` with an integer id and string address.
    """
    event: dict[str, Any] = {"id": invoice.id, "foreign_id": invoice.foreign_id}
    if invoice.end_user_reference:
        event["end_user_reference"] = invoice.end_user_reference
    event["type"] = "invoice"
    event["crypto_address"] = _crypto_address(invoice, quote)
    if quote is not None and quote.sender_amount is not None:
        event["currency_sent"] = {
            "currency": quote.sender_currency, "amount": _amount(quote.sender_amount),
            "remaining_amount": _amount(quote.remaining_amount or quote.sender_amount)}
    # UNCONFIRMED what the processor sends before a currency is chosen (type 1 or 2 cancelled
    # or expired): no `currency_sent` then, as nobody knows what the payer was to send; typed
    # clients declare it optional (Go `*CurrencyAmount`, Rust `Option<CurrencySentData>`).
    event["currency_received"] = {"currency": invoice.currency,
                                  "amount": _amount(invoice.amount)}
    event["transactions"] = [_leg(leg) for leg in quote.transactions] if quote is not None \
        else []
    event["fees"] = [{"type": _text(fee.get("type")), "currency": _text(fee.get("currency")),
                      "amount": fee.get("amount")} for fee in fees or []]
    event["error"] = error or ""
    event["status"] = status
    fixed_at = quote.fixed_at if quote is not None else invoice.fixed_at
    expires_at = quote.release_at if quote is not None else invoice.release_at
    event["fixed_at"] = _unix(fixed_at)
    event["expires_at"] = _unix(expires_at)
    return event


# An address nobody was given, in the types typed clients require: Rust's `DepositAddress`
# needs an integer `id` and string `currency` and `address` (null fails), Go's decodes
# absent and null alike as 0 and "". UNCONFIRMED what the processor itself sends there; every
# invoice callback it documents carries a `crypto_address`.
NO_ADDRESS: dict[str, Any] = {"id": 0, "currency": "", "address": "", "tag": None}


def _crypto_address(invoice: Invoice, quote: InvoiceQuote | None) -> dict[str, Any]:
    if quote is None or quote.address is None:
        return {**NO_ADDRESS, "currency": quote.sender_currency if quote is not None else ""}
    crypto: dict[str, Any] = {"id": invoice.id, "currency": quote.sender_currency}
    if quote.sender_currency != invoice.currency:
        crypto["convert_to"] = invoice.currency
    crypto.update({"address": quote.address, "tag": quote.tag})
    return crypto


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _leg(leg: Mapping[str, Any]) -> dict[str, Any]:
    """One stored transaction leg in the documented order and types: ids numbers, amounts
    8-place strings, `confirmations` a string ("0", "3") as the processor sends it."""
    tag, txid = leg.get("tag"), leg.get("txid")
    return {"id": leg.get("id") or 0, "currency": _text(leg.get("currency")),
            "transaction_type": _text(leg.get("transaction_type")),
            "type": _text(leg.get("type")), "address": _text(leg.get("address")),
            "tag": tag if isinstance(tag, str) else None, "amount": leg.get("amount"),
            "txid": txid if isinstance(txid, str) else None,
            "confirmations": str(leg.get("confirmations") or 0)}


def forward(session: Session, merchant: Merchant, invoice: Invoice, quote: InvoiceQuote | None,
            *, status: str, error: str | None, fees: list[dict[str, Any]] | None = None,
            callback_id: int | None = None) -> None:
    """Queue one event of the shop's invoice for its webhook, in the caller's transaction."""
    body = deliveries.encode(shop_event(invoice, quote, status=status, error=error, fees=fees))
    deliveries.enqueue_body(session, merchant, body, callback_id=callback_id,
                            page_id=invoice.page_id)


def _bounded(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    return value[:limit]


def make_current(session: Session, invoice_id: int, quote_id: int) -> None:
    session.execute(update(InvoiceQuote).where(InvoiceQuote.invoice_id == invoice_id)
                    .values(current=InvoiceQuote.id == quote_id, updated_at=clock.now()))
    session.flush()


