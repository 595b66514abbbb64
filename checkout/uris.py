"""Payment URIs a wallet opens, and what a QR code carries.

One builder per URI family, chosen by `Currency.uri_style`:

- bip21 (BTC, LTC, BCH, DOGE): `bitcoin:<address>?amount=<decimal coins>&label=<text>`.
- eip681 (ETH, BNB on BSC: native coins only): `ethereum:<address>@<chain_id>?value=<wei>`.
  The chain id is always written: without it a wallet uses whatever chain it is on, and a
  BSC payment made from a wallet set to Ethereum is lost. In sandbox mode (`testnet=True`)
  it is the test network's (Sepolia 11155111, BSC testnet 97), never the main chain's: the
  page says "test network", and a link must not ask a wallet for real coins.
- xaman (XRP): the link is `https://xaman.app/detect/request:<r-address>?amount=<XRP>&
  network=XRPL&dt=<tag>` (docs.xaman.dev "Payment Request Link"), but only Xaman reads it:
  other wallets and exchange apps that scan it get a web address, not a payee. XRP has no
  URI standard (XLS-2 is stagnant), and what every XRP wallet scans is the bare r-address,
  with the destination tag typed in a field of its own. So the QR holds the bare address;
  the page shows the tag as loudly as the address, with its own copy button and the warning
  that a payment without it is lost or delayed, and offers the Xaman link as a button.
  In sandbox mode the link names no ledger (`network=XRPL` is the main one; Xaman documents
  no key for the XRP testnet), so the customer's wallet stays on the network it is set to.
- plain (ERC-20 and BEP-20 tokens, TRON, Cardano, CasinoCoin, BNB Beacon): the address
  alone. For TRON and Cardano no scheme is common. For tokens, EIP-681 puts the token
  contract where the payee goes (`ethereum:<contract>@1/transfer?address=<recipient>&
  uint256=<units>`): wallets that support it partly (no function calls, or ETH only) read
  the contract as the payee and send there, and coins sent to a token contract are lost.
  The recipient's address alone cannot be misread: the customer picks the token and types
  the amount in the wallet, and the page says so beside the QR with a copy button for the
  amount. It names no contract and no chain, so it is right on a test network too.

`qr_content` gives what the QR holds: the URI (bech32 addresses uppercased) where it
carries the amount, else the bare address.

Amounts are exact: never exponent form, never rounded; an amount with more places than the
currency can carry is refused. Labels exist only in BIP21 and are UTF-8 percent-encoded.
"""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import quote

from checkout import money
from checkout.currencies import CURRENCIES, DESTINATION_TAG, Currency, get

# Bigger than any real payment; keeps `format(amount, "f")` of 1E+999999 from eating memory.
_MAX_AMOUNT = Decimal(10) ** 20
_MAX_TAG = 2**32 - 1  # XRP destination tags are UInt32
_MAX_MEMO = 128

_EVM_ADDRESS = re.compile(r"\A0x[0-9a-fA-F]{40}\Z")
_XRP_ADDRESS = re.compile(r"\Ar[1-9A-HJ-NP-Za-km-z]{24,34}\Z")
# Base58, bech32, hex: letters and digits only, so an address can never add a query part.
_ADDRESS = re.compile(r"\A[A-Za-z0-9]{1,200}\Z")
_CASHADDR_PREFIX = re.compile(r"\A(bitcoincash|bchtest|bchreg):", re.IGNORECASE)
_NUMERIC_TAG = re.compile(r"\A[0-9]{1,10}\Z")
_MEMO_TEXT = re.compile(r"\A[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?\Z")

_BECH32_CHARS = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


class UriError(ValueError):
    """Parts that would make a wrong or unsafe payment URI."""


def payment_uri(
    currency: Currency | str,
    address: str,
    amount: Decimal | None,
    tag: str | None = None,
    label: str | None = None,
    *,
    testnet: bool = False,
) -> str:
    """The URI a wallet opens to pay `amount` (or any amount when None) to `address`.

    A code the site does not know gives the plain address: no scheme is better than a wrong
    one. `testnet`: the sandbox's test addresses; a chain is named by its test network's id,
    or not at all. Raises UriError for a malformed address, amount, tag or label, for a tag
    on a currency that has none, and for a missing tag on one that needs it.
    """
    info = get(currency) if isinstance(currency, str) else currency
    if info is None:
        return _plain(_checked_address(address), tag)
    _check_tag(info, tag)
    if amount is not None:
        _check_amount(info, amount)
    if info.uri_style == "bip21":
        return _bip21(info, address, amount, label)
    if info.uri_style == "eip681":
        return _eip681(info, address, amount, testnet)
    if info.uri_style == "xaman":
        return _xaman(address, amount, tag, testnet)
    return _plain(_checked_address(address), tag)


def qr_content(currency: Currency | str, address: str, uri: str) -> str:
    """What the QR of a payment holds: its URI where most wallets read that URI with the
    amount in it, else the bare address (XRP, tokens, TRON: see the module's docstring)."""
    info = get(currency) if isinstance(currency, str) else currency
    if info is not None and not info.qr_has_amount and address:
        return address
    return qr_text(uri)


