"""The embedded processor's own tables and engine: nothing here is shared with the site.

Times are whole unix seconds on the sandbox clock; amounts are canonical decimal TEXT.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app
from sqlalchemy import (
    Boolean,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

EXTENSION = "sandbox.session"


class Base(DeclarativeBase):
    """The sandbox's tables (prefixed sandbox_)."""


class Account(Base):
    """A merchant account at the processor: API key and secret, where callbacks go."""

    __tablename__ = "sandbox_accounts"

    client_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    api_key: Mapped[str] = mapped_column(String(255), unique=True)
    api_secret: Mapped[str] = mapped_column(String(255))
    callback_url: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:  # never shows the secret
        return f"<sandbox.Account {self.client_id}>"


class Balance(Base):
    """What an account holds in one currency."""

    __tablename__ = "sandbox_balances"

    client_id: Mapped[int] = mapped_column(
        ForeignKey("sandbox_accounts.client_id", ondelete="CASCADE"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount: Mapped[str] = mapped_column(Text, default="0")
    # The back office's withdrawal limit in this currency (None: off). A withdrawal of more
    # waits, `pending`, for a person at the processor to approve or cancel it.
    withdrawal_limit: Mapped[str | None] = mapped_column(Text)


class Clock(Base):
    """One row: how far the sandbox clock runs ahead of the real one (all processes agree)."""

    __tablename__ = "sandbox_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    offset_seconds: Mapped[int] = mapped_column(Integer, default=0)


class Address(Base):
    """A deposit address handed out by addresses/take or for an invoice."""

    __tablename__ = "sandbox_addresses"
    __table_args__ = (Index("ix_sandbox_addresses_lookup", "address", "tag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("sandbox_accounts.client_id"))
    currency: Mapped[str] = mapped_column(String(16))
    convert_to: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(128))
    tag: Mapped[str | None] = mapped_column(String(32))
    foreign_id: Mapped[str | None] = mapped_column(String(255))
    end_user_reference: Mapped[str | None] = mapped_column(String(255))
    invoice_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer)


class Operation(Base):
    """A root object of the processor: deposit, withdrawal, exchange or invoice.

    Its id is the root `id` of callbacks and transactions/info, so all kinds share one
    sequence. `scope` makes foreign_id unique per account and kind (deposits have none).
    """

    __tablename__ = "sandbox_operations"
    __table_args__ = (
        UniqueConstraint("client_id", "scope", "foreign_id", name="uq_sandbox_operations_foreign"),
        Index("ix_sandbox_operations_due", "status", "confirm_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("sandbox_accounts.client_id"))
    type: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str | None] = mapped_column(String(16))
    foreign_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    error: Mapped[str] = mapped_column(Text, default="")
    address_id: Mapped[int | None] = mapped_column(ForeignKey("sandbox_addresses.id"))
    currency_sent: Mapped[str] = mapped_column(String(16))
    amount_sent: Mapped[str] = mapped_column(Text)
    currency_received: Mapped[str] = mapped_column(String(16))
    amount_received: Mapped[str] = mapped_column(Text)
    fees_json: Mapped[str] = mapped_column(Text, default="[]")
    txid: Mapped[str | None] = mapped_column(String(128), index=True)
    to_address: Mapped[str | None] = mapped_column(String(255))
    to_tag: Mapped[str | None] = mapped_column(String(64))
    end_user_reference: Mapped[str | None] = mapped_column(String(255))
    confirm_at: Mapped[int | None] = mapped_column(Integer)
    # Where this object's callbacks go when the account has no callback URL of its own,
    # captured from the request that created it so the worker needs none.
    notify_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(Integer)

    @property
    def fees(self) -> list[dict[str, str]]:
        return list(json.loads(self.fees_json))

    @fees.setter
    def fees(self, fees: list[dict[str, str]]) -> None:
        self.fees_json = json.dumps(fees)


class Invoice(Base):
    """The invoice side of an Operation of type invoice (same id)."""

    __tablename__ = "sandbox_invoices"

    id: Mapped[int] = mapped_column(ForeignKey("sandbox_operations.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # fill_or_kill | good_until_expired
    timer: Mapped[bool] = mapped_column(Boolean)
    title: Mapped[str] = mapped_column(String(50))
    description: Mapped[str | None] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(16))
    amount: Mapped[str] = mapped_column(Text)
    sender_currency: Mapped[str | None] = mapped_column(String(16))
    sender_amount: Mapped[str | None] = mapped_column(Text)
    fixed_at: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[int | None] = mapped_column(Integer, index=True)
    url_success: Mapped[str] = mapped_column(Text)
    url_failed: Mapped[str] = mapped_column(Text)
    email_user: Mapped[str | None] = mapped_column(String(255))


class Payment(Base):
    """A blockchain payment a payer sent to an address (one per simulate/payment)."""

    __tablename__ = "sandbox_payments"
    __table_args__ = (Index("ix_sandbox_payments_due", "status", "confirm_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("sandbox_operations.id"), index=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("sandbox_addresses.id"))
    amount: Mapped[str] = mapped_column(Text)
    txid: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(32))
    confirm_at: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer)


class Quote(Base):
    """An exchange/calculate answer that exchange/fixed may accept until ts_release."""

    __tablename__ = "sandbox_quotes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("sandbox_accounts.client_id"))
    sender_currency: Mapped[str] = mapped_column(String(16))
    receiver_currency: Mapped[str] = mapped_column(String(16))
    sender_amount: Mapped[str] = mapped_column(Text)
    receiver_amount: Mapped[str] = mapped_column(Text)
    price: Mapped[str] = mapped_column(Text)
    ts_release: Mapped[int] = mapped_column(Integer)


class RateHit(Base):
    """One rate-limited request (exchange/calculate), by client IP."""

    __tablename__ = "sandbox_rate_hits"
    __table_args__ = (Index("ix_sandbox_rate_hits_ip", "ip", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[int] = mapped_column(Integer)


class Callback(Base):
    """The outbox: one signed callback, retried on the processor's schedule until a 200."""

    __tablename__ = "sandbox_callbacks"
    __table_args__ = (Index("ix_sandbox_callbacks_due", "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("sandbox_accounts.client_id"))
    operation_id: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int | None] = mapped_column(Integer)
    claimed_until: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(Integer)


class ShopCallback(Base):
    """What the demo shop receiver got (shown at /sandbox/shop)."""

    __tablename__ = "sandbox_shop_callbacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_key: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[int] = mapped_column(Integer)


def make_engine(url: str) -> Engine:
    """The sandbox's own engine on the site's database URL."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Our own transactions: pysqlite's implicit BEGIN is turned off so that we can
        # start every one with BEGIN IMMEDIATE below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # WAL with NORMAL sync never corrupts; a power cut may lose the last sandbox writes,
        # which a simulated processor can afford, and each commit skips an fsync.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # A deferred transaction that reads, then writes after another process wrote
        # fails at once with SQLITE_BUSY (WAL snapshot); taking the write lock up front
        # makes it wait its turn instead. Sandbox traffic is tiny, so this costs nothing.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions[EXTENSION] = sessionmaker(bind=engine, expire_on_commit=False)
    app.extensions[EXTENSION + ".engine"] = engine
    # No pooled connection outlives its app (tests build many apps on one database).
    weakref.finalize(app, engine.dispose)


@contextmanager
def transaction(app: Flask | None = None) -> Iterator[Session]:
    """A fresh session in one transaction: commit on success, roll back on any error."""
    factory = (app or current_app).extensions[EXTENSION]
    session: Session = factory()
    try:
        with session.begin():
            yield session
    finally:
        session.close()
