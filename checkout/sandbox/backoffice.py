"""The processor's back office, as far as withdrawals go: an account's withdrawal limits, and
the person who approves or cancels a withdrawal held by them.

At CoinsPaid a withdrawal above the limits waits (`pending`) until someone approves it in the
back office (coinspaid-api.md §5). The sandbox's operator plays that person through
`POST /sandbox/simulate/withdrawal(-limit)` and `flask sandbox withdrawal ...`; both come here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from . import accounts, clock, operations, payloads, store
from .currencies import Currency

DECLINED = operations.DECLINED


class Refused(Exception):
    """The control cannot be applied: `field` names what is wrong, `status` the HTTP answer."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


def _account(session: Session, client_id: int | None) -> int:
    if client_id is not None:
        if session.get(store.Account, client_id) is None:
            raise Refused("client_id", "The selected client id is invalid.", 404)
        return client_id
    try:
        return accounts.only_account(session)
    except LookupError as exc:
        raise Refused("client_id", "The client id field is required when there is not "
                                   "exactly one account.") from exc


@dataclass(frozen=True)
class Limit:
    client_id: int
    currency: str
    limit: Decimal | None


def set_limit(app: Flask, client_id: int | None, currency: Currency,
              limit: Decimal | None) -> Limit:
    """Withdrawals of more than `limit` of `currency` wait for approval; None: none wait."""
    with store.transaction(app) as session:
        account = _account(session, client_id)
        accounts.set_withdrawal_limit(session, account, currency.code, limit)
    return Limit(account, currency.code, limit)


def decide(app: Flask, *, approve: bool, op_id: int | None = None,
           foreign_id: str | None = None, client_id: int | None = None,
           error: str | None = None) -> dict[str, Any]:
    """Approve or cancel the pending withdrawal named by its id or foreign_id; its
    transactions/info-shaped object as it now is."""
    with store.transaction(app) as session:
        try:
            op = operations.find_withdrawal(session, op_id=op_id, foreign_id=foreign_id,
                                            client_id=client_id)
        except LookupError as exc:
            field = "id" if op_id is not None else "foreign_id"
            if str(exc) == "several":
                raise Refused("client_id", "Several accounts have a withdrawal with this "
                                           "foreign id: name the client id.") from exc
            raise Refused(field, f"No withdrawal has this {field.replace('_', ' ')}.",
                          404) from exc
        try:
            operations.decide(session, op, approve, error, clock.now(session, app))
        except operations.NotPending as exc:
            raise Refused("decision", f"The withdrawal is not pending: it is {op.status}.",
                          409) from exc
        return payloads.withdrawal(op)


def pending(app: Flask) -> list[dict[str, Any]]:
    """Every withdrawal waiting for a decision (for the operator's list)."""
    with store.transaction(app) as session:
        return [payloads.withdrawal(op) | {"client_id": op.client_id}
                for op in operations.pending_withdrawals(session)]
