"""The site's tables (SQLAlchemy 2 typed models). Amounts are canonical decimal TEXT."""

from __future__ import annotations

import json
import re
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .clock import system_now
from .db import Base


class Merchant(Base):
    """A CoinsPaid merchant account this site serves."""

    __tablename__ = "merchants"

    client_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    api_key: Mapped[str] = mapped_column(String(255), unique=True)
    api_secret: Mapped[str] = mapped_column(String(255))
    # JSON lists of strings: hosts for url_back/url_success/url_failed, origins for framing.
    return_hosts_json: Mapped[str] = mapped_column(Text, default="[]")
    frame_origins_json: Mapped[str] = mapped_column(Text, default="[]")
    webhook_url: Mapped[str | None] = mapped_column(Text)
    # The customer pages' language when neither the link nor the browser asks for one we
    # speak: a locale id from i18n.NAMES ("de", "pt_BR"); None is English.
    language: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    # Branding (branding.py): what customers see instead of the account name, the accent
    # colour as "#rrggbb", and a JSON map language -> instructions ("default" for any other).
    display_name: Mapped[str | None] = mapped_column(String(100))
    accent: Mapped[str | None] = mapped_column(String(7))
    instructions_json: Mapped[str] = mapped_column(Text, default="{}")
    # Back office, deliveries: set while the merchant's callbacks are held (services/
    # deliveries.py sends none of them; they keep waiting until it is cleared).
    deliveries_paused_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Money settled on the page (policies.py reads these; canonical decimal text, each with a
    # default on the safe side): a payment short by at most `underpaid_percent` percent AND
    # at most `underpaid_fiat` (in `policy_currency`) counts as paid; late money whose value
    # at arrival covers the price is accepted when `late_accept`; a refund worth less than
    # `refund_auto_below` (policy currency) needs no person's approval ("0": every one does).
    policy_currency: Mapped[str] = mapped_column(String(16), default="EUR")
    underpaid_percent: Mapped[str] = mapped_column(Text, default="0")
    underpaid_fiat: Mapped[str] = mapped_column(Text, default="0")
    late_accept: Mapped[bool] = mapped_column(Boolean, default=True)
    refund_auto_below: Mapped[str] = mapped_column(Text, default="0")

    logo: Mapped[MerchantLogo | None] = relationship(
        back_populates="merchant", cascade="all, delete-orphan")

    @property
    def shown_name(self) -> str:
        """The name customers read: the display name when the merchant set one."""
        return self.display_name or self.name

    @property
    def instructions(self) -> dict[str, str]:
        return dict(json.loads(self.instructions_json or "{}"))

    @instructions.setter
    def instructions(self, texts: dict[str, str]) -> None:
        self.instructions_json = json.dumps(texts, sort_keys=True, ensure_ascii=False)

    @property
    def return_hosts(self) -> list[str]:
        return list(json.loads(self.return_hosts_json))

    @return_hosts.setter
    def return_hosts(self, hosts: list[str]) -> None:
        self.return_hosts_json = json.dumps(hosts)

    @property
    def frame_origins(self) -> list[str]:
        return list(json.loads(self.frame_origins_json))

    @frame_origins.setter
    def frame_origins(self, origins: list[str]) -> None:
        self.frame_origins_json = json.dumps(origins)

    def __repr__(self) -> str:  # never shows key or secret
        return f"<Merchant {self.client_id} {self.name!r}>"


class MerchantsVersion(Base):
    """One row: a number that every committed change to a merchant or its logo raises
    (merchants.py raises it in the same transaction). Each process keeps its merchants with
    the number they were read at, and reads this row instead of a merchant's: a signed
    request costs no merchant row, and an edit is seen by every process at its next request.
    No row yet reads as version 0."""

    __tablename__ = "merchants_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class MerchantLogo(Base):
    """A merchant's logo as we re-encoded it (PNG), served from our own origin at a URL
    named by its digest, so it can be cached for good and never leaks a customer to a
    third party."""

    __tablename__ = "merchant_logos"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.client_id"),
                                             primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of `png`
    # Loaded only by the route that serves it, never with every page's merchant.
    png: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)

    merchant: Mapped[Merchant] = relationship(back_populates="logo")


