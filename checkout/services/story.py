"""A payment's story for the back office: its facts, then everything that happened to it in
time order (opened, quotes, processor callbacks and reconciliation answers, deliveries to the
shop and each of their attempts, notes, what people did in the back office), and the acts
on it: resend the latest event to the shop, ask the processor now, add a note.

Every query is bounded by the merchants the person may see (`merchants`, None for an
operator): a page of another merchant is found exactly as one that does not exist. The story
costs a fixed number of statements however many callbacks and attempts a page has.

How callbacks map to a page: a deposit page's are those about its transactions (the
`Deposit` rows `deposit.page_deposits` gives it, by the processor's id); an invoice page's
are those about its quotes (the processor's invoice ids) and about money that reached a
quote's address late (the `Deposit` rows at the address kept under the quote's foreign_id).
A delivery belongs to the page through its callback, or through `Delivery.page_id` for an
event we composed ourselves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from .. import audit, clock, processor
from ..models import (
    AuditEntry,
    Callback,
    Delivery,
    DeliveryAttempt,
    Deposit,
    DepositAddress,
    Invoice,
    InvoiceQuote,
    Merchant,
    Page,
    PaymentNote,
    is_page_token,
)
from ..pagekinds import deposit
from . import deliveries, reconcile, refund_queue

NOTE_MAX = 2000
# Bytes of a body shown on the page: a callback is a few KB at most; a hostile one is cut.
BODY_SHOWN = 16_000

# Audit actions of this part.
RESENT = "payment.resend"
ASKED = "payment.ask"
NOTED = "payment.note"
ACTIONS = (RESENT, ASKED, NOTED)
# The merchant's decisions on the page's refunds (services.refunds writes them).
REFUND_DECISIONS = ("refund.approve", "refund.reject")


class NotFound(LookupError):
    """No such page among the merchants the person may see."""


class Refused(ValueError):
    """The act cannot be done; `reason` is a word the view translates."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Actor:
    """Who acts, for the audit log and the note's author."""

    user_id: int
    email: str
    address: str


# ---------------------------------------------------------------------------------------------
# Entries


@dataclass(frozen=True)
class Opened:
    at: datetime
    via: str  # "link" (a Payment Terminal link) | "api" (invoices/create)
    said: tuple[tuple[str, str], ...]  # the request's parameters, as stored (never a secret)


@dataclass(frozen=True)
class Quoted:
    at: datetime
    quote_id: int
    sender_currency: str
    sender_amount: str | None
    address: str | None
    tag: str | None
    status: str
    current: bool
    error: str | None
    flag: str | None
    requote: bool  # not the invoice's first quote


@dataclass(frozen=True)
class Heard:
    """A processor callback as received, or a reconciliation answer (`source` "reconcile")."""

    at: datetime
    callback_id: int
    source: str
    type: str | None
    status: str | None
    outcome: str
    flag: str | None
    body: str  # the bytes as text (undecodable bytes replaced), cut at BODY_SHOWN


@dataclass(frozen=True)
class Queued:
    """An event put in the outbox for the shop's webhook."""

    at: datetime
    delivery_id: int
    state: str
    attempts: int
    next_attempt_at: datetime | None
    callback_id: int | None
    body: str


@dataclass(frozen=True)
class Tried:
    """One attempt of a delivery."""

    at: datetime
    delivery_id: int
    status: int | None
    excerpt: str | None
    duration_ms: int
    error: str | None
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class Noted:
    at: datetime
    author: str
    text: str


@dataclass(frozen=True)
class Acted:
    """Something done in the back office (resend, ask), from the audit log."""

    at: datetime
    action: str
    actor: str
    detail: dict[str, Any]


Entry = Opened | Quoted | Heard | Queued | Tried | Noted | Acted


@dataclass(frozen=True)
class Facts:
    page: Page
    merchant_name: str
    invoice: Invoice | None
    convert_to: str | None
    phase: str | None
    return_urls: tuple[str, ...]  # where the customer's way back leads (a plain link)


@dataclass(frozen=True)
class Story:
    facts: Facts
    entries: list[Entry]
    resendable: int | None  # the delivery "resend" would send again, if any
    refunds: list[refund_queue.Row] = field(default_factory=list)  # oldest first


