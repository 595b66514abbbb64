"""Processor accounts and their balances.

Balances are TEXT; every change reads the row FOR UPDATE (PostgreSQL) inside a
BEGIN IMMEDIATE transaction (SQLite), so concurrent moves never lose an update.
"""

from __future__ import annotations

from decimal import Decimal

from flask import Flask
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from checkout.wire import decimals

from . import currencies, store


class NotEnoughBalance(Exception):
    """The account cannot pay this from the given currency."""


def open_account(app: Flask, client_id: int, key: str, secret: str) -> None:
    """Open (or update) the account; a new one is seeded with demo balances."""
    with store.transaction(app) as session:
        account = session.get(store.Account, client_id, with_for_update=True)
        if account is not None:
            account.api_key, account.api_secret = key, secret
            return
        session.add(store.Account(client_id=client_id, api_key=key, api_secret=secret))
        session.flush()
        session.execute(insert(store.Balance), [
            {"client_id": client_id, "currency": c.code, "amount": decimals.text(c.seed_balance)}
            for c in currencies.CURRENCIES])


def set_callback_url(app: Flask, client_id: int, url: str | None) -> None:
    """Where this account's callbacks go (the back office's Callback URL setting)."""
    with store.transaction(app) as session:
        account = session.get(store.Account, client_id)
        if account is None:
            raise LookupError(f"no sandbox account {client_id}")
        account.callback_url = url


def by_key(session: Session, key: str) -> store.Account | None:
    return session.scalar(select(store.Account).where(store.Account.api_key == key))


def _row(session: Session, client_id: int, currency: str) -> store.Balance:
    row = session.get(store.Balance, (client_id, currency), with_for_update=True)
    if row is None:
        row = store.Balance(client_id=client_id, currency=currency, amount="0")
        session.add(row)
    return row


def balance(session: Session, client_id: int, currency: str) -> Decimal:
    row = session.get(store.Balance, (client_id, currency))
    return Decimal(row.amount) if row is not None else Decimal(0)


def balances(session: Session, client_id: int) -> dict[str, Decimal]:
    rows = session.scalars(select(store.Balance).where(store.Balance.client_id == client_id))
    held = {row.currency: Decimal(row.amount) for row in rows}
    return {c.code: held.get(c.code, Decimal(0)) for c in currencies.CURRENCIES}


def credit(session: Session, client_id: int, currency: str, amount: Decimal) -> None:
    row = _row(session, client_id, currency)
    row.amount = decimals.text(Decimal(row.amount or "0") + amount)


def debit(session: Session, client_id: int, currency: str, amount: Decimal) -> None:
    """Take `amount` or raise NotEnoughBalance, leaving the balance untouched."""
    row = _row(session, client_id, currency)
    held = Decimal(row.amount or "0")
    if held < amount:
        raise NotEnoughBalance(currency)
    row.amount = decimals.text(held - amount)


def only_account(session: Session) -> int:
    """The one account there is (`make run`'s demo merchant), for controls that may leave
    the account out; LookupError when there are none or several."""
    ids = session.scalars(select(store.Account.client_id).limit(2)).all()
    if len(ids) != 1:
        raise LookupError("none" if not ids else "several")
    return ids[0]


def set_withdrawal_limit(session: Session, client_id: int, currency: str,
                         limit: Decimal | None) -> None:
    """Turn the account's withdrawal limit in `currency` on (`limit`) or off (None)."""
    if session.get(store.Account, client_id) is None:
        raise LookupError(f"no sandbox account {client_id}")
    _row(session, client_id, currency).withdrawal_limit = (
        None if limit is None else decimals.text(limit))


def withdrawal_limit(session: Session, client_id: int, currency: str) -> Decimal | None:
    row = session.get(store.Balance, (client_id, currency))
    if row is None or row.withdrawal_limit is None:
        return None
    return Decimal(row.withdrawal_limit)
