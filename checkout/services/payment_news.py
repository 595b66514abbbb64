"""The shop's word when a deposit page counts as paid though less than asked arrived: the
merchant's underpayment tolerance (policies.py) accepted it. The processor's deposit
callbacks are forwarded as they came and say only what arrived; this event of ours (README
"Accepted payments") says that the page is paid and by how much it fell short.

Queued once, in the transaction that made the page paid (the page is locked then), after
the processor's own callback that did (news.absorb), through the same outbox as every
callback, written as PHP's json_encode writes it with amounts as 8-place strings like the
processor's.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from .. import clock, money
from ..clock import unix
from ..models import Merchant, Page
from ..pagekinds import deposit as deposit_kind
from . import deliveries

EVENT_TYPE = "payment_accepted"


def event(page: Page) -> dict[str, Any]:
    """The shop's event for a page paid by tolerance: the shop's own order reference, what
    was asked, what arrived (confirmed), and the shortfall, all in the page's coin."""
    asked = Decimal(page.amount or "0")
    shortfall = Decimal(page.shortfall or "0")
    return {
        "type": EVENT_TYPE,
        "page_id": page.id,
        "foreign_id": page.foreign_id,
        "currency": page.currency,
        "amount": _amount(asked),
        "amount_paid": _amount(asked - shortfall),
        "shortfall": _amount(shortfall),
        "reason": deposit_kind.SHORT_ACCEPTED,
        "created_at": unix(page.paid_at or clock.now()),
    }


def _amount(value: Decimal) -> str:
    return money.text(value, money.PROCESSOR_PLACES)


def tell_shop(session: Session, merchant: Merchant, page_ids: tuple[str, ...]) -> None:
    for page_id in page_ids:
        page = session.get(Page, page_id)
        assert page is not None
        deliveries.enqueue_body(session, merchant, deliveries.encode(event(page)),
                                page_id=page.id)
