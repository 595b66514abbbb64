"""A refund address is accepted only when its chain could receive on it, on the page's network.

Valid addresses are published ones: the BIP-173/BIP-350 vectors, the CashAddr specification's,
EIP-55's, CIP-19's (Cardano), Litecoin Core's key_io vectors, well-known XRP Ledger and TRON
accounts, and the addresses the embedded sandbox hands out (what a tester pays from and is
refunded to).
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask_babel import Babel, force_locale
from hypothesis import given, settings
from hypothesis import strategies as st

from checkout import currencies, i18n
from checkout.address_codecs import eip55
from checkout.payout_addresses import (
    ADDRESS_MAX,
    Destination,
    Refusal,
    check,
    network_warning,
)
from checkout.sandbox import addresses as sandbox_addresses
from checkout.sandbox import currencies as sandbox_currencies
from checkout.wire.address_text import (
    BECH32_CHARSET,
    BITCOIN_ALPHABET,
    RIPPLE_ALPHABET,
    bech32_decode,
    bech32_encode,
)

EIP55_MIXED = (  # EIP-55's "Test cases"
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
)
EIP55_ONE_CASE = (
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
)
# BIP-350 "Test vectors for v0-v16 native segregated witness addresses" that wallets
# receive on: version 0 (20 and 32 bytes) and version 1 (Taproot, 32 bytes).
SEGWIT_MAIN = (
    "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
)
SEGWIT_TEST = (
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
    "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
    "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
)
BASE58_BTC_MAIN = (
    "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",  # the genesis block's
    "1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu",  # CashAddr spec: legacy form of its P2PKH vector
    "3CWFddi6m4ndiGyKqzYvsFYagqDLPVMTzC",  # ... and of its P2SH vector
)
BASE58_BTC_TEST = ("2MwToDP2jFAwQxFuUSFzTH9FM8kMDWQCpRt",)  # a sandbox address (api notes)
LTC_MAIN = ("LT2KVaAy1ppRuxRgrS5RNU3vBsy7RibPeA", "MHrYRxAiMNBTku3eoDHwhA1LQGDjUStZW2",
            "LbfVMz974gbbGFqXF7FZUpSBWSbwBHDwR5")  # Litecoin Core key_io_valid.json
LTC_TEST = ("mwXn5Vhicdav8Av3KMokx4YNuHoGRKxtWs", "QXaUgLHkZcbJb2j5XgMYzY8cF9YM48Y81Z")
CASHADDR_MAIN = (  # CashAddr specification, "Examples of address translation" and vectors
    "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a",
    "bitcoincash:ppm2qsznhks23z7629mms6s4cwef74vcwvn0h829pq",
    "bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2",
)
CASHADDR_TEST = ("bchtest:pr6m7j9njldwwzlg9v7v53unlr4jkmx6eyvwc0uz5t",)
TRON = (
    "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",  # the USDT contract, on every TRON explorer
    "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7",  # TRON's documentation example
)
XRP = (
    "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh",  # the genesis account
    "rPT1Sjq2YGrBMTttX4GZHjKu9dyfzbpAYe",  # xrpl.org's example address
)
CSC = ("cHb9CJAWyB4cj91VRWn96DkukG4bwdtyTh",)  # the same account in CasinoCoin's alphabet
CARDANO_MAIN = (  # CIP-19 test vectors, types 0, 4, 6 and 7
    "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7drv2"
    "xwl2wywfgse35a3x",
    "addr1gx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer5pnz75xxcrzqf96k",
    "addr1vx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzers66hrl8",
    "addr1w8phkx6acpnf78fuvxn0mkew3l0fd058hzquvz7w36x4gtcyjy7wx",
)
CARDANO_TEST = (
    "addr_test1qz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7"
    "drv2xwl2wywfgs68faae",
    "addr_test1vz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzerspjrlsz",
)
DOGE_MAIN = ("DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L",)  # the Dogecoin Foundation's donations

# (currency, address, testnet) a customer may give.
VALID: list[tuple[str, str, bool]] = [
    *[("BTC", a, False) for a in SEGWIT_MAIN + BASE58_BTC_MAIN],
    *[("BTC", a, True) for a in SEGWIT_TEST + BASE58_BTC_TEST],
    *[("TBTC", a, False) for a in SEGWIT_TEST],
    *[("LTC", a, False) for a in LTC_MAIN],
    *[("LTC", a, True) for a in LTC_TEST],
    *[("BCH", a, False) for a in CASHADDR_MAIN + BASE58_BTC_MAIN],
    *[("BCH", a, True) for a in CASHADDR_TEST],
    *[("DOGE", a, False) for a in DOGE_MAIN],
    *[(code, a, testnet) for code in ("ETH", "USDTE", "USDC", "USDTB", "BNB-BSC", "TETH")
      for a in EIP55_MIXED + EIP55_ONE_CASE for testnet in (False, True)],
    *[(code, a, testnet) for code in ("TRX", "USDTT") for a in TRON
      for testnet in (False, True)],
    *[("XRP", a, testnet) for a in XRP for testnet in (False, True)],
    *[("CSC", a, False) for a in CSC],
    *[("ADA", a, False) for a in CARDANO_MAIN],
    *[("ADA", a, True) for a in CARDANO_TEST],
]


def as_refusal(result: Destination | Refusal) -> Refusal:
    assert isinstance(result, Refusal), f"accepted: {result}"
    return result


def refused(result: Destination | Refusal) -> str:
    return as_refusal(result).code


def accepted(result: Destination | Refusal) -> Destination:
    assert isinstance(result, Destination), f"refused: {result.code} {result.message}"
    return result


@pytest.mark.parametrize(("code", "address", "testnet"), VALID)
def test_published_addresses_are_accepted(code: str, address: str, testnet: bool) -> None:
    destination = accepted(check(code, address, None, testnet=testnet))
    assert destination.currency == code
    assert destination.tag is None
    # What the chain writes is a fixed point: checking it again changes nothing.
    assert check(code, destination.address, None, testnet=testnet) == destination


def test_every_currency_of_the_site_is_answered() -> None:
    for code in currencies.CURRENCIES:
        result = check(code, "x", None, testnet=False)
        assert isinstance(result, Refusal)
        assert result.code in ("format", "checksum", "retired")


# ------------------------------------------------------------------------ normalisation


def test_bech32_is_answered_in_lower_case() -> None:
    upper = SEGWIT_MAIN[0]
    assert accepted(check("BTC", upper, None, testnet=False)).address == upper.lower()


def test_a_cash_address_is_answered_with_its_network_prefix() -> None:
    full = CASHADDR_MAIN[0]
    bare = full.split(":")[1]
    for given_as in (bare, bare.upper(), full.upper()):
        assert accepted(check("BCH", given_as, None, testnet=False)).address == full


@pytest.mark.parametrize("address", EIP55_MIXED)
def test_an_ethereum_address_is_answered_in_its_eip55_spelling(address: str) -> None:
    for given_as in (address.lower(), "0x" + address[2:].upper(), address):
        assert accepted(check("USDTE", given_as, None, testnet=False)).address == address


def test_surrounding_white_space_of_a_paste_is_dropped() -> None:
    address = XRP[0]
    for pasted in (f"  {address}\n", f"\t{address}\u00a0", f"\u3000{address} "):
        assert accepted(check("XRP", pasted, None, testnet=False)).address == address


# ---------------------------------------------------------------------------- networks


@pytest.mark.parametrize(("code", "address"), [
    ("BTC", SEGWIT_MAIN[0]), ("BTC", BASE58_BTC_MAIN[0]), ("TBTC", SEGWIT_MAIN[1]),
    ("LTC", LTC_MAIN[0]), ("BCH", CASHADDR_MAIN[0]),
    ("BCH", CASHADDR_MAIN[0].split(":")[1]), ("ADA", CARDANO_MAIN[0]),
])
def test_a_main_network_address_is_refused_on_the_test_network(code: str, address: str
                                                                ) -> None:
    result = check(code, address, None, testnet=True)
    assert refused(result) == "network"
    assert "main" in str(as_refusal(result).message)


@pytest.mark.parametrize(("code", "address"), [
    ("BTC", SEGWIT_TEST[0]), ("BTC", BASE58_BTC_TEST[0]), ("LTC", LTC_TEST[1]),
    ("BCH", CASHADDR_TEST[0]), ("ADA", CARDANO_TEST[1]),
])
def test_a_test_network_address_is_refused_on_the_main_network(code: str, address: str
                                                                ) -> None:
    result = check(code, address, None, testnet=False)
    assert refused(result) == "network"
    assert "test network" in str(as_refusal(result).message)


def test_the_network_refusal_names_the_network() -> None:
    result = check("LTC", LTC_TEST[0], None, testnet=False)
    assert "Litecoin" in str(as_refusal(result).message)


@pytest.mark.parametrize(("code", "address"), [
    ("BTC", LTC_MAIN[0]), ("LTC", BASE58_BTC_MAIN[0]), ("DOGE", BASE58_BTC_MAIN[0]),
    ("ETH", TRON[0]), ("USDTT", EIP55_MIXED[0]), ("TRX", XRP[0]), ("XRP", TRON[0]),
    ("XRP", CSC[0]), ("CSC", XRP[0]), ("ADA", SEGWIT_MAIN[1]), ("BTC", CASHADDR_MAIN[0]),
    ("BCH", SEGWIT_MAIN[0]), ("ETH", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
    ("ETH", EIP55_MIXED[0] + "00"), ("ETH", "0X5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED"),
    # Cardano stake (reward) addresses (CIP-19 types 14, 15) receive no payment.
    ("ADA", "stake1uyehkck0lajq8gr28t9uxnuvgcqrc6070x3k9r8048z8y5gh6ffgw"),
    # CasinoCoin has no X-addresses.
    ("CSC", "XV5sbjUmgPpvXv4ixFWZ5ptAYZ6PD28Sq49uo34VyjnmK5H"),
])
def test_another_chains_address_is_refused_as_format(code: str, address: str) -> None:
    assert refused(check(code, address, None, testnet=False)) == "format"


@pytest.mark.parametrize("address", [
    # BIP-350 valid encodings no wallet receives on: a 40-byte v1 program, v16, v2.
    "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
    "BC1SW50QGDZ25J", "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs",
    # BIP-350 invalid addresses whose reason is their shape, not a typo.
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",
    "bc1pw5dgrnzv", "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "bc1gmk9yu",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",
    # Bech32 where Bech32m belongs, and the reverse (BIP-350).
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
])
def test_segwit_outputs_no_wallet_receives_on_are_refused(address: str) -> None:
    assert refused(check("BTC", address, None, testnet=False)) == "format"


def test_bip350_mixed_case_and_bad_padding_are_refused_on_the_test_network() -> None:
    for address in ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",
                    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",
                    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf"):
        assert refused(check("BTC", address, None, testnet=True)) in ("format", "checksum")


# ---------------------------------------------------------------------------- typos


@pytest.mark.parametrize(("code", "address"), [
    ("ETH", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),  # one letter's case
    ("BTC", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj2"),
    ("BTC", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"),
    ("TRX", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6u"),
    ("XRP", "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTi"),
    ("BCH", "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6c"),
    ("BCH", "qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6c"),
    ("ADA", "addr1vx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzers66hrl9"),
])
def test_a_typing_error_is_a_checksum_refusal(code: str, address: str) -> None:
    assert refused(check(code, address, None, testnet=False)) == "checksum"


def _one_changed(address: str, alphabet: str, start: int, data: st.DataObject) -> str:
    position = data.draw(st.integers(start, len(address) - 1), label="position")
    original = address[position]
    replacement = data.draw(st.sampled_from([c for c in alphabet if c != original]),
                            label="replacement")
    return address[:position] + replacement + address[position + 1:]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_base58check_with_one_character_changed_is_refused(data: st.DataObject) -> None:
    code, address, alphabet = data.draw(st.sampled_from(
        [("BTC", a, BITCOIN_ALPHABET) for a in BASE58_BTC_MAIN]
        + [("LTC", a, BITCOIN_ALPHABET) for a in LTC_MAIN]
        + [("TRX", a, BITCOIN_ALPHABET) for a in TRON]
        + [("XRP", a, RIPPLE_ALPHABET) for a in XRP]))
    # The first character says which coin (and network) it is: changed, the text may be
    # another coin's shape, refused as "format"; tested apart.
    changed = _one_changed(address, alphabet, 1, data)
    assert refused(check(code, changed, None, testnet=False)) == "checksum"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_bech32_with_one_data_character_changed_is_refused(data: st.DataObject) -> None:
    code, address = data.draw(st.sampled_from(
        [("BTC", a.lower()) for a in SEGWIT_MAIN] + [("ADA", a) for a in CARDANO_MAIN]))
    changed = _one_changed(address, BECH32_CHARSET, address.index("1") + 1, data)
    assert refused(check(code, changed, None, testnet=False)) == "checksum"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_eip55_with_one_character_changed_is_refused(data: st.DataObject) -> None:
    address = data.draw(st.sampled_from(EIP55_MIXED))
    changed = _one_changed(address, "0123456789abcdefABCDEF", 2, data)
    assert refused(check("ETH", changed, None, testnet=False)) == "checksum"


# ---------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(("address", "code"), [
    ("", "empty"), ("   \n\t ", "empty"),
    ("r" * 10_000, "too_long"), ("\u202e" * 10_000, "too_long"),
    (XRP[0][:10] + "\0" + XRP[0][10:], "characters"),
    (XRP[0][:10] + "\x1b" + XRP[0][10:], "characters"),
    (XRP[0][:10] + " " + XRP[0][10:], "characters"),
    (XRP[0][:10] + "\u200b" + XRP[0][10:], "characters"),  # zero-width space
    ("\u202e" + XRP[0], "characters"),  # right-to-left override
    (XRP[0] + "\ufeff", "characters"),  # byte order mark, not white space
    (XRP[0].replace("a", "\u0430", 1) if "a" in XRP[0] else "r\u0430" + XRP[0][2:],
     "characters"),  # a Cyrillic а where a Latin a looks the same
    (XRP[0].replace("B", "\u0412", 1), "characters"),  # Cyrillic В
    ("rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh?dt=1", "format"),
    ("<script>alert(1)</script>", "format"),
])
def test_hostile_addresses_are_refused_with_their_reason(address: str, code: str) -> None:
    assert refused(check("XRP", address, None, testnet=False)) == code


def test_a_base58_homoglyph_is_refused() -> None:
    # A Cyrillic "а" in a Bitcoin base58 address.
    address = BASE58_BTC_MAIN[1].replace("a", "\u0430")
    assert address != BASE58_BTC_MAIN[1]
    assert refused(check("BTC", address, None, testnet=False)) == "characters"


def test_base58_has_no_zero_and_capital_o() -> None:
    assert refused(check("BTC", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfN0", None,
                         testnet=False)) == "format"


def test_the_longest_address_fits_the_bound() -> None:
    assert max(len(a) for _, a, _ in VALID) <= ADDRESS_MAX


@settings(max_examples=400, deadline=None)
@given(code=st.sampled_from(sorted(currencies.CURRENCIES) + ["NOPE", ""]),
       address=st.text(max_size=300), tag=st.none() | st.text(max_size=40),
       testnet=st.booleans())
def test_any_input_is_answered_never_raised(code: str, address: str, tag: str | None,
                                            testnet: bool) -> None:
    result = check(code, address, tag, testnet=testnet)
    if isinstance(result, Refusal):
        assert result.code and str(result.message)
    else:
        assert result.address and result.address.isascii() and result.address.isprintable()


# ---------------------------------------------------------------------------- tags


@pytest.mark.parametrize(("tag", "stored"), [
    (None, None), ("", None), ("  ", None), ("0", "0"), ("123456", "123456"),
    (" 42 ", "42"), ("007", "7"), ("4294967295", "4294967295"),
])
def test_a_destination_tag_is_a_32_bit_number(tag: str | None, stored: str | None) -> None:
    for code, address in (("XRP", XRP[0]), ("CSC", CSC[0])):
        assert accepted(check(code, address, tag, testnet=False)).tag == stored


@pytest.mark.parametrize("tag", [
    "4294967296", "99999999999", "1" * 10_000, "-1", "+1", "1.0", "1e3", "12 34", "0x10",
    "abc", "\u0661\u0662", "１２", "1\0", "\u202e12",
])
def test_a_tag_that_is_no_number_is_refused(tag: str) -> None:
    assert refused(check("XRP", XRP[0], tag, testnet=False)) == "tag_format"


@pytest.mark.parametrize(("code", "address"), [
    ("BTC", SEGWIT_MAIN[0]), ("ETH", EIP55_MIXED[0]), ("USDTT", TRON[0]),
    ("ADA", CARDANO_MAIN[0]),
])
def test_a_tag_on_a_coin_without_tags_is_refused(code: str, address: str) -> None:
    assert refused(check(code, address, "12345", testnet=False)) == "tag_unexpected"
    assert accepted(check(code, address, "", testnet=False)).tag is None


# ripple-address-codec's test cases and xrpl.org's X-address example (XLS-5d): an X-address
# holds the classic address, the tag and the network.
X_ADDRESSES = [
    ("XV5sbjUmgPpvXv4ixFWZ5ptAYZ6PD28Sq49uo34VyjnmK5H", False,
     "rPEPPER7kfTD9w2To4CQk6UCfuHM9c6GDY", "12345"),
    ("XVLhHMPHU98es4dbozjVtdWzVrDjtV18pX8yuPT7y4xaEHi", False,
     "rGWrZyQqhTp9Xu7G5Pkayo7bXjH4k4QYpf", "4294967295"),
    ("X7AcgcsBL6XDcUb289X4mJ8djcdyKaB5hJDWMArnXr61cqZ", False,
     "r9cZA1mLK5R5Am25ArfXFmqgNwjZgnfk59", None),
    ("X7AcgcsBL6XDcUb289X4mJ8djcdyKaGZMhc9YTE92ehJ2Fu", False,
     "r9cZA1mLK5R5Am25ArfXFmqgNwjZgnfk59", "1"),
    ("T719a5UwUCnEs54UsxG9CJYYDhwmFCqkr7wxCcNcfZ6p5GZ", True,
     "r9cZA1mLK5R5Am25ArfXFmqgNwjZgnfk59", None),
    ("T719a5UwUCnEs54UsxG9CJYYDhwmFCvbJNZbi37gBGkRkbE", True,
     "r9cZA1mLK5R5Am25ArfXFmqgNwjZgnfk59", "1"),
]


@pytest.mark.parametrize(("x_address", "testnet", "classic", "tag"), X_ADDRESSES)
def test_an_x_address_is_answered_as_classic_address_and_tag(
        x_address: str, testnet: bool, classic: str, tag: str | None) -> None:
    for field in (None, "", tag):
        destination = accepted(check("XRP", x_address, field, testnet=testnet))
        assert (destination.address, destination.tag) == (classic, tag)
    assert refused(check("XRP", x_address, None, testnet=not testnet)) == "network"


def test_an_x_address_with_another_tag_in_the_field_is_refused() -> None:
    x_address = X_ADDRESSES[0][0]
    assert refused(check("XRP", x_address, "12346", testnet=False)) == "tag_conflict"
    # One character changed: a typing error, as in a classic address.
    assert refused(check("XRP", x_address.replace("5pt", "5pf"), None,
                         testnet=False)) == "checksum"


def test_the_retired_beacon_chain_takes_no_refund() -> None:
    result = check("BNB", "bnb1grpf0955h0ykzq3ar5nmum7y6gdfl6lxfn46h2", "123",
                   testnet=False)
    assert refused(result) == "retired"
    assert "BNB Beacon Chain" in str(as_refusal(result).message)


def test_an_unknown_currency_is_refused() -> None:
    assert refused(check("NOPE", XRP[0], None, testnet=False)) == "currency"


# ----------------------------------------------------------------- the sandbox's addresses


@pytest.mark.parametrize("code", ["BTC", "LTC", "BCH", "DOGE", "ETH", "USDTE", "USDTT",
                                  "USDC", "XRP", "TRX"])
def test_addresses_the_sandbox_hands_out_are_test_network_ones(code: str) -> None:
    info = sandbox_currencies.get(code)
    assert info is not None
    for number in (1, 2, 977):
        address, tag = sandbox_addresses.derive(info, number)
        destination = accepted(check(code, address, tag, testnet=True))
        assert destination.address.lower() == address.lower()
        assert destination.tag == tag


def test_a_litecoin_segwit_address_is_told_apart_by_its_prefix() -> None:
    # BIP-173's P2WPKH program under Litecoin's prefixes (Litecoin chainparams: ltc, tltc).
    _hrp, data, _variant = bech32_decode(SEGWIT_MAIN[0])
    main, test = bech32_encode("ltc", data, "bech32"), bech32_encode("tltc", data, "bech32")
    accepted(check("LTC", main, None, testnet=False))
    accepted(check("LTC", test, None, testnet=True))
    assert refused(check("LTC", main, None, testnet=True)) == "network"
    assert refused(check("BTC", main, None, testnet=False)) == "format"


def test_eip55_spells_its_own_vectors() -> None:
    for address in EIP55_MIXED + EIP55_ONE_CASE[:2]:
        assert eip55(address[2:].lower()) == address


# ---------------------------------------------------------------------------- words


def test_refusals_are_translated_when_shown() -> None:
    app = Flask(__name__)
    Babel(app, default_translation_directories=str(i18n.TRANSLATIONS))
    result = check("BTC", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", None,
                   testnet=False)
    english = str(as_refusal(result).message)
    with app.app_context(), force_locale("de"):
        german = str(as_refusal(result).message)
        warning = network_warning("USDTT")
    assert german and german != english
    assert "TRON (TRC-20)" in warning and "USDT" in warning


def test_the_network_warning_names_coin_and_network() -> None:
    warning = network_warning("USDTB")
    assert "USDT" in warning and "BNB Smart Chain (BEP-20)" in warning
    assert network_warning("NOPE") == ""
