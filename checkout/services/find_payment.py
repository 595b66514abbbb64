"""Find my payment: a customer's txid or address, matched EXACTLY against our payments, gives
the links of the pages they belong to; anything else gives nothing.

What is looked up (each an indexed equality, never a prefix, a pattern or a guess):
- a transaction id: `Deposit.txid` (the deposit page the payment counts on, or the invoice
  whose late money it is) and `QuoteTxid.txid` (an invoice quote's payment);
- an address (with its tag, for a coin whose address is shared): `Page.address` and
  `InvoiceQuote.address` (an invoice's earlier quote).

Case: transaction ids are hexadecimal, whose case means nothing, so a hex text is matched in
lower and upper case as well as typed (chains differ in how they print it). An address is
matched as typed, and also in lower case where lower case is its canonical form: bech32
(`Currency.bech32_prefixes`, case-insensitive by definition, all one case) and Ethereum-style
`0x` hex. Nothing else is folded.

A tag is part of an address: on a coin with a shared address (XRP, BNB memos) the address
alone names every customer of every shop paying there, so an address matches a page only
with the page's own tag, and without a tag only a page that has none.

No flask here: the web layer (web/find.py) reads the form and says the answer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, select, union
from sqlalchemy.orm import Session, aliased

from .. import currencies
from ..models import (
    Deposit,
    DepositAddress,
    Invoice,
    InvoiceQuote,
    Merchant,
    Page,
    QuoteTxid,
)
from ..pagekinds import deposit

# Longer than any txid or address we serve (a 0x-prefixed 64-hex txid is 66; a cash address
# with its prefix under 60), short enough that a paste of a whole email is refused.
MAX_TEXT = 128
MAX_TAG = 64  # the tag columns' length
# The pages one answer lists at most, newest first. An address is one customer's (a shop
# reuses it for that customer's orders: DepositAddress is per shop order reference), so
# every page at it is theirs to see; a long history still gets only its newest few: a lost
# page is a recent one, and an answer's size must not grow with a customer's history.
MAX_LINKS = 5

_HEX = re.compile(r"(0[xX])?[0-9A-Fa-f]+")
_EVM_ADDRESS = re.compile(r"0[xX][0-9A-Fa-f]{40}")
# What a txid, an address or a tag can be made of on every chain we serve. Anything else
# (a space inside, a letter from another script that merely looks Latin) matches nothing,
# so it is not even asked about.
_PLAIN = re.compile(r"[A-Za-z0-9:._-]+")
_BECH32_PREFIXES = tuple(sorted({p.lower() for c in currencies.CURRENCIES.values()
                                 for p in c.bech32_prefixes}))


class BadQuery(ValueError):
    """A query refused before any lookup; `problem` names why (the view words it)."""

    EMPTY = "empty"
    TOO_LONG = "too_long"
    CONTROL = "control"

    def __init__(self, problem: str, field: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.problem = problem
        self.field = field


@dataclass(frozen=True)
class Query:
    text: str  # stripped
    tag: str | None  # stripped; None when not given


def parse(text: object, tag: object = None) -> Query:
    """The customer's text and tag, stripped, bounded, free of control characters."""
    value = _clean(text, "text", MAX_TEXT)
    if not value:
        raise BadQuery(BadQuery.EMPTY, "text")
    return Query(value, _clean(tag, "tag", MAX_TAG) or None)


def _clean(value: object, field: str, limit: int) -> str:
    raw = value if isinstance(value, str) else ""
    # Control and format characters (NUL, bidi overrides, zero-width joiners) are refused
    # with a clear error rather than matched: PostgreSQL refuses a NUL in a string outright,
    # and an invisible character makes a pasted text look right while it is not.
    if any(unicodedata.category(c) in ("Cc", "Cf") and c not in "\t\r\n" for c in raw):
        raise BadQuery(BadQuery.CONTROL, field)
    stripped = raw.strip()
    if any(unicodedata.category(c) == "Cc" for c in stripped):  # a line break inside
        raise BadQuery(BadQuery.CONTROL, field)
    if len(stripped) > limit:
        raise BadQuery(BadQuery.TOO_LONG, field)
    return stripped


