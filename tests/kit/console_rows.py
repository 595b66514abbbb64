"""Rows of the back office's figures, written as the site's own flows leave them: pages in
each status, invoices with their amounts, deliveries and callbacks in each state."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from checkout import merchants
from checkout.models import Callback, Delivery, Invoice, Page


def add_merchant(app: Flask, client_id: int, name: str) -> None:
    with app.app_context():
        merchants.add(merchants.NewMerchant(
            client_id=client_id, name=name, key=f"key-{client_id}", secret=f"secret-{client_id}",
            return_hosts=("shop.example",), frame_origins=(),
            webhook_url="https://shop.example/hook"))


def deposit_page(session: Session, merchant_id: int, *, status: str, reason: str | None = None,
                 currency: str = "BTC", paid: str = "0", rate: str | None = None,
                 fiat: str | None = "EUR", at: datetime, foreign_id: str = "") -> Page:
    page = Page(id=secrets.token_urlsafe(32), kind="deposit", merchant_id=merchant_id,
                foreign_id=foreign_id or secrets.token_hex(4), currency=currency,
                fiat_currency=fiat, amount_paid=paid, status=status, reason=reason,
                paid_rate=rate, paid_at=at if rate else None, created_at=at, updated_at=at)
    session.add(page)
    return page


def invoice_page(session: Session, merchant_id: int, *, status: str, reason: str | None = None,
                 amount: str = "10.00", currency: str = "EUR", pay_currency: str = "BTC",
                 asked: str | None = "0.001", paid: str = "0", at: datetime) -> Page:
    """An invoice in `currency` for `amount`, its page showing the current quote (`asked`
    and `paid` in `pay_currency`) and the invoice's status, as invoices.sync_page keeps it."""
    page = Page(id=secrets.token_urlsafe(32), kind="invoice", merchant_id=merchant_id,
                foreign_id=secrets.token_hex(4), currency=pay_currency, amount=asked,
                amount_paid=paid, fiat_currency=currency, status=status, reason=reason,
                created_at=at, updated_at=at)
    session.add(page)
    session.flush()
    session.add(Invoice(merchant_id=merchant_id, foreign_id=page.foreign_id, page_id=page.id,
                        title="Order", currency=currency, amount=amount,
                        url_success="https://shop.example/ok",
                        url_failed="https://shop.example/failed", status=status, reason=reason,
                        created_at=at, updated_at=at))
    return page


def delivery(session: Session, merchant_id: int, *, state: str, error: str | None = None,
             at: datetime) -> Delivery:
    row = Delivery(merchant_id=merchant_id, url="https://shop.example/hook", body=b"{}",
                   state=state, attempts=1 if error else 0, last_error=error,
                   next_attempt_at=at, created_at=at)
    session.add(row)
    return row


def callback(session: Session, merchant_id: int, *, outcome: str, flag: str | None = None,
             at: datetime) -> Callback:
    row = Callback(merchant_id=merchant_id, body=b"{}", outcome=outcome, flag=flag,
                   received_at=at)
    session.add(row)
    return row
