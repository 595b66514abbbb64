"""What a page is and shows, one module per kind (deposit.py, invoice.py) behind one
interface (base.PageKind): code outside this package asks `KINDS[page.kind]`, never compares
the kind's name. present.py says things the same way for every kind; snapshot.py stores the
model each change builds, for the status poll.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from .. import clock
from ..models import Page
from . import deposit, invoice, present, refund_view
from .base import PageKind, PageModel

KINDS: dict[str, PageKind] = {kind.name: kind for kind in (deposit.KIND, invoice.KIND)}


def kind_of(page: Page) -> PageKind:
    return KINDS[page.kind]


def page_model(session: Session, page: Page, now: datetime | None = None) -> PageModel:
    """The page's model from its tables, by its kind: what `/status` answers and the HTML
    renders from. Every build goes through here (snapshot.py builds once per change). Money
    owed back is read first, and only where the kind says the page may owe."""
    kind = KINDS[page.kind]
    refund = refund_view.refund_part(session, page, may_owe=kind.may_owe(page),
                                     testnet=present.testnet())
    if refund is not None:
        # What the script compares and follows, decided here once: server and script
        # cannot disagree, and the page's script stays small.
        refund["signature"] = refund_view.signature(refund)
        refund["moving"] = refund_view.in_flight(refund)
    model = kind.model(session, page, now or clock.now(), refund)
    model["label"] = present.label_key(model)  # which label says the status, for the script
    return model


__all__ = ["KINDS", "PageKind", "PageModel", "page_model", "kind_of"]
