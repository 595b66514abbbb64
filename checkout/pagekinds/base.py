"""What a page kind is and shows: the interface every kind implements, and the page model
they all build (CONTRACT.md, "The page model").

A kind is asked, never named: code outside this package takes `KINDS[page.kind]` and calls
it, so a new kind is one module here and one entry in `KINDS`, not a hunt for string
comparisons.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NotRequired, Protocol, TypedDict, runtime_checkable

from sqlalchemy.orm import Session

from ..models import Page

# In a session's `info`: the pages whose models its commit writes (snapshot.py). Marked here,
# below every kind, so that a kind writing a page's row itself marks it too.
DUE = "checkout.snapshot.due"


def mark(session: Session, page_ids: set[str] | list[str]) -> None:
    """Ask for these pages' models to be written when the transaction commits."""
    due: set[str] = session.info.setdefault(DUE, set())
    due.update(page_ids)


class PageModel(TypedDict):
    """What `<page>/status` answers and the HTML renders from, key for key in the order sent
    (the JSON's bytes follow this order)."""

    id: str
    kind: str
    status: str
    reason: str | None
    final: bool
    phase: str
    pay_now: bool
    currency: str
    address: str | None
    tag: str | None
    network: str
    test_network: bool
    amount: str | None
    amount_paid: str
    amount_due: str | None
    rest_below_minimum: str | None
    minimum_extra: str | None
    amount_over: str | None
    minimum: str | None
    fiat: dict[str, Any] | None
    seconds_left: int | None
    payment_uri: str
    confirmations_required: int | None
    transactions: list[dict[str, Any]]
    receipt: dict[str, Any] | None
    return_url: str | None
    # Beyond the contract: the form the page shows instead of pay instructions (invoice
    # currency picker, email), whether money that came in is refunded, the invoice.
    form: str | None
    refund_note: bool
    invoice: dict[str, Any] | None
    # Money owed back and the refunds asked for it (refund_view.py), null when neither.
    refund: dict[str, Any] | None
    # An invoice's alone: money that arrived after it closed, and whether the script keeps
    # asking about a final page (late money may still come, or confirm).
    late: NotRequired[dict[str, Any] | None]
    watch: NotRequired[bool]
    # A final page's facts for the customer to copy for support ([key, value] lines, values
    # only: present.support_lines); null while open. Absent from a model stored before it.
    support: NotRequired[list[list[str]] | None]
    # A deposit page's alone: what a page paid within the shop's tolerance lacked.
    shortfall: NotRequired[str | None]
    # Which of the labels says the status (present.label_key), for the script.
    label: NotRequired[str]


@runtime_checkable
class PageKind(Protocol):
    """A kind of customer page: its name (`Page.kind`), its template, how its model is built,
    the words for its phases, and which of its statuses are open, final, and in what order."""

    @property
    def name(self) -> str: ...

    @property
    def template(self) -> str:
        """The page's HTML template (its receipt is `receipt.html` for every kind)."""
        ...

    @property
    def open_states(self) -> tuple[str, ...]:
        """Statuses of a page still waiting for money or a choice: their models follow
        the rates."""
        ...

    @property
    def final_states(self) -> frozenset[str]:
        """Statuses the page may end in (a confirmed deposit short of the amount is not
        final: `is_final` decides with the reason)."""
        ...

    @property
    def ranks(self) -> Mapping[str, int]:
        """Forward-only ranks of the statuses the processor reports for this kind's money:
        a state moves only to a higher rank."""
        ...

    @property
    def framable(self) -> bool:
        """Whether any page of this kind may be framed by the merchant's registered origins
        (else only one opened for a frame)."""
        ...

    @property
    def chooses_currency(self) -> bool:
        """Whether the customer picks the currency (and gives an email) on the page itself."""
        ...

    @property
    def pays_again(self) -> bool:
        """Whether a page of this kind with an amount offers "pay again" once final."""
        ...

    def is_final(self, status: str, reason: str | None) -> bool: ...

    def model(self, session: Session, page: Page, now: datetime,
              refund: dict[str, Any] | None = None) -> PageModel:
        """The page's model, from its tables: built once per change (snapshot.py). `refund`:
        its money owed back (refund_view.py), read before, so the phase can follow it."""
        ...

    def may_owe(self, page: Page) -> bool:
        """Whether the page, in its state, may owe its customer money back: only then are its
        refunds read."""
        ...

    def labels(self) -> dict[str, str]:
        """Customer text per phase, translated, with the model's `{placeholders}`."""
        ...