class DepositAddress(Base):
    """An address taken at the processor: one per (merchant, foreign_id, currency, convert_to)."""

    __tablename__ = "deposit_addresses"
    __table_args__ = (
        UniqueConstraint("merchant_id", "foreign_id", "currency", "convert_to"),
        Index("ix_deposit_addresses_lookup", "merchant_id", "address"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.client_id"))
    foreign_id: Mapped[str] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(16))
    # "" when the deposit is not converted, so that the unique key holds on every database.
    convert_to: Mapped[str] = mapped_column(String(16), default="")
    address: Mapped[str] = mapped_column(String(255))
    tag: Mapped[str | None] = mapped_column(String(64))
    processor_id: Mapped[int | None] = mapped_column(BigInteger)  # the processor's ids are 64-bit
    created_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)


class AddressClaim(Base):
    """The one request taking a DepositAddress at the processor now; others wait for it.

    Committed before the processor is asked, deleted with the address stored (or when the
    call fails). A claim whose request died is taken over once `until` has passed.
    """

    __tablename__ = "address_claims"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.client_id"), primary_key=True)
    foreign_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    currency: Mapped[str] = mapped_column(String(16), primary_key=True)
    convert_to: Mapped[str] = mapped_column(String(16), primary_key=True)  # "" as above
    token: Mapped[str] = mapped_column(String(32))  # whose claim it is
    until: Mapped[datetime] = mapped_column(DateTime)


# A page id as we make them (secrets.token_urlsafe): only such text ever reaches a query, since
# PostgreSQL refuses a NUL in a string with an error, and every unknown id must get a plain 404.
_PAGE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_page_token(value: object) -> bool:
    return isinstance(value, str) and _PAGE_TOKEN.fullmatch(value) is not None


class Page(Base):
    """A customer page: a deposit (terminal link) or an invoice. Shared page model."""

    __tablename__ = "pages"
    # The back office's payments list (services/payments_list.py) walks pages newest first by
    # (created_at, id) keyset, bounded by merchant and optionally one indexed filter: each
    # index below serves one such walk without a sort, at a million rows. Search is by exact
    # match only, so foreign_id and address have plain indexes.
    __table_args__ = (UniqueConstraint("merchant_id", "link_digest"),
                      Index("ix_pages_list", "created_at", "id"),
                      Index("ix_pages_list_merchant", "merchant_id", "created_at", "id"),
                      Index("ix_pages_list_status", "status", "created_at", "id"),
                      Index("ix_pages_list_reason", "reason", "created_at", "id"),
                      Index("ix_pages_list_currency", "currency", "created_at", "id"),
                      Index("ix_pages_list_outcome", "outcome", "created_at", "id"),
                      Index("ix_pages_foreign_id", "foreign_id"),
                      Index("ix_pages_address", "address"))

    # Unguessable token: the page is authorised by knowing it (no cookies in iframes).
    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "deposit" | "invoice"
    # Indexed by ix_pages_list_merchant (merchant_id first).
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.client_id"))
    # SHA-256 of the terminal link's JSON: the same link opens the same page.
    link_digest: Mapped[str | None] = mapped_column(String(64))
    foreign_id: Mapped[str] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(16))
    fiat_currency: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[str | None] = mapped_column(Text)
    amount_paid: Mapped[str] = mapped_column(Text, default="0")
    address_id: Mapped[int | None] = mapped_column(ForeignKey("deposit_addresses.id"), index=True)
    address: Mapped[str | None] = mapped_column(String(255))
    tag: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(16))
    is_iframe: Mapped[bool] = mapped_column(Boolean, default=False)
    url_back: Mapped[str | None] = mapped_column(Text)
    url_failed: Mapped[str | None] = mapped_column(Text)
    # Invoice pages: the current quote's processor invoice id (never shown to the shop).
    processor_invoice_id: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    # When the worker last asked the processor about this page (reconciliation).
    checked_at: Mapped[datetime | None] = mapped_column(DateTime)
    # When the page was paid in full, and the fiat rate cached then: the receipt shows what
    # the payment was worth when it was made, not at whatever moment it is reread.
    paid_at: Mapped[datetime | None] = mapped_column(DateTime)
    paid_rate: Mapped[str | None] = mapped_column(Text)
    # The page model as of the last change (pagekinds/snapshot.py), read by the status poll alone.
    model_json: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[int] = mapped_column(Integer, default=0)
    # How the page ended (pagekinds/outcomes.py: paid, expired, underpaid, overpaid; None while
    # open or ended otherwise), written with the model (snapshot.write) from this row's own
    # columns: the back office's overview counts it and its payments list filters by it, so
    # a figure and the list its link opens agree by construction. Beside the model, not in it.
    outcome: Mapped[str | None] = mapped_column(String(16))
    # A payment short of the amount asked but within the merchant's tolerance (reason
    # "short_accepted"): what was missing, in the page's coin, for the shop's events and the
    # back office. None otherwise.
    shortfall: Mapped[str | None] = mapped_column(Text)

    merchant: Mapped[Merchant] = relationship()
    deposit_address: Mapped[DepositAddress | None] = relationship()


