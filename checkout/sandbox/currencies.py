"""Currencies, pairs and rates of the sandbox processor.

Rates move a little over time as a pure function of the sandbox clock (a triangle wave in
whole minutes, computed in Decimal), so tests are reproducible and no float is involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

PLACES = 8
_Q = Decimal(1).scaleb(-PLACES)


@dataclass(frozen=True)
class Currency:
    id: int
    code: str
    type: str  # crypto | fiat
    usd: Decimal  # reference price in USD
    minimum_amount: Decimal  # minimum deposit and withdrawal
    deposit_fee_percent: Decimal = Decimal("0")
    withdrawal_fee_percent: Decimal = Decimal("0")
    mining_fee: Decimal = Decimal("0")
    network: str = ""
    family: str = ""  # how addresses look: btc, ltc, bch, doge, eth, tron, xrp
    seed_balance: Decimal = Decimal("0")
    volatile: bool = True
    confirmations: int = 1  # before a deposit is credited (coinspaid-api.md §7)

    @property
    def is_crypto(self) -> bool:
        return self.type == "crypto"

    @property
    def needs_tag(self) -> bool:
        """XRP shares one address; a destination tag tells payers apart."""
        return self.family == "xrp"


def _c(id_: int, code: str, usd: str, minimum: str, dep: str, wd: str, mining: str,
       network: str, family: str, seed: str, volatile: bool = True, *,
       confirmations: int) -> Currency:
    return Currency(id_, code, "crypto", Decimal(usd), Decimal(minimum), Decimal(dep),
                    Decimal(wd), Decimal(mining), network, family, Decimal(seed), volatile,
                    confirmations)


def _f(id_: int, code: str, usd: str, seed: str = "0") -> Currency:
    return Currency(id_, code, "fiat", Decimal(usd), Decimal("0"), seed_balance=Decimal(seed),
                    volatile=False)


# Minimums and confirmations after CoinsPaid's published limits; prices are round figures.
# No BNB (Beacon Chain, BEP-2): that network stopped in December 2024.
CURRENCIES: tuple[Currency, ...] = (
    _c(1, "BTC", "65000", "0.0001", "0.3", "0", "0.00007402", "Bitcoin", "btc", "1",
       confirmations=1),
    _c(2, "LTC", "80", "0.01", "0.5", "0", "0.0001", "Litecoin", "ltc", "10", confirmations=6),
    _c(3, "BCH", "350", "0.001", "0.5", "0", "0.00001", "Bitcoin Cash", "bch", "10",
       confirmations=6),
    _c(4, "DOGE", "0.15", "1", "1", "0", "1", "Dogecoin", "doge", "10000", confirmations=6),
    _c(5, "ETH", "3200", "0.01", "0.5", "0", "0.0005", "Ethereum", "eth", "10", confirmations=10),
    _c(6, "USDTE", "1", "5", "0.5", "0", "3", "Ethereum (ERC-20)", "eth", "10000", False,
       confirmations=10),
    _c(7, "USDTT", "1", "2", "0.5", "0", "1", "TRON (TRC-20)", "tron", "10000", False,
       confirmations=19),
    _c(8, "USDC", "1", "5", "0.5", "0", "3", "Ethereum (ERC-20)", "eth", "10000", False,
       confirmations=10),
    _c(9, "XRP", "0.55", "0.001", "0.5", "0", "0.02", "XRP Ledger", "xrp", "10000",
       confirmations=1),
    _c(11, "TRX", "0.12", "10", "0.5", "0", "1", "TRON", "tron", "10000", confirmations=19),
    _f(20, "USD", "1", "10000"),
    _f(21, "EUR", "1.08", "10000"),
    _f(22, "GBP", "1.27", "10000"),
    _f(23, "CHF", "1.13"),
    _f(24, "PLN", "0.25"),
    _f(25, "JPY", "0.0067"),
    _f(26, "CAD", "0.73"),
    _f(27, "AUD", "0.66"),
    _f(28, "BRL", "0.18"),
)
BY_CODE: dict[str, Currency] = {c.code: c for c in CURRENCIES}
# Smallest exchange: worth about 0.003 BTC.
EXCHANGE_MINIMUM_BTC = Decimal("0.003")
EXCHANGE_FEE_PERCENT = Decimal("1")
# How far rates swing either way, in percent, and the wave's period in minutes.
SWING_PERCENT = 1
PERIOD_MINUTES = 120


def get(code: object) -> Currency | None:
    return BY_CODE.get(code) if isinstance(code, str) else None


def _wave(minute: int, phase: int) -> Decimal:
    """A triangle wave in [-1, 1], one step per minute."""
    half = PERIOD_MINUTES // 2
    position = (minute + phase) % PERIOD_MINUTES
    rising = position if position < half else PERIOD_MINUTES - position
    return Decimal(2 * rising - half) / Decimal(half)


def usd_price(currency: Currency, at: int) -> Decimal:
    """The currency's USD price at unix second `at`."""
    if not currency.volatile:
        return currency.usd
    drift = _wave(at // 60, currency.id * 17) * SWING_PERCENT / 100
    return currency.usd * (1 + drift)


def is_pair(source: Currency, target: Currency) -> bool:
    """Every conversion except fiat to fiat and a currency to itself."""
    return source.code != target.code and (source.is_crypto or target.is_crypto)


def ratio(source: Currency, target: Currency, at: int) -> Decimal:
    """How many `target` one `source` buys, unrounded (amounts are computed from this)."""
    if source.code == target.code:
        return Decimal(1)
    return usd_price(source, at) / usd_price(target, at)


def rate(source: Currency, target: Currency, at: int) -> Decimal:
    """The rate as shown on the wire, to 8 places."""
    return ratio(source, target, at).quantize(_Q, ROUND_HALF_UP)


def convert(amount: Decimal, source: Currency, target: Currency, at: int) -> Decimal:
    return amount * ratio(source, target, at)


def exchange_minimum(currency: Currency, at: int) -> Decimal:
    """The smallest amount of `currency` an exchange accepts (0.003 BTC worth)."""
    worth = convert(EXCHANGE_MINIMUM_BTC, BY_CODE["BTC"], currency, at)
    return worth.quantize(_Q, ROUND_DOWN)


def amount_text(amount: Decimal) -> str:
    """Amounts on the wire: 8 decimals, as the processor writes them."""
    return format(amount.quantize(_Q, ROUND_HALF_UP), "f")


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    return (amount * percent / 100).quantize(_Q, ROUND_HALF_UP)
