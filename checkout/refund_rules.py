"""What a refund is: its states and their moves, what counts against the money owed, and the
fee kept back so that the customer receives exactly what the page promised.

A refund asks the processor for one `withdrawal/crypto` of `amount - fee reserve`: a plain
withdrawal delivers its `amount` and charges its fees to the merchant's balance on top
(coinspaid-api.md §2.6, §3 "withdrawal": `currency_received.amount` equals the amount, fees
apart). So the customer's wallet gets the figure shown before they asked, to the unit; the
reserve pays the processor's fees, and the merchant carries any difference.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from . import money

REQUESTED, APPROVED, SENT, PENDING, CONFIRMED = (
    "requested", "approved", "sent", "pending", "confirmed")
REJECTED, CANCELLED, FAILED = "rejected", "cancelled", "failed"
STATES = (REQUESTED, APPROVED, SENT, PENDING, CONFIRMED, REJECTED, CANCELLED, FAILED)

# Why money is owed back.
OVERPAID, UNDERPAID, LATE = "overpaid", "underpaid", "late"
CAUSES = (OVERPAID, UNDERPAID, LATE)

# The moves a refund may make; anything else is refused (a replayed or late word from the
# processor, a second click). PENDING is the processor's own hold (its withdrawal limits).
MOVES: dict[str, frozenset[str]] = {
    REQUESTED: frozenset({APPROVED, REJECTED, CANCELLED}),
    APPROVED: frozenset({SENT, PENDING, CONFIRMED, FAILED}),
    SENT: frozenset({PENDING, CONFIRMED, FAILED}),
    PENDING: frozenset({CONFIRMED, FAILED}),
    CONFIRMED: frozenset(),
    REJECTED: frozenset(),
    CANCELLED: frozenset(),
    FAILED: frozenset(),
}
FINAL = frozenset(state for state, successors in MOVES.items() if not successors)
# The states whose money is spoken for: on its way, or gone. A rejected, cancelled or failed
# refund took nothing (a failed withdrawal's money is back in the balance), so what it asked
# is owed again.
HOLDS_MONEY = frozenset({REQUESTED, APPROVED, SENT, PENDING, CONFIRMED})
# Still to be decided by a person.
WAITING_FOR_DECISION = frozenset({REQUESTED})
# On its way to the chain: the customer's page keeps watching it.
IN_FLIGHT = frozenset({REQUESTED, APPROVED, SENT, PENDING})
# The customer chose their money back: an underpaid page no longer asks for the rest.
CHOSEN = IN_FLIGHT | {CONFIRMED}

# The most the processor charges to send each coin, in that coin: kept back from the refund.
# Above the fees CoinsPaid has charged (its callbacks' "mining" and "withdrawal" fees); a
# currency missing here keeps back nothing it cannot name, so it cannot be refunded.
FEE_RESERVE: dict[str, Decimal] = {
    "BTC": Decimal("0.0001"), "LTC": Decimal("0.001"), "BCH": Decimal("0.0001"),
    "DOGE": Decimal("2"), "ETH": Decimal("0.002"), "USDTE": Decimal("5"),
    "USDC": Decimal("5"), "DAI": Decimal("5"), "USDTT": Decimal("2"), "TRX": Decimal("2"),
    "XRP": Decimal("0.05"), "BNB-BSC": Decimal("0.001"), "USDTB": Decimal("1"),
    "ADA": Decimal("1"),
}


def may_move(current: str, new: str) -> bool:
    return new in MOVES.get(current, frozenset())


def held(states_and_amounts: Iterable[tuple[str, str]]) -> Decimal:
    """The money refunds in these states hold against what a page owes."""
    return sum((Decimal(amount) for state, amount in states_and_amounts
                if state in HOLDS_MONEY), Decimal(0))


def still_owed(owed: Decimal, states_and_amounts: Iterable[tuple[str, str]]) -> Decimal:
    """What may still be asked for: never below zero, whatever was stored."""
    return max(owed - held(states_and_amounts), Decimal(0))


def fee_reserve(currency: str) -> Decimal | None:
    return FEE_RESERVE.get(currency)


def to_receive(amount: Decimal, currency: str, places: int) -> Decimal | None:
    """What the customer's wallet receives of `amount` owed, after the fee reserve, rounded
    down to what the chain carries; None when nothing would be left."""
    reserve = fee_reserve(currency)
    if reserve is None:
        return None
    left = money.floor(amount - reserve, places)
    return left if left > 0 else None