class PageRendering(Base):
    """A page's HTML as rendered for one state of it, shared by every process
    (web/pagestore.py): the first view anywhere renders it, every other process's first view
    reads it in the SELECT that reads the page's state. One row per variant of the request
    (language, address); a new version of the page replaces its older rows."""

    __tablename__ = "page_renderings"
    # The worker prunes by age (`stored_at`).
    __table_args__ = (Index("ix_page_renderings_stored_at", "stored_at"),)

    page_id: Mapped[str] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"),
                                         primary_key=True)
    # What of the request the HTML depends on: its script root, the language it asked for
    # ("*": none, the merchant's default) and its `?lang=` (pagestore.variant).
    variant: Mapped[str] = mapped_column(String(255), primary_key=True)
    model_version: Mapped[int] = mapped_column(Integer)
    # Digest of everything else the HTML was made from: the page's state as the page path
    # reads it (its version, its merchant's look) and the site's edition (templates,
    # catalogues, assets, settings, secret key).
    state: Mapped[str] = mapped_column(String(64))
    html: Mapped[str] = mapped_column(Text)  # with neutral countdown markers
    # Its gzip parts for the countdown's length when stored (pagecache.Rendered.packed_blob), so
    # that another process's first view does not compress the page again.
    packed: Mapped[bytes | None] = mapped_column(LargeBinary)
    deadline: Mapped[int | None] = mapped_column(BigInteger)  # unix seconds
    fiat_at: Mapped[int | None] = mapped_column(BigInteger)  # unix seconds
    frame_ancestors_json: Mapped[str | None] = mapped_column(Text)
    stored_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)


class PageChange(Base):
    """On SQLite, one row per committed transaction that changed pages (or a merchant's
    look): the ids it changed, written in that transaction (page_notices.py). Processes that
    keep pages' rows read the rows after the last one they saw whenever the database has a
    new commit (web/pagelog.py): PostgreSQL's notices, on a database without a server.
    Unused on PostgreSQL."""

    __tablename__ = "page_changes"
    # AUTOINCREMENT: a number is never given twice, even once the rows before it are pruned,
    # so a reader's "after the last I saw" never skips a change.
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    pages: Mapped[str] = mapped_column(Text)  # ids joined by spaces, or "*": every page
    at: Mapped[int] = mapped_column(BigInteger)  # unix seconds, for pruning