# ---------------------------------------------------------------------------------------------
# Reading


def _visible(merchants: list[int] | None) -> ColumnElement[bool]:
    return Page.merchant_id.in_(merchants) if merchants is not None else Page.id.is_not(None)


def find(session: Session, page_id: str, merchants: list[int] | None) -> Page:
    """The page, if it exists among `merchants`; else NotFound (the same either way)."""
    if not is_page_token(page_id):
        raise NotFound(page_id)
    page = session.scalar(select(Page).where(Page.id == page_id, _visible(merchants)))
    if page is None:
        raise NotFound(page_id)
    return page


def load(session: Session, page_id: str, merchants: list[int] | None, *,
         testnet: bool = False) -> Story:
    page = find(session, page_id, merchants)
    name = session.scalar(select(Merchant.name).where(Merchant.client_id == page.merchant_id))
    invoice = session.scalar(select(Invoice).where(Invoice.page_id == page.id))
    quotes = _quotes(session, invoice)
    processor_ids = _processor_ids(session, page, quotes)
    callbacks = _callbacks(session, page, processor_ids)
    queued = _deliveries(session, page, [c.id for c in callbacks])
    attempts = _attempts(session, [d.id for d in queued])
    notes = session.scalars(select(PaymentNote).where(PaymentNote.page_id == page.id)
                            .order_by(PaymentNote.at, PaymentNote.id)).all()
    acts = session.scalars(select(AuditEntry).where(
        AuditEntry.merchant_id == page.merchant_id, AuditEntry.target == page.id,
        AuditEntry.action.in_((RESENT, ASKED, *REFUND_DECISIONS))).order_by(AuditEntry.id)).all()
    convert_to = None
    if page.kind == deposit.KIND.name and page.address_id is not None:
        convert_to = session.scalar(select(DepositAddress.convert_to).where(
            DepositAddress.id == page.address_id)) or None
    facts = Facts(page, name or "", invoice, convert_to, _phase(page), _return_urls(page, invoice))
    entries: list[Entry] = [_opened(page, invoice, convert_to)]
    entries += [_quoted(quote, index) for index, quote in enumerate(quotes)]
    entries += [_heard(callback) for callback in callbacks]
    entries += [_queued(delivery) for delivery in queued]
    entries += [_tried(attempt) for attempt in attempts]
    entries += [Noted(note.at, note.author, note.text) for note in notes]
    entries += [Acted(entry.at, entry.action, entry.actor, audit.detail(entry)) for entry in acts]
    return Story(facts, in_time_order(entries), _resendable(queued),
                 refund_queue.of_page(session, page.id, merchants, testnet=testnet))


def in_time_order(entries: list[Entry]) -> list[Entry]:
    """Oldest first; at the same moment, in the order things follow from each other."""
    rank = {Opened: 0, Quoted: 1, Heard: 2, Acted: 3, Queued: 4, Tried: 5, Noted: 6}
    return sorted(entries, key=lambda entry: (entry.at, rank[type(entry)]))


def _quotes(session: Session, invoice: Invoice | None) -> Sequence[InvoiceQuote]:
    if invoice is None:
        return []
    return session.scalars(select(InvoiceQuote).where(InvoiceQuote.invoice_id == invoice.id)
                           .order_by(InvoiceQuote.created_at, InvoiceQuote.id)).all()


def _processor_ids(session: Session, page: Page, quotes: Sequence[InvoiceQuote]) -> list[int]:
    """The processor's ids of everything the page is about."""
    if page.kind == deposit.KIND.name:
        return [row.processor_id for row in deposit.page_deposits(session, page)]
    ids = [quote.processor_id for quote in quotes if quote.processor_id is not None]
    if quotes:
        ids += session.scalars(
            select(Deposit.processor_id)
            .join(DepositAddress, DepositAddress.id == Deposit.address_id)
            .where(DepositAddress.merchant_id == page.merchant_id,
                   DepositAddress.foreign_id.in_([quote.foreign_id for quote in quotes]))).all()
    return ids