def qr_text(uri: str) -> str:
    """The QR payload for a URI: a bech32 address uppercased, everything else untouched.

    Uppercase letters and digits fit the QR alphanumeric mode, so the code gets smaller
    (BIP173: "inside QR codes uppercase SHOULD be used"). Only the address changes: BIP21 keys
    and values are case-sensitive, and the scheme stays lowercase because some wallets do
    not recognise `BITCOIN:` (btcpayserver#2099, then #2110/#2181 settled on
    `bitcoin:BC1Q...`); an uppercase scheme would not make the code any smaller anyway
    (`qrcode` puts lowercase `bitcoin:` in a short byte segment of its own). Links shown on
    the page keep the lowercase URI.
    """
    scheme, colon, rest = uri.partition(":")
    prefixes = _BECH32_BY_SCHEME.get(scheme.lower()) if colon else None
    if not prefixes:
        return uri
    address, question, query = rest.partition("?")
    if not _is_bech32(address, prefixes):
        return uri
    return f"{scheme}:{address.upper()}{question}{query}"


def atomic_units(amount: Decimal, places: int) -> int:
    """`amount` × 10^places as an exact integer (wei, token units); UriError if not whole."""
    sign, digits, exponent = amount.as_tuple()
    if sign or not isinstance(exponent, int):
        raise UriError("amount must be a finite positive number")
    coefficient = int("".join(map(str, digits)) or "0")
    shift = exponent + places
    if shift >= 0:
        return coefficient * 10**shift
    whole, rest = divmod(coefficient, 10**-shift)
    if rest:
        raise UriError(f"amount has more than {places} decimal places")
    return whole


def _bip21(info: Currency, address: str, amount: Decimal | None, label: str | None) -> str:
    scheme = info.uri_scheme or "bitcoin"
    prefix = _CASHADDR_PREFIX.match(address)
    if prefix:
        # A cash address names its own network; "bitcoincash:bitcoincash:q..." opens nothing.
        scheme, address = prefix.group(1).lower(), address[prefix.end():]
    params = []
    if amount is not None:
        params.append(f"amount={money.plain(amount)}")
    if label:
        params.append(f"label={_encoded(label)}")
    return _join(f"{scheme}:{_checked_address(address)}", params)


def _eip681(info: Currency, address: str, amount: Decimal | None, testnet: bool) -> str:
    if not _EVM_ADDRESS.match(address):
        raise UriError("not an EVM address (0x and 40 hex digits)")
    chain_id = info.chain_id if info.testnet or not testnet else info.testnet_chain_id
    if chain_id is None:
        raise UriError(f"{info.code} has no chain id for this network")
    params = [] if amount is None else [f"value={atomic_units(amount, 18)}"]
    return _join(f"ethereum:{address}@{chain_id}", params)


def _xaman(address: str, amount: Decimal | None, tag: str | None, testnet: bool) -> str:
    if not _XRP_ADDRESS.match(address):
        raise UriError("not an XRP Ledger address")
    params = [] if amount is None else [f"amount={money.plain(amount)}"]
    # Xaman also serves Xahau, whose r-addresses look the same: name the ledger, as a chain
    # id; never the main one for a test page.
    if not testnet:
        params.append("network=XRPL")
    if tag is not None:
        params.append(f"dt={tag}")
    return _join(f"https://xaman.app/detect/request:{address}", params)


def _plain(address: str, tag: str | None) -> str:
    if tag is not None and not _MEMO_TEXT.match(tag):
        raise UriError("tag must be printable text")
    return address


def _join(base: str, params: list[str]) -> str:
    return f"{base}?{'&'.join(params)}" if params else base


def _encoded(value: str) -> str:
    try:
        return quote(value, safe="", encoding="utf-8", errors="strict")
    except UnicodeEncodeError as exc:
        raise UriError("label is not valid text") from exc


def _checked_address(address: str) -> str:
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise UriError("address must be letters and digits only")
    return address


def _check_amount(info: Currency, amount: Decimal) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise UriError("amount must be a finite Decimal")
    if amount <= 0 or amount >= _MAX_AMOUNT:
        raise UriError("amount must be positive and below 10^20")
    atomic_units(amount, info.decimals)


def _check_tag(info: Currency, tag: str | None) -> None:
    if tag is None:
        if info.needs_tag:
            # The address is shared: a payment without its tag cannot be credited.
            raise UriError(f"{info.code} needs a {info.tag_label}")
        return
    if not info.needs_tag:
        raise UriError(f"{info.code} takes no tag")
    if not isinstance(tag, str):
        raise UriError("tag must be a string")
    if info.tag_label == DESTINATION_TAG:
        if not _NUMERIC_TAG.match(tag) or int(tag) > _MAX_TAG:
            raise UriError("destination tag must be a number up to 4294967295")
    elif len(tag) > _MAX_MEMO or not _MEMO_TEXT.match(tag):
        raise UriError("memo must be printable text up to 128 characters")


def _is_bech32(address: str, prefixes: tuple[str, ...]) -> bool:
    lowered = address.lower()
    if address not in (lowered, address.upper()):
        return False  # mixed case is not bech32; leave it for the wallet to refuse
    for prefix in prefixes:
        if lowered.startswith(prefix):
            data = lowered[len(prefix):]
            return 6 <= len(data) <= 87 and all(c in _BECH32_CHARS for c in data)
    return False


def _bech32_by_scheme() -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for info in CURRENCIES.values():
        if info.uri_style == "bip21" and info.uri_scheme and info.bech32_prefixes:
            known = table.get(info.uri_scheme, ())
            added = tuple(p for p in info.bech32_prefixes if p not in known)
            table[info.uri_scheme] = known + added
    # Longest first, so "bcrt1" is not read as "bc" + data.
    return {s: tuple(sorted(p, key=len, reverse=True)) for s, p in table.items()}


_BECH32_BY_SCHEME = _bech32_by_scheme()