class Invoice(Base):
    """A shop's invoice, made through our drop-in `invoices/create` (coinspaid-api.md §2.11).

    `id` is the shop-facing invoice id: `data.id` of the API answer and the `id` of every
    invoice callback we forward. The processor never sees it: each currency the customer
    picks is an `InvoiceQuote`, a processor invoice of its own. Statuses are the processor's
    (created | pending | processing | confirmed | failed) and move forward only; `reason`
    says why a failed invoice failed (expired | underpaid | timeout | cancelled | late).
    `fixed_at`/`release_at` are the shop-facing timer (types 2 and 3; None for type 1). The
    customer page is the `Page` row `page_id` (kind "invoice"), kept in step by
    `invoices.sync_page` whenever the invoice or its current quote changes.
    """

    __tablename__ = "invoices"
    # The payments list finds an invoice by the payer's email (exact match).
    __table_args__ = (UniqueConstraint("merchant_id", "foreign_id"),
                      Index("ix_invoices_email_user", "email_user"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.client_id"), index=True)
    foreign_id: Mapped[str] = mapped_column(String(255))  # the shop's, never the processor's
    page_id: Mapped[str] = mapped_column(ForeignKey("pages.id"), unique=True)
    title: Mapped[str] = mapped_column(String(50))
    description: Mapped[str | None] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(16))  # what the shop receives, e.g. EUR
    amount: Mapped[str] = mapped_column(Text)  # in `currency`, canonical decimal text
    timer: Mapped[bool] = mapped_column(Boolean, default=False)
    type: Mapped[str] = mapped_column(String(32), default="fill_or_kill")  # | good_until_expired
    email_user: Mapped[str | None] = mapped_column(String(255))
    # The payer's currency as the shop fixed it (type 3), else None: the customer picks.
    sender_currency: Mapped[str | None] = mapped_column(String(16))
    end_user_reference: Mapped[str | None] = mapped_column(String(255))
    url_success: Mapped[str] = mapped_column(Text)
    url_failed: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(16))
    fixed_at: Mapped[datetime | None] = mapped_column(DateTime)
    release_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    # Money confirmed after the invoice failed, judged by the merchant's policy
    # (pagekinds/invoice_late.py): "accepted" (its value covers the price: the order is paid)
    # or "choosing" (the customer pays the difference or asks for a refund); None while
    # none is confirmed. `late_value` is what that money was worth when each payment was
    # confirmed, in `currency` (None: no value known).
    late_state: Mapped[str | None] = mapped_column(String(16))
    late_value: Mapped[str | None] = mapped_column(Text)

    merchant: Mapped[Merchant] = relationship()
    page: Mapped[Page] = relationship()


class InvoiceQuote(Base):
    """One processor invoice (a type 3 invoice at the processor) for a currency the customer
    picked, or the shop fixed. An invoice has at most one `current` quote; changing currency
    makes a new one and the old one stops being current (and is cancelled at the processor).

    `foreign_id` is OURS, stored before the processor is asked, so that a crash between the
    call and storing its answer is recovered under the same foreign_id, never a second
    processor invoice. `processor_id` is the processor's invoice id (the `id` of its
    callbacks); neither is ever shown to the shop. `status` is "new" until the processor
    answered, "refused" when it refused the quote (`error` says why), then the processor's
    invoice status. `sender_amount` is what the payer owes in `sender_currency`;
    `remaining_amount` what is still missing by the processor's last word, `amount_paid`
    what arrived (both in `sender_currency`). `fixed_at`/`release_at` are the processor's
    timer of this quote. `transactions_json` holds the processor's legs (bounded, for
    receipts), `flag` why a callback for it was kept but not applied.
    """

    __tablename__ = "invoice_quotes"
    # The address index finds the quote of a late deposit that names no foreign_id
    # (services/late_news.py) without reading every quote of the merchant.
    __table_args__ = (UniqueConstraint("merchant_id", "processor_id"),
                      Index("ix_invoice_quotes_address", "merchant_id", "address"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.client_id"))
    processor_id: Mapped[int | None] = mapped_column(BigInteger)
    foreign_id: Mapped[str] = mapped_column(String(255), unique=True)
    sender_currency: Mapped[str] = mapped_column(String(16))
    sender_amount: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(255))
    tag: Mapped[str | None] = mapped_column(String(64))
    fixed_at: Mapped[datetime | None] = mapped_column(DateTime)
    release_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="new")
    error: Mapped[str | None] = mapped_column(Text)
    remaining_amount: Mapped[str | None] = mapped_column(Text)
    amount_paid: Mapped[str] = mapped_column(Text, default="0")
    transactions_json: Mapped[str] = mapped_column(Text, default="[]")
    flag: Mapped[str | None] = mapped_column(Text)
    current: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)

    invoice: Mapped[Invoice] = relationship()

    @property
    def transactions(self) -> list[dict[str, object]]:
        return list(json.loads(self.transactions_json))