def txid_forms(text: str) -> list[str]:
    """The text as typed and, when it is hex, in both cases (a 0x prefix in lower case)."""
    forms = {text}
    if _HEX.fullmatch(text):
        body = text[2:] if text[:2] in ("0x", "0X") else text
        prefix = "0x" if len(body) != len(text) else ""
        forms |= {prefix + body.lower(), prefix + body.upper()}
    return sorted(forms)


def address_forms(text: str) -> list[str]:
    """The address as typed and, where lower case is canonical, in lower case."""
    forms = {text}
    lowered = text.lower()
    one_case = text in (lowered, text.upper())
    if (one_case and lowered.startswith(_BECH32_PREFIXES)) or _EVM_ADDRESS.fullmatch(text):
        forms.add(lowered)
    return sorted(forms)


def find(session: Session, query: Query) -> list[str]:
    """Ids of the pages the query matches exactly, newest first, at most MAX_LINKS: one
    statement, each branch of it an indexed lookup."""
    if not _PLAIN.fullmatch(query.text) or (query.tag and not _PLAIN.fullmatch(query.tag)):
        return []
    branches = _by_txid(txid_forms(query.text)) + _by_address(address_forms(query.text),
                                                            query.tag)
    found = union(*branches).subquery()
    return list(session.scalars(
        select(Page.id).where(Page.id.in_(select(found.c[0])))
        .order_by(Page.created_at.desc(), Page.id.desc()).limit(MAX_LINKS)))


def _by_txid(forms: list[str]) -> list[Select[Any]]:
    return [_deposit_pages(forms), _late_invoice_pages(forms),
            select(Invoice.page_id)
            .join(InvoiceQuote, InvoiceQuote.invoice_id == Invoice.id)
            .join(QuoteTxid, QuoteTxid.quote_id == InvoiceQuote.id)
            .where(QuoteTxid.txid.in_(forms))]


def _deposit_pages(forms: list[str]) -> Select[Any]:
    """The deposit page each payment counts on (deposit.page_deposits' rule): the newest
    page at its address opened at or before the payment was first seen."""
    later = aliased(Page)
    newer_page_then = exists().where(
        later.address_id == Page.address_id, later.kind == Page.kind,
        later.created_at <= Deposit.created_at,
        (later.created_at > Page.created_at)
        | ((later.created_at == Page.created_at) & (later.id > Page.id)))
    return (select(Page.id).join(Deposit, Deposit.address_id == Page.address_id)
            .where(Deposit.txid.in_(forms), Page.kind == deposit.KIND.name,
                   Page.created_at <= Deposit.created_at, ~newer_page_then))


def _late_invoice_pages(forms: list[str]) -> Select[Any]:
    """The invoice whose quote's address took the payment after the invoice closed (late
    money is kept at an address under the quote's own reference: services/late_news.py)."""
    return (select(Invoice.page_id)
            .join(InvoiceQuote, InvoiceQuote.invoice_id == Invoice.id)
            .join(DepositAddress, and_(DepositAddress.merchant_id == InvoiceQuote.merchant_id,
                                       DepositAddress.foreign_id == InvoiceQuote.foreign_id))
            .join(Deposit, Deposit.address_id == DepositAddress.id)
            .where(Deposit.txid.in_(forms)))


def _tag_matches(column: Any, tag: str | None) -> ColumnElement[bool]:
    return column == tag if tag else column.is_(None)


def _by_address(forms: list[str], tag: str | None) -> list[Select[Any]]:
    # The quotes' address index leads with the merchant: naming every merchant (a handful
    # on a self-hosted site) lets each lookup use it rather than read every quote.
    every_merchant = select(Merchant.client_id).scalar_subquery()
    return [select(Page.id).where(Page.address.in_(forms), _tag_matches(Page.tag, tag)),
            select(Invoice.page_id)
            .join(InvoiceQuote, InvoiceQuote.invoice_id == Invoice.id)
            .where(InvoiceQuote.merchant_id.in_(every_merchant),
                   InvoiceQuote.address.in_(forms), _tag_matches(InvoiceQuote.tag, tag))]
