"""The address encodings only the site reads (the sandbox writes none of them): CashAddr
(Bitcoin Cash) and Ethereum's mixed-case checksum (EIP-55). Base58Check and Bech32, which the
sandbox writes too, are in wire/address_text.py. A decoder raises `CodecError` saying whether
the text is not of that shape ("format") or is of that shape with a wrong checksum
("checksum", a typing error): a customer told the second knows to copy the address rather
than retype it.

The one hash that is not in the standard library (Keccak-256, which is not hashlib's
SHA3-256) comes from pycryptodome.
"""

from __future__ import annotations

from Crypto.Hash import keccak

from .wire.address_text import BECH32_CHARSET, CodecError, convert_bits

# --------------------------------------------------------------------------------- CashAddr


def _cashaddr_polymod(values: list[int]) -> int:
    generator = (0x98F2BC8E61, 0x79B76D99E2, 0xF33E5FB3C4, 0xAE2EABE2A8, 0x1E4F43E470)
    chk = 1
    for value in values:
        top = chk >> 35
        chk = ((chk & 0x07FFFFFFFF) << 5) ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    return chk ^ 1


def cashaddr_decode(prefix: str, text: str) -> tuple[int, bytes]:
    """(version byte, hash) of the part after "prefix:" of a Bitcoin Cash address; the
    checksum covers the prefix, so the same text under another prefix fails it
    (bitcoincash.org spec/cashaddr.md)."""
    if text.lower() != text and text.upper() != text:
        raise CodecError("format", "cashaddr is never of mixed case")
    text = text.lower()
    if len(text) < 9 or any(c not in BECH32_CHARSET for c in text):
        raise CodecError("format", "not a cashaddr payload")
    data = [BECH32_CHARSET.index(c) for c in text]
    if _cashaddr_polymod([ord(c) & 31 for c in prefix] + [0] + data) != 0:
        raise CodecError("checksum", "cashaddr checksum does not match")
    payload = bytes(convert_bits(data[:-8], 5, 8, pad=False))
    if not payload:
        raise CodecError("format", "empty cashaddr payload")
    return payload[0], payload[1:]


def cashaddr_encode(prefix: str, version: int, body: bytes) -> str:
    data = convert_bits(bytes([version]) + body, 8, 5, pad=True)
    polymod = _cashaddr_polymod([ord(c) & 31 for c in prefix] + [0] + data + [0] * 8)
    checksum = [(polymod >> 5 * (7 - i)) & 31 for i in range(8)]
    return prefix + ":" + "".join(BECH32_CHARSET[d] for d in data + checksum)


# ------------------------------------------------------------------------- EIP-55 (Ethereum)


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def eip55(hex40: str) -> str:
    """The checksummed spelling of a 40-hex-digit address: a letter is upper case where the
    matching nibble of keccak256(lower-case hex) is 8 or more (EIP-55)."""
    lowered = hex40.lower()
    digest = keccak256(lowered.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c
                          for i, c in enumerate(lowered))