class QuoteTxid(Base):
    """A txid among an invoice quote's transactions (`transactions_json`), indexed so that
    the back office finds an invoice by a txid with one exact lookup, not by reading every
    quote's JSON. Written with the transactions (services/invoice_news.py)."""

    __tablename__ = "quote_txids"

    quote_id: Mapped[int] = mapped_column(ForeignKey("invoice_quotes.id"), primary_key=True)
    txid: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class Deposit(Base):
    """A processor transaction seen at one of a merchant's addresses (from callbacks)."""

    __tablename__ = "deposits"
    # The payments list finds a deposit's page by its txid (exact match).
    __table_args__ = (UniqueConstraint("merchant_id", "processor_id"),
                      Index("ix_deposits_txid", "txid"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.client_id"))
    processor_id: Mapped[int] = mapped_column(BigInteger)  # the callback's root `id`
    address_id: Mapped[int | None] = mapped_column(ForeignKey("deposit_addresses.id"), index=True)
    currency: Mapped[str] = mapped_column(String(16))
    amount: Mapped[str] = mapped_column(Text)
    txid: Mapped[str | None] = mapped_column(String(255))
    confirmations: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    # Why the processor refused the payment, when it did ("below_minimum"): the customer
    # must read that their money was refused for being too small, not "a double spend".
    refusal: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)


class Callback(Base):
    """A processor callback exactly as received (audit log), once its signature held.

    Reconciliation stores what it learned from the processor here too (`source`
    "reconcile"), so that every change of state can be traced to the bytes behind it.
    """

    __tablename__ = "callbacks"
    # By outcome: the payments list's "flagged" and "needs attention" filters start from the
    # few flagged callbacks, never from every callback.
    __table_args__ = (Index("ix_callbacks_transaction", "merchant_id", "processor_id"),
                      Index("ix_callbacks_outcome", "outcome"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.client_id"), index=True)
    source: Mapped[str] = mapped_column(String(16), default="processor")  # processor|reconcile
    body: Mapped[bytes] = mapped_column(LargeBinary)
    processor_id: Mapped[int | None] = mapped_column(BigInteger)
    type: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(32))
    # applied | duplicate | not_ours | ignored | flagged
    outcome: Mapped[str] = mapped_column(String(16), default="ignored")
    # None unless the callback contradicts what we issued; then why it was not applied.
    flag: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)


class AppliedCallback(Base):
    """The idempotency key: a (merchant, id, type, status) is applied once, ever.

    The unique constraint, not a prior SELECT, decides between two copies racing.
    """

    __tablename__ = "applied_callbacks"
    __table_args__ = (UniqueConstraint("merchant_id", "processor_id", "type", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.client_id"))
    processor_id: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    callback_id: Mapped[int] = mapped_column(ForeignKey("callbacks.id"))


class Delivery(Base):
    """The outbox: one callback forwarded to a merchant's webhook, at least once."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.client_id"), index=True)
    callback_id: Mapped[int | None] = mapped_column(ForeignKey("callbacks.id"))
    # The page an event we composed is about (an invoice's events, a resend from the back
    # office): a payment's story finds it without reading bodies. None for a processor
    # callback forwarded as received: that one is found through `callback_id`.
    page_id: Mapped[str | None] = mapped_column(ForeignKey("pages.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    # A worker holds a delivery until this time; a killed worker's lease simply runs out.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)


class RateQuote(Base):
    """A cached processor rate, so that pages and polls never fetch rates themselves."""

    __tablename__ = "rate_quotes"
    __table_args__ = (UniqueConstraint("currency_from", "currency_to"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency_from: Mapped[str] = mapped_column(String(16))
    currency_to: Mapped[str] = mapped_column(String(16))
    rate: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    # The last time anyone asked, answered or not: a processor that is down is asked once
    # per max age, not by every page view.
    attempted_at: Mapped[datetime | None] = mapped_column(DateTime)


class CurrencyLimit(Base):
    """The processor's minimum deposit for one currency, cached from `currencies/list`.

    Links and invoices read this table, never the network: a customer must not wait on
    the processor to learn an amount is too small.
    """

    __tablename__ = "currency_limits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(16), unique=True)
    minimum_amount: Mapped[str] = mapped_column(Text)  # canonical decimal text
    precision: Mapped[int | None] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)


# ---------------------------------------------------------------- the back office's people

class User(Base):
    """Someone who signs in to the back office: an operator (every merchant) or a merchant
    user with a role per merchant (`Membership`). Enrolled once a password and a TOTP
    factor are set; until then only an enrolment link lets them in."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)  # lower-cased
    password_hash: Mapped[str | None] = mapped_column(Text)  # argon2id, PHC string
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # The last TOTP time step accepted: a code is good once, never replayed.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    operator: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    enrolled_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)


class Membership(Base):
    """A user's role at one merchant (roles.ROLES)."""

    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.client_id"),
                                             primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)


class Enrolment(Base):
    """A one-time link: enrolment of a new user, or an invitation to a merchant. Only the
    token's SHA-256 is stored; the link is shown (or emailed) once."""

    __tablename__ = "enrolments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.client_id"))
    role: Mapped[str | None] = mapped_column(String(16))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)


