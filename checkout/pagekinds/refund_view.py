"""Money owed back, as a page shows it: the `refund` part of the page model, the same for every
kind (a deposit page's over- or underpayment, an invoice's late money).

    {"owed": null | {"cause", "currency", "amount", "receive", "fee", "minimum", "too_small"},
     "refunds": [{"id", "state", "amount", "amount_received", "address", "tag", "txid",
                  "explorer_url", "reason", "requested_at", "updated_at"}]}

The part is null when nothing is owed and no refund was ever asked for: the page then says
nothing about refunds. Its refunds are read only for a page that may owe (the kind says when),
so a page paid as asked costs no query for them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .. import currencies, money
from .. import refund_rules as rules
from ..models import Page, Refund
from . import owed as owed_mod


def refund_part(session: Session, page: Page, *, may_owe: bool, testnet: bool
                ) -> dict[str, Any] | None:
    """The page's `refund` part; `may_owe` False (the page cannot owe, by its state: the
    kind says) skips every query. Built before the kind's model, which reads it (an
    underpaid deposit page stops asking for the rest once a refund is chosen)."""
    if not may_owe:
        return None
    refunds = owed_mod.of_page(session, page.id)
    due = owed_mod.owed(session, page, refunds=refunds)
    owed = _owed(due) if due is not None and due.left > 0 else None
    if owed is None and not refunds:
        return None
    return {"owed": owed, "refunds": [_refund(refund, testnet) for refund in refunds]}


def _owed(due: owed_mod.Owed) -> dict[str, Any]:
    reserve = rules.fee_reserve(due.currency)
    return {
        "cause": due.cause,
        "currency": due.currency,
        "amount": money.plain(due.left),
        "receive": None if due.receive is None else money.plain(due.receive),
        "fee": None if reserve is None else money.plain(reserve),
        "minimum": None if due.minimum is None else money.plain(due.minimum),
        # Nothing would reach the wallet (the fee takes it all, or the rest is below the
        # network's smallest withdrawal): no form, the page says so.
        "too_small": due.receive is None,
    }


def _refund(refund: Refund, testnet: bool) -> dict[str, Any]:
    return {
        "id": refund.id,
        "state": refund.state,
        "amount": money.plain(money.from_processor(refund.amount)),
        "amount_received": (None if refund.amount_received is None
                            else money.plain(money.from_processor(refund.amount_received))),
        "address": refund.address,
        "tag": refund.tag,
        "txid": refund.txid,
        "explorer_url": currencies.explorer_url(refund.currency, refund.txid, testnet=testnet),
        "reason": refund.reason,
        "requested_at": iso(refund.requested_at),
        "updated_at": iso(refund.updated_at),
    }


def iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat() + "Z"


def states(part: dict[str, Any] | None) -> set[str]:
    """The states of the part's refunds."""
    return {str(refund["state"]) for refund in (part or {}).get("refunds", [])}


def in_flight(part: dict[str, Any] | None) -> bool:
    return bool(states(part) & rules.IN_FLIGHT)


def offered(part: dict[str, Any] | None) -> bool:
    """Whether the page offers the claim form: money owed that a withdrawal can carry."""
    owed: dict[str, Any] | None = (part or {}).get("owed")
    return owed is not None and not owed["too_small"]


def signature(part: dict[str, Any] | None) -> str:
    """What of the part the server draws, in one string: the script reloads the page when
    the model's differs from the page's (checkout.js computes it alike)."""
    if not part:
        return ""
    owed: dict[str, Any] | None = part.get("owed")
    return "|".join(f"{r['id']}:{r['state']}" for r in part["refunds"]) + ";" + (
        str(owed["amount"]) if owed else "")
