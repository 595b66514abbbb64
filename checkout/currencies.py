"""What the site knows about each currency code the processor uses.

The processor only names a code ("USDTT"); the customer needs to read which coin, on which
network, with which tag, and the payment link needs the URI scheme, the token contract and
the chain. Limits and fees are not here: they change and come from `currencies/list`.

`name`, `network` and `tag_label` are English msgids marked with `N_` for extraction; the
page translates them when it renders (`_(currency.network)`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

UriStyle = Literal["bip21", "eip681", "xaman", "plain"]


def N_(message: str) -> str:  # noqa: N802 (Babel's conventional marker name)
    """Mark a msgid for extraction without translating it at import time."""
    return message


@dataclass(frozen=True, slots=True)
class Currency:
    """One processor currency code as the payer must see it and a wallet must receive it."""

    code: str
    ticker: str  # what the payer's wallet calls it: USDTE and USDTT are both "USDT"
    name: str
    network: str
    # Places an on-chain payment can carry; a URI amount with more is refused, never rounded.
    decimals: int
    uri_style: UriStyle
    uri_scheme: str | None = None
    tag_label: str | None = None
    token_decimals: int | None = None
    chain_id: int | None = None
    # The same chain's test network, named instead of `chain_id` in sandbox mode: a link of a
    # test page must never ask a wallet for the main chain.
    testnet_chain_id: int | None = None
    testnet: bool = False
    # A network that no longer runs (BNB Beacon Chain, shut down in December 2024): still
    # described, so a page a processor opens on it reads right, but never offered.
    retired: bool = False
    # The one wallet that opens this currency's link, named on the link's button.
    wallet_app: str | None = None
    # Address beginnings that only a test network uses (the sandbox hands out such addresses).
    testnet_prefixes: tuple[str, ...] = ()
    # Bech32 human-readable parts + "1": such addresses are case-insensitive.
    bech32_prefixes: tuple[str, ...] = ()

    @property
    def needs_tag(self) -> bool:
        """A shared deposit address: a payment without the tag cannot be credited."""
        return self.tag_label is not None

    @property
    def is_token(self) -> bool:
        return self.token_decimals is not None

    @property
    def qr_has_amount(self) -> bool:
        """Whether the QR carries the amount (a URI most wallets read); else it holds the
        bare address and the customer types the amount (and any tag) in the wallet."""
        return self.uri_style in ("bip21", "eip681")

    def is_testnet_address(self, address: str) -> bool:
        lowered = address.lower()
        return any(lowered.startswith(p.lower()) for p in self.testnet_prefixes)


DESTINATION_TAG = N_("Destination tag")
MEMO = N_("Memo")

_BTC_BECH32 = ("bc1", "tb1", "bcrt1")
_LTC_BECH32 = ("ltc1", "tltc1", "rltc1")


def _bip21(
    code: str,
    name: str,
    scheme: str,
    network: str,
    *,
    bech32_prefixes: tuple[str, ...] = (),
    testnet_prefixes: tuple[str, ...] = (),
    testnet: bool = False,
) -> Currency:
    ticker = code[1:] if testnet else code
    return Currency(
        code=code, ticker=ticker, name=name, network=network, decimals=8,
        uri_style="bip21", uri_scheme=scheme, testnet=testnet,
        bech32_prefixes=bech32_prefixes, testnet_prefixes=testnet_prefixes,
    )


def _erc20(code: str, ticker: str, name: str, decimals: int) -> Currency:
    # The QR holds the recipient's address alone (uris.py says why): no token contract, so
    # no wallet can read the contract as the payee.
    return Currency(
        code=code, ticker=ticker, name=name, network=N_("Ethereum (ERC-20)"),
        decimals=decimals, uri_style="plain", token_decimals=decimals, chain_id=1,
        testnet_chain_id=11155111,
    )


_TABLE: tuple[Currency, ...] = (
    _bip21("BTC", N_("Bitcoin"), "bitcoin", N_("Bitcoin"),
           bech32_prefixes=_BTC_BECH32, testnet_prefixes=("tb1", "bcrt1", "2", "m", "n")),
    _bip21("LTC", N_("Litecoin"), "litecoin", N_("Litecoin"),
           bech32_prefixes=_LTC_BECH32,
           testnet_prefixes=("tltc1", "rltc1", "Q", "2", "m", "n")),
    # Cash addresses carry their own prefix ("bitcoincash:q..."); uris.py never doubles it.
    _bip21("BCH", N_("Bitcoin Cash"), "bitcoincash", N_("Bitcoin Cash"),
           testnet_prefixes=("bchtest:", "bchreg:", "m", "n", "2")),
    _bip21("DOGE", N_("Dogecoin"), "dogecoin", N_("Dogecoin"), testnet_prefixes=("n",)),
    Currency(code="ETH", ticker="ETH", name=N_("Ether"), network=N_("Ethereum"), decimals=18,
             uri_style="eip681", uri_scheme="ethereum", chain_id=1, testnet_chain_id=11155111),
    _erc20("USDTE", "USDT", N_("Tether USD"), 6),
    _erc20("USDC", "USDC", N_("USD Coin"), 6),
    _erc20("DAI", "DAI", N_("Dai"), 18),
    _erc20("BRZ", "BRZ", N_("Brazilian Digital Token"), 4),
    _erc20("CPD", "CPD", N_("CoinsPaid token"), 18),
    _erc20("EURS", "EURS", N_("STASIS EURO"), 2),
    _erc20("VERSE", "VERSE", N_("Verse"), 18),
    _erc20("WBTC", "WBTC", N_("Wrapped Bitcoin"), 8),
    _erc20("XED", "XED", N_("Exeedme"), 18),
    Currency(code="USDTT", ticker="USDT", name=N_("Tether USD"), network=N_("TRON (TRC-20)"),
             decimals=6, uri_style="plain", token_decimals=6),
    Currency(code="TRX", ticker="TRX", name=N_("TRON"), network=N_("TRON"), decimals=6,
             uri_style="plain"),
    # BEP-20 tokens: the recipient's address alone in the QR, as for ERC-20.
    Currency(code="USDTB", ticker="USDT", name=N_("Tether USD"),
             network=N_("BNB Smart Chain (BEP-20)"), decimals=18, uri_style="plain",
             token_decimals=18, chain_id=56, testnet_chain_id=97),
    Currency(code="SNACK", ticker="SNACK", name=N_("Crypto Snack"),
             network=N_("BNB Smart Chain (BEP-20)"), decimals=18, uri_style="plain",
             token_decimals=18, chain_id=56, testnet_chain_id=97),
    Currency(code="BNB-BSC", ticker="BNB", name=N_("BNB"), network=N_("BNB Smart Chain (BEP-20)"),
             decimals=18, uri_style="eip681", uri_scheme="ethereum", chain_id=56,
             testnet_chain_id=97),
    # Beacon Chain deposits shared one address, told apart by the memo. The chain stopped in
    # December 2024: kept so that a page a processor still opens on it reads right.
    Currency(code="BNB", ticker="BNB", name=N_("BNB"), network=N_("BNB Beacon Chain (BEP-2)"),
             decimals=8, uri_style="plain", tag_label=MEMO, testnet_prefixes=("tbnb",),
             retired=True),
    # The QR holds the bare address (most wallets scan it, the tag typed beside it); the
    # link, a Xaman payment request with amount and tag, opens that one wallet only.
    Currency(code="XRP", ticker="XRP", name=N_("XRP"), network=N_("XRP Ledger"), decimals=6,
             uri_style="xaman", uri_scheme="https", tag_label=DESTINATION_TAG,
             wallet_app="Xaman"),
    # CasinoCoin is an XRP Ledger fork: destination tags, no wallet URI we know of.
    Currency(code="CSC", ticker="CSC", name=N_("CasinoCoin"), network=N_("CasinoCoin"),
             decimals=8, uri_style="plain", tag_label=DESTINATION_TAG),
    # CIP-13 (web+cardano:) exists, but few wallets open it; every wallet scans an address.
    Currency(code="ADA", ticker="ADA", name=N_("Cardano"), network=N_("Cardano"), decimals=6,
             uri_style="plain", testnet_prefixes=("addr_test1",)),
    # Sandbox aliases: a public sandbox callback showed "TBTC" (coinspaid-api.md §7).
    _bip21("TBTC", N_("Bitcoin (testnet)"), "bitcoin", N_("Bitcoin testnet"), testnet=True,
           bech32_prefixes=_BTC_BECH32, testnet_prefixes=("tb1", "bcrt1", "2", "m", "n")),
    _bip21("TLTC", N_("Litecoin (testnet)"), "litecoin", N_("Litecoin testnet"), testnet=True,
           bech32_prefixes=_LTC_BECH32,
           testnet_prefixes=("tltc1", "rltc1", "Q", "2", "m", "n")),
    Currency(code="TETH", ticker="ETH", name=N_("Ether (testnet)"),
             network=N_("Ethereum Sepolia testnet"), decimals=18, uri_style="eip681",
             uri_scheme="ethereum", chain_id=11155111, testnet=True),
)

CURRENCIES: dict[str, Currency] = {c.code: c for c in _TABLE}


def get(code: object) -> Currency | None:
    """The currency for a processor code, in any letter case; None when unknown."""
    if not isinstance(code, str):
        return None
    return CURRENCIES.get(code.upper())


def is_supported(code: object) -> bool:
    return get(code) is not None


# Balances and `convert_to` targets (coinspaid-api.md §7), with ISO 4217 minor units.
_ZERO_PLACES = frozenset({"CLP", "JPY", "KRW", "VND"})
FIAT_CODES: tuple[str, ...] = (
    "EUR", "USD", "GBP", "ARS", "AUD", "AZN", "BDT", "BRL", "BYN", "CAD", "CHF", "CLP", "CNY",
    "CZK", "GEL", "HUF", "IDR", "ILS", "INR", "JPY", "KGS", "KRW", "KZT", "LKR", "MDL", "MXN",
    "MYR", "NGN", "NOK", "NPR", "NZD", "PEN", "PHP", "PLN", "RUB", "SEK", "THB", "TJS", "TRY",
    "UAH", "VND", "ZAR",
)
_FIAT_PLACES: dict[str, int] = {c: 0 if c in _ZERO_PLACES else 2 for c in FIAT_CODES}
FIAT: frozenset[str] = frozenset(FIAT_CODES)


class UnknownCurrency(ValueError):
    """A code the site does not know."""


def is_fiat(code: object) -> bool:
    return isinstance(code, str) and code.upper() in _FIAT_PLACES


def fiat_places(code: str) -> int:
    """Decimal places a fiat amount is shown and quantised with (EUR 2, JPY 0)."""
    places = _FIAT_PLACES.get(code.upper()) if isinstance(code, str) else None
    if places is None:
        raise UnknownCurrency(f"not a fiat currency: {code!r}")
    return places


# Confirmations the processor waits for before a deposit is credited (coinspaid-api.md §7,
# "confirmations-and-limits"); the page says "1 of 6" so a customer knows how long to wait.
# They can change at the processor: the page calls them approximate, never a promise.
_CONFIRMATIONS: dict[str, int] = {
    "BTC": 1, "ETH": 10, "LTC": 6, "XRP": 1, "USDTE": 10, "USDTT": 19, "USDTB": 25,
    "USDC": 10, "BCH": 6, "DOGE": 6, "TRX": 19, "ADA": 15, "BNB": 1, "BNB-BSC": 25,
    "TBTC": 1, "TLTC": 6, "TETH": 10,
}


def confirmations_required(code: str) -> int | None:
    return _CONFIRMATIONS.get(code.upper())


# Block explorers a customer can check a transaction on, mainnet and test network. `{txid}`
# is the only placeholder; txids are hex (or base58 for a few chains) and are checked before
# they are put into a link.
_EXPLORERS: dict[str, tuple[str, str | None]] = {
    "BTC": ("https://mempool.space/tx/{txid}", "https://mempool.space/testnet4/tx/{txid}"),
    "LTC": ("https://litecoinspace.org/tx/{txid}",
            "https://litecoinspace.org/testnet/tx/{txid}"),
    "BCH": ("https://blockchair.com/bitcoin-cash/transaction/{txid}", None),
    "DOGE": ("https://blockchair.com/dogecoin/transaction/{txid}", None),
    "ETH": ("https://etherscan.io/tx/{txid}", "https://sepolia.etherscan.io/tx/{txid}"),
    "USDTE": ("https://etherscan.io/tx/{txid}", "https://sepolia.etherscan.io/tx/{txid}"),
    "USDC": ("https://etherscan.io/tx/{txid}", "https://sepolia.etherscan.io/tx/{txid}"),
    "DAI": ("https://etherscan.io/tx/{txid}", "https://sepolia.etherscan.io/tx/{txid}"),
    "USDTT": ("https://tronscan.org/#/transaction/{txid}",
              "https://shasta.tronscan.org/#/transaction/{txid}"),
    "TRX": ("https://tronscan.org/#/transaction/{txid}",
            "https://shasta.tronscan.org/#/transaction/{txid}"),
    "USDTB": ("https://bscscan.com/tx/{txid}", "https://testnet.bscscan.com/tx/{txid}"),
    "BNB-BSC": ("https://bscscan.com/tx/{txid}", "https://testnet.bscscan.com/tx/{txid}"),
    "XRP": ("https://livenet.xrpl.org/transactions/{txid}",
            "https://testnet.xrpl.org/transactions/{txid}"),
    "ADA": ("https://cardanoscan.io/transaction/{txid}",
            "https://preprod.cardanoscan.io/transaction/{txid}"),
    "TBTC": ("https://mempool.space/testnet4/tx/{txid}", None),
    "TLTC": ("https://litecoinspace.org/testnet/tx/{txid}", None),
    "TETH": ("https://sepolia.etherscan.io/tx/{txid}", None),
}
_TXID = re.compile(r"\A(?:0x)?[0-9A-Za-z]{16,128}\Z")


def explorer_url(code: str, txid: str | None, *, testnet: bool) -> str | None:
    """Where a customer can look the transaction up; None when we know no explorer for it.

    In sandbox mode the testnet explorer: a mainnet explorer would say "not found" for a
    test transaction and make an honest page look like a lie.
    """
    if not txid or not _TXID.fullmatch(txid):
        return None
    templates = _EXPLORERS.get(code.upper())
    if templates is None:
        return None
    template = templates[1] if testnet else templates[0]
    return None if template is None else template.format(txid=txid)


def shares_ticker(code: str) -> bool:
    """Whether a wallet's name for this coin (USDT, BNB) also names it on another network:
    then the page must say the network wherever it says the coin."""
    info = get(code)
    if info is None:
        return False
    return any(other.ticker == info.ticker and other.code != info.code
               and other.testnet == info.testnet for other in _TABLE)