class RecoveryCode(Base):
    """A one-time second factor for a lost authenticator; stored as a digest, shown once."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class ConsoleSession(Base):
    """A back-office sign-in. The cookie holds a random token; only its SHA-256 is stored,
    so a copy of the database signs nobody in. `stage` is "password" until the second
    factor is given, then "signed_in"."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16), default="password")
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)


class SigninThrottle(Base):
    """Failed sign-ins counted per key ("address:<ip>" or "account:<digest of the email>",
    known or not, so that the answer never tells whether an email exists)."""

    __tablename__ = "signin_throttles"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)


class AuditEntry(Base):
    """The back office's append-only log: who did what, when, from which address. Rows are
    never updated or deleted (audit.py refuses it in the session)."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_merchant", "merchant_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=system_now, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor: Mapped[str] = mapped_column(String(255))  # the email then, or "command line"
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.client_id"))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    detail_json: Mapped[str] = mapped_column(Text, default="{}")
    address: Mapped[str | None] = mapped_column(String(64))


# ----------------------------------------------------- the back office: a payment's story

class DeliveryAttempt(Base):
    """One POST of a delivery to the shop, as it went: a Delivery keeps only its last word,
    a payment's story shows every one. `excerpt` is the first bytes of the shop's answer,
    as sent (shown escaped); `error` never holds the body, URL or secret."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    status: Mapped[int | None] = mapped_column(Integer)
    excerpt: Mapped[bytes | None] = mapped_column(LargeBinary)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # When the next try is due after this one; None once delivered or given up.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)


class PaymentNote(Base):
    """A note a back-office user wrote on a payment (shown escaped in its story). The
    author's email is kept as it was then: a removed user's notes still say who wrote them."""

    __tablename__ = "payment_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    page_id: Mapped[str] = mapped_column(ForeignKey("pages.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    author: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    text: Mapped[str] = mapped_column(Text)


# ------------------------------------------------------- money settled on the page: refunds

class Refund(Base):
    """Money a page owes back to its customer, from the request to the chain (refund_states.py).

    `foreign_id` is ours ("rf" + random), fixed when the customer asks: the one
    `withdrawal/crypto` call carries it, so a retry after a crash or a lost answer is refused
    by the processor as a duplicate and can never pay twice. `amount` is what leaves the
    merchant's balance for this refund, in the page's coin; `amount_received` what the
    customer's wallet gets after the processor's fees (estimated at the request, then the
    processor's figure). `cause` says why the money is owed (overpaid | underpaid | late).
    `send_started_at` is set when a worker began the withdrawal call: an approved refund with
    it set and no answer is asked about, never sent blind again.
    """

    __tablename__ = "refunds"
    __table_args__ = (Index("ix_refunds_state", "state", "updated_at"),
                      Index("ix_refunds_merchant", "merchant_id", "requested_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    page_id: Mapped[str] = mapped_column(ForeignKey("pages.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.client_id"))
    foreign_id: Mapped[str] = mapped_column(String(64), unique=True)
    cause: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(16))  # the coin the customer gets back
    # The balance debited, when the page's payments were converted on arrival (convert_to):
    # the withdrawal then names it and asks for `amount` of `currency` to arrive.
    balance_currency: Mapped[str] = mapped_column(String(16))
    amount: Mapped[str] = mapped_column(Text)
    amount_received: Mapped[str | None] = mapped_column(Text)
    fee: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(255))
    tag: Mapped[str | None] = mapped_column(String(64))
    # Why it was rejected, cancelled or failed (the merchant's words, or the processor's error).
    reason: Mapped[str | None] = mapped_column(Text)
    processor_id: Mapped[int | None] = mapped_column(BigInteger)
    txid: Mapped[str | None] = mapped_column(String(255))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    send_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=system_now)

    page: Mapped[Page] = relationship()
