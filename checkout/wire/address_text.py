"""How blockchain addresses are written: Base58Check (Bitcoin's alphabet, and the XRP
Ledger's and CasinoCoin's reordered ones) and Bech32/Bech32m (BIP-173, BIP-350), decoded
strictly and encoded, with the bit regrouping both need.

Shared by the site, which checks the addresses customers give (address_codecs.py), and the
embedded sandbox processor, which hands out testnet addresses a wallet would accept.
Each decoder answers the payload or raises `CodecError` saying whether the text is not of
that shape ("format") or is of that shape with a wrong checksum ("checksum").

Written here rather than taken from a package: the PyPI `bech32` package predates Bech32m and
`base58` is a one-function dependency; each algorithm below is the reference one, a few lines
long, and the tests run the specifications' own vectors through it.
"""

from __future__ import annotations

import hashlib
from typing import Literal

Failure = Literal["format", "checksum"]

BITCOIN_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# The XRP Ledger's alphabet puts "r" first, so an account (version byte 0) starts with "r"
# (xrpl.org "base58 Encodings"); CasinoCoin, a fork, swaps "r" and "c" so its start with "c".
RIPPLE_ALPHABET = "rpshnaf39wBUDNEGHJKLM4PQRST7VWXYZ2bcdeCg65jkm8oFqi1tuvAxyz"
CASINOCOIN_ALPHABET = "cpshnaf39wBUDNEGHJKLM4PQRST7VWXYZ2brdeCg65jkm8oFqi1tuvAxyz"

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3  # BIP-350
Bech32Variant = Literal["bech32", "bech32m"]


class CodecError(ValueError):
    """Text that does not decode; `failure` says whether its shape or its checksum is wrong."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(detail)
        self.failure: Failure = failure


# ------------------------------------------------------------------------------ Base58Check


def base58check_decode(text: str, alphabet: str = BITCOIN_ALPHABET) -> bytes:
    """The payload (version byte(s) + body) of a Base58Check string, its 4-byte checksum
    (the first bytes of a double SHA-256) verified; en.bitcoin.it "Base58Check encoding"."""
    number = 0
    for char in text:
        digit = alphabet.find(char)
        if digit < 0:
            raise CodecError("format", f"{char!r} is not a base58 digit")
        number = number * 58 + digit
    # Each leading zero digit stands for one leading zero byte.
    zeros = len(text) - len(text.lstrip(alphabet[0]))
    raw = b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")
    if len(raw) < 5:
        raise CodecError("format", "too short for a payload and its checksum")
    payload, checksum = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        raise CodecError("checksum", "base58check checksum does not match")
    return payload


def base58check_encode(payload: bytes, alphabet: str = BITCOIN_ALPHABET) -> str:
    raw = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number = int.from_bytes(raw, "big")
    digits = ""
    while number:
        number, digit = divmod(number, 58)
        digits = alphabet[digit] + digits
    return alphabet[0] * (len(raw) - len(raw.lstrip(b"\0"))) + digits


# ---------------------------------------------------------------------- Bech32 and Bech32m


def _bech32_polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_decode(text: str, *, max_length: int | None = 90
                  ) -> tuple[str, list[int], Bech32Variant]:
    """(human-readable part, 5-bit data without the checksum, variant) of a Bech32 or
    Bech32m string (BIP-173 "Bech32", BIP-350 "Bech32m"). Cardano lifts the 90-character
    limit (CIP-19): `max_length=None`."""
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise CodecError("format", "bech32 is printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise CodecError("format", "bech32 is never of mixed case")
    if max_length is not None and len(text) > max_length:
        raise CodecError("format", "longer than bech32 allows")
    text = text.lower()
    hrp, separator, data_part = text.rpartition("1")
    if not separator or not hrp or len(data_part) < 6:
        raise CodecError("format", "no human-readable part, separator and checksum")
    if any(c not in BECH32_CHARSET for c in data_part):
        raise CodecError("format", "not a bech32 data character")
    data = [BECH32_CHARSET.index(c) for c in data_part]
    residue = _bech32_polymod(_hrp_expand(hrp) + data)
    if residue == _BECH32_CONST:
        return hrp, data[:-6], "bech32"
    if residue == _BECH32M_CONST:
        return hrp, data[:-6], "bech32m"
    raise CodecError("checksum", "bech32 checksum does not match")


def bech32_encode(hrp: str, data: list[int], variant: Bech32Variant) -> str:
    const = _BECH32_CONST if variant == "bech32" else _BECH32M_CONST
    polymod = _bech32_polymod(_hrp_expand(hrp) + data + [0] * 6) ^ const
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[d] for d in data + checksum)


def convert_bits(data: list[int] | bytes, from_bits: int, to_bits: int, *, pad: bool
                 ) -> list[int]:
    """Regroup bits (BIP-173's `convertbits`); without `pad`, left-over bits must be fewer
    than `from_bits` and all zero, or the text was not made by an encoder."""
    acc = bits = 0
    out: list[int] = []
    top = (1 << to_bits) - 1
    for value in data:
        if value >> from_bits:
            raise CodecError("format", "value out of range")
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & top)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & top)
    elif bits >= from_bits or (acc << (to_bits - bits)) & top:
        raise CodecError("format", "bad padding")
    return out