def _callbacks(session: Session, page: Page, processor_ids: list[int]) -> Sequence[Callback]:
    if not processor_ids:
        return []
    return session.scalars(select(Callback).where(
        Callback.merchant_id == page.merchant_id,
        Callback.processor_id.in_(sorted(set(processor_ids))))
        .order_by(Callback.received_at, Callback.id)).all()


def _deliveries(session: Session, page: Page, callback_ids: list[int]) -> Sequence[Delivery]:
    mine = Delivery.page_id == page.id
    if callback_ids:
        mine = or_(mine, Delivery.callback_id.in_(callback_ids))
    return session.scalars(select(Delivery).where(Delivery.merchant_id == page.merchant_id, mine)
                           .order_by(Delivery.created_at, Delivery.id)).all()


def _attempts(session: Session, delivery_ids: list[int]) -> Sequence[DeliveryAttempt]:
    if not delivery_ids:
        return []
    return session.scalars(select(DeliveryAttempt)
                           .where(DeliveryAttempt.delivery_id.in_(delivery_ids))
                           .order_by(DeliveryAttempt.at, DeliveryAttempt.id)).all()


def _phase(page: Page) -> str | None:
    try:
        model = json.loads(page.model_json or "{}")
    except ValueError:
        return None
    phase = model.get("phase") if isinstance(model, dict) else None
    return phase if isinstance(phase, str) else None


def _return_urls(page: Page, invoice: Invoice | None) -> tuple[str, ...]:
    if invoice is not None:
        return (invoice.url_success, invoice.url_failed)
    return tuple(url for url in (page.url_back,) if url)


def _opened(page: Page, invoice: Invoice | None, convert_to: str | None) -> Opened:
    said: tuple[tuple[str, str | None], ...]
    if invoice is not None:
        said = (("foreign_id", invoice.foreign_id), ("title", invoice.title),
                ("description", invoice.description), ("currency", invoice.currency),
                ("amount", invoice.amount), ("timer", "true" if invoice.timer else "false"),
                ("type", invoice.type), ("sender_currency", invoice.sender_currency),
                ("email_user", invoice.email_user),
                ("end_user_reference", invoice.end_user_reference),
                ("url_success", invoice.url_success), ("url_failed", invoice.url_failed))
        return Opened(invoice.created_at, "api", _present(said))
    said = (("foreign_id", page.foreign_id), ("currency", page.currency),
            ("amount", page.amount), ("convert_to", convert_to),
            ("url_back", page.url_back), ("is_iframe", "true" if page.is_iframe else None))
    return Opened(page.created_at, "link", _present(said))


