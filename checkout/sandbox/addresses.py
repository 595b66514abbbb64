"""Realistic testnet addresses, derived deterministically from an address number.

Bitcoin and Litecoin get bech32 P2WPKH addresses with valid checksums (BIP-173), Bitcoin
Cash and Dogecoin base58check testnet addresses, Ethereum tokens `0x` + 40 hex, TRON
base58check `T…`; XRP shares one address and tells payers apart by a destination tag.
"""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkout.wire import address_text

from . import store
from .currencies import Currency

_BASE58 = address_text.BITCOIN_ALPHABET
_RIPPLE58 = address_text.RIPPLE_ALPHABET
# Tags start high enough to look like real destination tags.
TAG_BASE = 100000


def _program(family: str, number: int) -> bytes:
    return hashlib.sha256(f"checkout-sandbox:{family}:{number}".encode()).digest()[:20]


def bech32_checksum_ok(address: str) -> bool:
    try:
        return address_text.bech32_decode(address)[2] == "bech32"
    except address_text.CodecError:
        return False


def segwit(hrp: str, program: bytes) -> str:
    """A version-0 witness address (bech32, BIP-173)."""
    data = [0] + address_text.convert_bits(program, 8, 5, pad=True)
    return address_text.bech32_encode(hrp, data, "bech32")


def base58check(version: bytes, payload: bytes, alphabet: str = _BASE58) -> str:
    return address_text.base58check_encode(version + payload, alphabet)


def base58check_ok(address: str, alphabet: str = _BASE58) -> bool:
    try:
        address_text.base58check_decode(address, alphabet)
    except address_text.CodecError:
        return False
    return True


# The shared address of the tag currency.
XRP_ADDRESS = base58check(b"\0", _program("xrp", 0), _RIPPLE58)


def derive(currency: Currency, number: int) -> tuple[str, str | None]:
    """The (address, tag) handed out as address number `number` of `currency`."""
    family = currency.family
    program = _program(family, number)
    if family == "btc":
        return segwit("tb", program), None
    if family == "ltc":
        return segwit("tltc", program), None
    if family == "bch":
        return base58check(b"\x6f", program), None
    if family == "doge":
        return base58check(b"\x71", program), None
    if family == "eth":
        return "0x" + program.hex(), None
    if family == "tron":
        return base58check(b"\x41", program), None
    if family == "xrp":
        return XRP_ADDRESS, str(TAG_BASE + number)
    raise ValueError(f"no deposit addresses for {currency.code}")


def txid(kind: str, number: int) -> str:
    """A transaction hash that looks like one (64 hex; 0x-prefixed for Ethereum-like chains)."""
    return hashlib.sha256(f"checkout-sandbox:tx:{kind}:{number}".encode()).hexdigest()


def allocate(session: Session, client_id: int, currency: Currency, now: int, *,
             convert_to: str | None = None, foreign_id: str | None = None,
             end_user_reference: str | None = None,
             invoice_id: int | None = None) -> store.Address:
    """Hand out the next address of `currency` (a new tag on the shared address for XRP)."""
    row = store.Address(client_id=client_id, currency=currency.code, convert_to=convert_to,
                        address="", foreign_id=foreign_id, end_user_reference=end_user_reference,
                        invoice_id=invoice_id, created_at=now)
    session.add(row)
    session.flush()  # the row number is the derivation counter
    row.address, row.tag = derive(currency, row.id)
    return row


def find(session: Session, address: str, tag: str | None) -> store.Address | None:
    """The processor's own address (and tag, for XRP) that `address` names, if any."""
    rows = session.scalars(select(store.Address).where(store.Address.address == address)).all()
    if not rows and address.lower() != address:
        # bech32 and hex addresses are case-insensitive.
        rows = session.scalars(select(store.Address)
                               .where(store.Address.address == address.lower())).all()
    for row in rows:
        if row.tag == tag or (row.tag is None and tag is None):
            return row
    return None


# --- what the chain refuses -------------------------------------------------------------

# The processor's own words for an Ethereum-like chain (coinspaid-api.md §3, the cancelled
# withdrawal).
BAD_ETH_ADDRESS = "Invalid params: expected a hex-encoded hash with 0x prefix."
_ETH_ADDRESS = re.compile(r"\A0x[0-9a-fA-F]{40}\Z")
# Every other chain's addresses are letters and digits (BCH's cash address adds its prefix).
_PLAIN_ADDRESS = re.compile(r"\A(?:(?:bitcoincash|bchtest):)?[A-Za-z0-9]+\Z")
# Sandbox only: an address with this word in it is one every chain refuses, so that a test or
# a demo reaches a cancelled withdrawal in any currency (the real node's checks are the
# processor's own and are not copied here).
REFUSED_MARK = "invalid"


def refusal(currency: Currency, address: str) -> str | None:
    """Why the chain would refuse a withdrawal of `currency` to `address`, as the processor's
    `error`; None when it would take it.

    Deliberately shallow (no checksums): "tb1qxyz" passes, as it would reach the node. Only
    the Ethereum text is documented; the others follow its "Invalid params: ..." form
    (UNCONFIRMED: what the processor says for those chains).
    """
    if currency.family == "eth":  # hex digits never spell the mark
        return None if _ETH_ADDRESS.match(address) else BAD_ETH_ADDRESS
    if _PLAIN_ADDRESS.match(address) and REFUSED_MARK not in address.lower():
        return None
    return f"Invalid params: invalid {currency.network} address."
