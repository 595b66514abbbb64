"""Whether an address a customer gives for a refund can receive it, before anything is sent.

`check(currency, address, tag, testnet=...)` answers a `Destination` (the address as the chain
writes it, the tag as a number's canonical text; an XRP X-address split into the two) or a
`Refusal` with a stable `code` and a sentence for the customer. It decodes each chain's own
encoding and verifies its checksum, so a typing error is caught here rather than by a
withdrawal the processor cancels days later, and it tells a main-network address from a
test-network one wherever the encoding does (Bitcoin, Litecoin, Bitcoin Cash, Dogecoin,
Cardano, XRP X-addresses). Ethereum and BNB Smart Chain, TRON and the XRP Ledger (classic
addresses) write the same addresses on their test networks, and an Ethereum address is also
a BNB Smart Chain one: no check can tell those networks apart, which is what
`network_warning` is for, shown beside the field as the pay screen shows its own.

Whatever it is given (NUL, control or invisible characters, right-to-left overrides, letters
of another alphabet that look like Latin ones, 10 kB of text) it answers a Refusal, never an
exception. Only surrounding white space is forgiven: pasted addresses often carry it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from flask_babel import LazyString, gettext, lazy_gettext

from . import currencies
from .address_codecs import cashaddr_decode, eip55
from .currencies import Currency
from .wire.address_text import (
    BITCOIN_ALPHABET,
    CASINOCOIN_ALPHABET,
    RIPPLE_ALPHABET,
    CodecError,
    base58check_decode,
    base58check_encode,
    bech32_decode,
    convert_bits,
)

# Longer than any address of the chains below (a Cardano pointer address is about 110
# characters) and within what the processor's addresses are stored in.
ADDRESS_MAX = 128
TAG_MAX = 4294967295  # an XRP Ledger destination tag is an unsigned 32-bit number

EMPTY = "empty"
TOO_LONG = "too_long"
CHARACTERS = "characters"  # invisible, control, white space or non-ASCII characters
FORMAT = "format"  # not an address of this currency's network
CHECKSUM = "checksum"  # of the right shape, with a typing error
NETWORK = "network"  # a main-network address on the test network, or the reverse
TAG_FORMAT = "tag_format"
TAG_UNEXPECTED = "tag_unexpected"
TAG_CONFLICT = "tag_conflict"  # an X-address's own tag and another in the tag field
RETIRED = "retired"  # a network that no longer runs: nothing can be sent on it
UNKNOWN_CURRENCY = "currency"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a refund can go: the address and tag as the withdrawal names them."""

    currency: str
    address: str
    tag: str | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why not: `code` for programs and tests, `message` for the customer (translated when
    it is rendered, in the page's language)."""

    code: str
    message: LazyString


class _Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# An address is printable ASCII without spaces; anything else (NUL, a tab, a zero-width
# space, a right-to-left override, a Cyrillic "а") is refused before any decoding.
_PRINTABLE = re.compile(r"[\x21-\x7e]*")
_DIGITS = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class _Decoded:
    address: str
    testnet: bool | None  # None: the address is the same on both networks
    tag: str | None = None  # the tag an X-address carries


_Decoder = Callable[[str], _Decoded]


def check(currency_code: str, address: str, tag: str | None, *, testnet: bool
          ) -> Destination | Refusal:
    """The refund destination, or why it cannot be one. `testnet`: the page's money is
    test money (sandbox mode); a test-network currency code (TBTC) is always tested so."""
    info = currencies.get(currency_code)
    if info is None or info.code not in _DECODERS:
        return _refusal(UNKNOWN_CURRENCY, info, currency_code)
    try:
        if info.retired:
            raise _Refused(RETIRED)
        decoded = _DECODERS[info.code](_clean_address(address))
        wanted_testnet = testnet or info.testnet
        if decoded.testnet is not None and decoded.testnet != wanted_testnet:
            raise _Refused(NETWORK)
        return Destination(info.code, decoded.address, _tag_of(info, decoded, tag))
    except _Refused as refused:
        return _refusal(refused.code, info, currency_code, testnet=testnet or info.testnet)


def network_warning(currency_code: str) -> str:
    """The sentence to show beside the address field, as the pay screen warns of the
    network to send on: here, the network the refund is sent on."""
    info = currencies.get(currency_code)
    if info is None:
        return ""
    return gettext(
        "Give only an address for %(currency)s on the %(network)s network. A refund sent "
        "to an address on any other network is lost. Refund to an exchange? Copy the "
        "deposit address it shows for %(network)s: exchanges show another address for "
        "each network.",
        currency=info.ticker, network=gettext(info.network))


# ---------------------------------------------------------------------------- the input


def _clean_address(address: object) -> str:
    if not isinstance(address, str):
        raise _Refused(EMPTY)
    text = address.strip()
    if not text:
        raise _Refused(EMPTY)
    if len(text) > ADDRESS_MAX:
        raise _Refused(TOO_LONG)
    if not _PRINTABLE.fullmatch(text):
        raise _Refused(CHARACTERS)
    return text


def _clean_tag(info: Currency, tag: object) -> str | None:
    """A destination tag's canonical text ("007" is tag 7); an empty field is no tag. A
    tag is optional: a customer's own wallet has none, an exchange's deposit address
    does, and the field's label says so."""
    if tag is None:
        return None
    if not isinstance(tag, str):
        raise _Refused(TAG_FORMAT)
    text = tag.strip()
    if not text:
        return None
    if not info.needs_tag:
        raise _Refused(TAG_UNEXPECTED)
    if not _DIGITS.fullmatch(text) or int(text) > TAG_MAX:
        raise _Refused(TAG_FORMAT)
    return str(int(text))


def _tag_of(info: Currency, decoded: _Decoded, field: object) -> str | None:
    tag = _clean_tag(info, field)
    if decoded.tag is None or tag == decoded.tag:
        return tag
    if tag is None:
        return decoded.tag
    raise _Refused(TAG_CONFLICT)


# ------------------------------------------------------------------------ chain by chain


def _decode(decoder: Callable[[], _Decoded]) -> _Decoded:
    try:
        return decoder()
    except CodecError as error:
        raise _Refused(CHECKSUM if error.failure == "checksum" else FORMAT) from None


def _base58check(text: str, alphabet: str) -> bytes:
    try:
        return base58check_decode(text, alphabet)
    except CodecError as error:
        raise _Refused(CHECKSUM if error.failure == "checksum" else FORMAT) from None


@dataclass(frozen=True)
class _Bitcoinish:
    """A chain of Bitcoin's family: Base58Check version bytes and segwit prefixes for each
    network (Bitcoin Core's chainparams.cpp and Litecoin's and Dogecoin's)."""

    main_versions: frozenset[int]
    test_versions: frozenset[int]
    # What the versions' addresses start with: another coin's address is then a wrong
    # shape ("format"), not a typing error.
    leading: str
    main_hrp: str | None = None
    test_hrps: frozenset[str] = frozenset()

    def __call__(self, text: str) -> _Decoded:
        return _decode(lambda: self._decoded(text))

    def _decoded(self, text: str) -> _Decoded:
        if self._looks_segwit(text):
            return self._segwit(text)
        if not _base58_shaped(text, self.leading):
            raise CodecError("format", "another chain's address")
        payload = base58check_decode(text)
        if len(payload) != 21:
            raise CodecError("format", "not a 20-byte hash and its version")
        if payload[0] in self.main_versions:
            return _Decoded(text, testnet=False)
        if payload[0] in self.test_versions:
            return _Decoded(text, testnet=True)
        raise CodecError("format", "another chain's version byte")

    def _looks_segwit(self, text: str) -> bool:
        # One case only: a mixed-case text that starts so ("Ltc1...") is a Base58 one.
        lowered = text.lower()
        hrps = self.test_hrps | ({self.main_hrp} if self.main_hrp else set())
        return (text in (lowered, text.upper())
                and any(lowered.startswith(hrp + "1") for hrp in hrps))

    def _segwit(self, text: str) -> _Decoded:
        hrp, data, variant = bech32_decode(text)
        if not data:
            raise CodecError("format", "no witness version")
        version, program = data[0], bytes(convert_bits(data[1:], 5, 8, pad=False))
        # Version 0 (BIP-141: 20 or 32 bytes) in Bech32 and version 1, Taproot (BIP-341:
        # 32 bytes), in Bech32m are the outputs wallets make and processors send to. Later
        # versions are valid encodings, but "no recipient should ever provide them"
        # (BIP-350): until a soft fork defines one, coins sent there can be taken by anyone.
        if version == 0 and variant == "bech32" and len(program) in (20, 32):
            return _Decoded(text.lower(), testnet=hrp != self.main_hrp)
        if version == 1 and variant == "bech32m" and len(program) == 32:
            return _Decoded(text.lower(), testnet=hrp != self.main_hrp)
        raise CodecError("format", "a witness program no wallet receives on")


def _base58_shaped(text: str, leading: str) -> bool:
    """Base58Check of a version byte and a 20-byte hash is 25 to 35 characters long."""
    return 25 <= len(text) <= 35 and text[0] in leading


_BTC = _Bitcoinish(frozenset({0x00, 0x05}), frozenset({0x6F, 0xC4}), "13mn2",
                   "bc", frozenset({"tb", "bcrt"}))
# Litecoin: L (0x30) and M (0x32), and 3 (0x05) for P2SH addresses made before M existed.
_LTC = _Bitcoinish(frozenset({0x30, 0x32, 0x05}), frozenset({0x6F, 0x3A, 0xC4}), "LM3mnQ2",
                   "ltc", frozenset({"tltc", "rltc"}))
_DOGE = _Bitcoinish(frozenset({0x1E, 0x16}), frozenset({0x71, 0xC4}), "DA9n2")
_BCH_LEGACY = _Bitcoinish(frozenset({0x00, 0x05}), frozenset({0x6F, 0xC4}), "13mn2")

_BCH_MAIN = "bitcoincash"
_BCH_TEST = ("bchtest", "bchreg")
# CashAddr version bytes of 20-byte hashes: P2PKH (q...) and P2SH (p...).
_BCH_VERSIONS = (0x00, 0x08)


def _bch(text: str) -> _Decoded:
    """A CashAddr, with or without its prefix (wallets show both), or a legacy address.
    Without the prefix the checksum still names the network: it covers the prefix."""
    prefix, colon, body = text.lower().rpartition(":")
    if colon:
        if prefix != _BCH_MAIN and prefix not in _BCH_TEST:
            raise _Refused(FORMAT)
        return _decode(lambda: _cashaddr(prefix, body))
    if text[:1] in ("q", "p", "Q", "P") and len(text) == 42:
        # Tried with each network's prefix: a typo fails them all and is a checksum error.
        for candidate in (_BCH_MAIN, *_BCH_TEST):
            try:
                return _cashaddr(candidate, text)
            except CodecError as error:
                if error.failure != "checksum":
                    raise _Refused(FORMAT) from None
        raise _Refused(CHECKSUM)
    return _BCH_LEGACY(text)


def _cashaddr(prefix: str, body: str) -> _Decoded:
    version, hash_ = cashaddr_decode(prefix, body)
    if version not in _BCH_VERSIONS or len(hash_) != 20:
        raise CodecError("format", "not a P2PKH or P2SH cash address")
    return _Decoded(f"{prefix}:{body.lower()}", testnet=prefix != _BCH_MAIN)


_HEX40 = re.compile(r"0x[0-9a-fA-F]{40}")


def _evm(text: str) -> _Decoded:
    """Ethereum and BNB Smart Chain: 0x and 40 hex digits. Mixed case carries an EIP-55
    checksum and is verified; one case only carries none (exchanges often show lower
    case). Answered in the checksummed spelling wallets show."""
    if not _HEX40.fullmatch(text):
        raise _Refused(FORMAT)
    digits = text[2:]
    checksummed = eip55(digits)
    if digits not in (digits.lower(), digits.upper()) and text != checksummed:
        raise _Refused(CHECKSUM)
    return _Decoded(checksummed, testnet=None)


def _tron(text: str) -> _Decoded:
    """TRON: Base58Check of 0x41 and a 20-byte account ("T..."), the same on its test
    networks (developers.tron.network "Account": address format)."""
    if not _base58_shaped(text, "T"):
        raise _Refused(FORMAT)
    payload = _base58check(text, BITCOIN_ALPHABET)
    if len(payload) != 21 or payload[0] != 0x41:
        raise _Refused(FORMAT)
    return _Decoded(text, testnet=None)


def _ledger(alphabet: str, *, x_addresses: bool = False) -> _Decoder:
    """The XRP Ledger and CasinoCoin: a classic address is Base58Check of version 0 and a
    20-byte account ID in the chain's own alphabet (xrpl.org "Addresses")."""
    def decoder(text: str) -> _Decoded:
        if x_addresses and len(text) == _X_ADDRESS_LENGTH and text[0] in "XT":
            return _x_address(text)
        if not _base58_shaped(text, alphabet[0]):
            raise _Refused(FORMAT)
        payload = _base58check(text, alphabet)
        if len(payload) != 21 or payload[0] != 0x00:
            raise _Refused(FORMAT)
        return _Decoded(text, testnet=None)
    return decoder


# An X-address (XLS-5d) folds the destination tag into the address, and says the network:
# Base58Check of a 2-byte network prefix, the 20-byte account ID, a flag (1: a tag follows)
# and the tag as 8 little-endian bytes, of which a 32-bit tag fills the first four.
_X_ADDRESS_LENGTH = 47
_X_MAIN, _X_TEST = b"\x05\x44", b"\x04\x93"


def _x_address(text: str) -> _Decoded:
    """An X-address, answered as the classic address and its tag, which a withdrawal names
    in fields of their own."""
    payload = _base58check(text, RIPPLE_ALPHABET)
    if len(payload) != 31 or payload[:2] not in (_X_MAIN, _X_TEST):
        raise _Refused(FORMAT)
    account, flag, tag = payload[2:22], payload[22], int.from_bytes(payload[23:], "little")
    if flag not in (0, 1) or tag > TAG_MAX or (flag == 0 and tag):
        raise _Refused(FORMAT)
    return _Decoded(base58check_encode(b"\0" + account, RIPPLE_ALPHABET),
                    testnet=payload[:2] == _X_TEST, tag=str(tag) if flag else None)


def _cardano(text: str) -> _Decoded:
    """A Shelley payment address (CIP-19): Bech32 without the length limit, "addr" on the
    main network and "addr_test" on the test ones, whose header byte repeats the network
    (1 main, 0 test). Stake (reward) addresses cannot receive a payment; Byron-era
    addresses (Ae2..., DdzFF...) are refused: wallets have not made them since 2020."""
    def decoded() -> _Decoded:
        hrp, data, variant = bech32_decode(text, max_length=None)
        raw = bytes(convert_bits(data, 5, 8, pad=False))
        if variant != "bech32" or hrp not in ("addr", "addr_test") or not raw:
            raise CodecError("format", "not a Shelley payment address")
        kind, network = raw[0] >> 4, raw[0] & 0x0F
        if kind > 7 or not _cardano_length_ok(kind, len(raw)):
            raise CodecError("format", "not a payment address")
        if (network == 1) != (hrp == "addr"):
            raise CodecError("format", "the header's network is not the prefix's")
        return _Decoded(text.lower(), testnet=hrp == "addr_test")
    return _decode(decoded)


def _cardano_length_ok(kind: int, length: int) -> bool:
    # Header + 28-byte payment hash, + 28-byte stake hash (0-3), + a pointer of three
    # variable-length numbers (4-5), + nothing (6-7).
    if kind <= 3:
        return length == 57
    if kind <= 5:
        return 32 <= length <= 29 + 3 * 10
    return length == 29


def _retired(text: str) -> _Decoded:
    raise _Refused(RETIRED)


_EVM_CODES = ("ETH", "TETH", "USDTE", "USDC", "DAI", "BRZ", "CPD", "EURS", "VERSE", "WBTC",
              "XED", "USDTB", "SNACK", "BNB-BSC")
_DECODERS: dict[str, _Decoder] = {
    "BTC": _BTC, "TBTC": _BTC, "LTC": _LTC, "TLTC": _LTC, "DOGE": _DOGE, "BCH": _bch,
    **dict.fromkeys(_EVM_CODES, _evm),
    "TRX": _tron, "USDTT": _tron,
    "XRP": _ledger(RIPPLE_ALPHABET, x_addresses=True), "CSC": _ledger(CASINOCOIN_ALPHABET),
    "ADA": _cardano, "BNB": _retired,
}


# --------------------------------------------------------------------- what the customer reads


def _main_network(info: Currency) -> str:
    """The network's name without "testnet": the sandbox aliases (TBTC) name the coin's."""
    main = currencies.get(info.ticker) if info.testnet else info
    return (main or info).network


def _refusal(code: str, info: Currency | None, currency_code: str, *,
             testnet: bool = False) -> Refusal:
    if info is None:
        return Refusal(code, lazy_gettext(
            "Refunds in %(currency)s cannot be sent from this page: please contact the shop.",
            currency=str(currency_code)[:16]))
    network = lazy_gettext(_main_network(info) if code == NETWORK else info.network)
    message: LazyString
    if code == EMPTY:
        message = lazy_gettext("Enter the address of your wallet that is to receive the "
                               "refund.")
    elif code == TOO_LONG:
        message = lazy_gettext("This is too long for an address on the %(network)s "
                               "network: copy only the address from your wallet's Receive "
                               "screen.",
                               network=network)
    elif code == CHARACTERS:
        message = lazy_gettext("The address contains something an address on the "
                               "%(network)s network never has (a space, a hidden character "
                               "or a letter of another alphabet): copy it again from your "
                               "wallet's Receive screen.", network=network)
    elif code == CHECKSUM:
        message = lazy_gettext("This address has a typing error (its check characters do "
                               "not match): copy it from your wallet's Receive screen "
                               "instead of typing it.")
    elif code == NETWORK and testnet:
        message = lazy_gettext("This is an address on the main %(network)s network, but "
                               "this payment was made on a test network: give an address "
                               "of your test network wallet.", network=network)
    elif code == NETWORK:
        message = lazy_gettext("This is a test network address: give an address on the "
                               "main %(network)s network.", network=network)
    elif code == TAG_FORMAT:
        message = lazy_gettext("A destination tag is a whole number from 0 to 4294967295, "
                               "digits only: copy it from where your address is shown.")
    elif code == TAG_CONFLICT:
        message = lazy_gettext("This address already contains a destination tag, and it is "
                               "not the one in the tag field: leave the tag field empty or "
                               "give the address without a tag.")
    elif code == TAG_UNEXPECTED:
        message = lazy_gettext("Addresses on the %(network)s network have no tag or "
                               "memo: leave that field empty.", network=network)
    elif code == RETIRED:
        message = lazy_gettext("The %(network)s network has shut down: no refund can be "
                               "sent on it. Please contact the shop.", network=network)
    elif code == UNKNOWN_CURRENCY:
        message = lazy_gettext("Refunds in %(currency)s cannot be sent from this page: "
                               "please contact the shop.", currency=info.ticker)
    else:
        message = lazy_gettext("This is not an address on the %(network)s network: please "
                               "check it in your wallet's Receive screen.", network=network)
    return Refusal(code, message)