def _present(pairs: tuple[tuple[str, str | None], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, value in pairs if value)


def _quoted(quote: InvoiceQuote, index: int) -> Quoted:
    return Quoted(quote.created_at, quote.id, quote.sender_currency, quote.sender_amount,
                  quote.address, quote.tag, quote.status, quote.current, quote.error,
                  quote.flag, index > 0)


def _text(raw: bytes | None) -> str:
    return (raw or b"")[:BODY_SHOWN].decode("utf-8", "replace")


def _heard(callback: Callback) -> Heard:
    return Heard(callback.received_at, callback.id, callback.source, callback.type,
                 callback.status, callback.outcome, callback.flag, _text(callback.body))


def _queued(delivery: Delivery) -> Queued:
    waiting = delivery.next_attempt_at if delivery.state == deliveries.PENDING else None
    return Queued(delivery.created_at, delivery.id, delivery.state, delivery.attempts, waiting,
                  delivery.callback_id, _text(delivery.body))


def _tried(attempt: DeliveryAttempt) -> Tried:
    excerpt = None if attempt.excerpt is None else _text(attempt.excerpt)
    return Tried(attempt.at, attempt.delivery_id, attempt.status, excerpt, attempt.duration_ms,
                 attempt.error, attempt.next_attempt_at)


def _resendable(queued: Sequence[Delivery]) -> int | None:
    """The newest event the shop was sent or given up on: what "resend" sends again."""
    done = [d for d in queued if d.state in (deliveries.DELIVERED, deliveries.FAILED)]
    return done[-1].id if done else None


# ---------------------------------------------------------------------------------------------
# Acting


def resend(session: Session, page_id: str, merchants: list[int] | None, actor: Actor) -> int:
    """Queue the page's latest delivered or given-up event for the shop again (the outbox
    signs and sends it, as any other); the new delivery's id. Refused when there is none,
    the merchant has no webhook, or a resend of it is still waiting to be sent (a double
    click queues it once)."""
    story = load(session, page_id, merchants)
    page = story.facts.page
    if story.resendable is None:
        raise Refused("nothing")
    latest = session.get(Delivery, story.resendable)
    merchant = session.get(Merchant, page.merchant_id)
    assert latest is not None and merchant is not None
    waiting = session.scalar(select(Delivery.id).where(
        Delivery.merchant_id == page.merchant_id, Delivery.page_id == page.id,
        Delivery.state == deliveries.PENDING, Delivery.body == latest.body,
        Delivery.id > latest.id).limit(1))
    if waiting is not None:
        raise Refused("waiting")
    fresh = deliveries.enqueue_body(session, merchant, latest.body,
                                    callback_id=latest.callback_id, page_id=page.id)
    if fresh is None:
        raise Refused("no_webhook")
    audit.record(session, RESENT, actor=actor.email, user_id=actor.user_id,
                 merchant_id=page.merchant_id, target=page.id, address=actor.address,
                 detail={"delivery": fresh.id, "of": latest.id})
    session.commit()
    return fresh.id


def ask(session: Session, page_id: str, merchants: list[int] | None,
        actor: Actor) -> list[reconcile.Answer]:
    """Ask the processor about the page now (reconciliation's own path: what it answers is
    applied as a callback), and log what it said. Refused("unknown") when it knows nothing
    yet, Refused("unavailable") when it cannot be asked."""
    page = find(session, page_id, merchants)
    merchant_id = page.merchant_id
    session.commit()  # no transaction stays open while the processor is asked
    try:
        answers = reconcile.ask_page(session, page_id)
    except processor.ValidationError:
        session.rollback()
        answers = []
    except processor.ProcessorError as exc:
        session.rollback()
        _log_ask(session, merchant_id, page_id, actor, {"error": type(exc).__name__})
        raise Refused("unavailable") from exc
    said = [{"id": a.processor_id, "status": a.status, "outcome": a.outcome} for a in answers]
    _log_ask(session, merchant_id, page_id, actor, {"answers": said})
    return answers


def _log_ask(session: Session, merchant_id: int, page_id: str, actor: Actor,
             detail: dict[str, Any]) -> None:
    audit.record(session, ASKED, actor=actor.email, user_id=actor.user_id,
                 merchant_id=merchant_id, target=page_id, address=actor.address, detail=detail)
    session.commit()


def clean_note(text: object) -> str:
    """The note as kept: trimmed, 1 to NOTE_MAX characters, no NUL; else Refused."""
    if not isinstance(text, str):
        raise Refused("empty")
    value = text.replace("\r\n", "\n").strip()
    if not value:
        raise Refused("empty")
    if len(value) > NOTE_MAX:
        raise Refused("too_long")
    if "\x00" in value:
        raise Refused("unreadable")
    return value


def add_note(session: Session, page_id: str, merchants: list[int] | None, actor: Actor,
             text: object) -> bool:
    """Keep a note on the page; False when it repeats the author's last note there (the same
    form sent twice)."""
    page = find(session, page_id, merchants)
    value = clean_note(text)
    last = session.scalar(select(PaymentNote).where(
        PaymentNote.page_id == page.id, PaymentNote.user_id == actor.user_id)
        .order_by(PaymentNote.id.desc()).limit(1))
    if last is not None and last.text == value:
        return False
    note = PaymentNote(page_id=page.id, user_id=actor.user_id, author=actor.email,
                       at=clock.now(), text=value)
    session.add(note)
    session.flush()
    audit.record(session, NOTED, actor=actor.email, user_id=actor.user_id,
                 merchant_id=page.merchant_id, target=page.id, address=actor.address,
                 detail={"note": note.id, "length": len(value)})
    session.commit()
    return True
