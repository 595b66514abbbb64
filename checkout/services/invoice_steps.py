"""The customer's steps on an invoice page: give an email, pick (or re-quote) a currency.

Each step returns what the customer is to see next, as a value; the customer route renders
it (the page again, or the page with the step's error).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .. import processor
from ..models import Invoice, Page
from . import invoices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shown:
    """Done, or overtaken (the invoice paid or final meanwhile): the page says which."""


@dataclass(frozen=True)
class EmailNeeded:
    """The shop gave no email, and the customer none: a refund would have nowhere to go."""


@dataclass(frozen=True)
class EmailFixed:
    """A payment was seen: the email for refund instructions stays as it is."""


@dataclass(frozen=True)
class QuoteRefused:
    """The processor refused a quote in this currency (the amount may be below its minimum)."""


@dataclass(frozen=True)
class Busy:
    """The processor failed: nothing was charged, the customer may try again."""


Step = Shown | EmailNeeded | EmailFixed | QuoteRefused | Busy


def give_email(page_id: str, email: str) -> Step:
    try:
        invoices.set_email(page_id, email)
    except invoices.EmailFixed:
        return EmailFixed()
    except invoices.WrongState:
        pass  # final meanwhile: the page says so
    return Shown()


def pick(page: Page, invoice: Invoice, code: str, email: str | None) -> Step:
    """The currency `code` for this invoice, with the customer's email where the shop gave
    none: then the processor invoice for it is made."""
    if invoice.email_user is None:
        if not email:
            return EmailNeeded()
        try:
            invoices.set_email(page.id, email)
        except invoices.EmailFixed:
            return EmailFixed()
        except invoices.WrongState:
            return Shown()  # final meanwhile
    return choose(page, code)


def choose(page: Page, code: str) -> Step:
    try:
        invoices.choose_currency(page.id, code)
    except invoices.WrongState:
        pass  # paid or final meanwhile: the page says what happened
    except invoices.QuoteRefused as exc:
        log.info("quote refused for page of merchant %s: %s", page.merchant_id, exc)
        return QuoteRefused()
    except processor.ProcessorError as exc:
        log.warning("quote failed for page of merchant %s: %s", page.merchant_id,
                    type(exc).__name__)
        return Busy()
    return Shown()
