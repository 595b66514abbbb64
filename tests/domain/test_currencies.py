"""The site's table of currencies: what the payer reads and what a wallet link needs."""

from __future__ import annotations

import dataclasses

import pytest

from checkout import currencies
from checkout.currencies import Currency, UnknownCurrency

# coinspaid-api.md §7, "Codes".
PROCESSOR_CRYPTO = (
    "ADA BCH BNB BNB-BSC BRZ BTC CPD CSC DAI DOGE ETH EURS LTC SNACK TRX USDC USDTB USDTE "
    "USDTT VERSE WBTC XED XRP"
).split()
PROCESSOR_FIAT = (
    "EUR USD GBP ARS AUD AZN BDT BRL BYN CAD CHF CLP CNY CZK GEL HUF IDR ILS INR JPY KGS KRW "
    "KZT LKR MDL MXN MYR NGN NOK NPR NZD PEN PHP PLN RUB SEK THB TJS TRY UAH VND ZAR"
).split()


@pytest.mark.parametrize(
    ("code", "ticker", "network", "decimals", "style", "scheme", "tag_label"),
    [
        ("BTC", "BTC", "Bitcoin", 8, "bip21", "bitcoin", None),
        ("LTC", "LTC", "Litecoin", 8, "bip21", "litecoin", None),
        ("BCH", "BCH", "Bitcoin Cash", 8, "bip21", "bitcoincash", None),
        ("DOGE", "DOGE", "Dogecoin", 8, "bip21", "dogecoin", None),
        ("ETH", "ETH", "Ethereum", 18, "eip681", "ethereum", None),
        ("USDTE", "USDT", "Ethereum (ERC-20)", 6, "plain", None, None),
        ("USDC", "USDC", "Ethereum (ERC-20)", 6, "plain", None, None),
        ("DAI", "DAI", "Ethereum (ERC-20)", 18, "plain", None, None),
        ("USDTT", "USDT", "TRON (TRC-20)", 6, "plain", None, None),
        ("TRX", "TRX", "TRON", 6, "plain", None, None),
        ("USDTB", "USDT", "BNB Smart Chain (BEP-20)", 18, "plain", None, None),
        ("BNB-BSC", "BNB", "BNB Smart Chain (BEP-20)", 18, "eip681", "ethereum", None),
        ("BNB", "BNB", "BNB Beacon Chain (BEP-2)", 8, "plain", None, "Memo"),
        ("XRP", "XRP", "XRP Ledger", 6, "xaman", "https", "Destination tag"),
        ("CSC", "CSC", "CasinoCoin", 8, "plain", None, "Destination tag"),
        ("ADA", "ADA", "Cardano", 6, "plain", None, None),
        ("TBTC", "BTC", "Bitcoin testnet", 8, "bip21", "bitcoin", None),
        ("TETH", "ETH", "Ethereum Sepolia testnet", 18, "eip681", "ethereum", None),
    ],
)
def test_each_code_reads_as_the_payer_needs_it(
    code: str,
    ticker: str,
    network: str,
    decimals: int,
    style: str,
    scheme: str | None,
    tag_label: str | None,
) -> None:
    info = currencies.get(code)
    assert info is not None
    assert (info.code, info.ticker, info.network) == (code, ticker, network)
    assert info.decimals == decimals
    assert (info.uri_style, info.uri_scheme, info.tag_label) == (style, scheme, tag_label)
    assert info.needs_tag is (tag_label is not None)


@pytest.mark.parametrize(
    ("code", "token_decimals", "chain_id", "testnet_chain_id"),
    [
        ("USDTE", 6, 1, 11155111),
        ("USDC", 6, 1, 11155111),
        ("DAI", 18, 1, 11155111),
        ("USDTB", 18, 56, 97),
        ("ETH", None, 1, 11155111),
        ("BNB-BSC", None, 56, 97),
        ("TETH", None, 11155111, None),
        ("USDTT", 6, None, None),
        ("BTC", None, None, None),
    ],
)
def test_tokens_name_their_chain_and_its_test_network(
    code: str, token_decimals: int | None, chain_id: int | None, testnet_chain_id: int | None
) -> None:
    info = currencies.get(code)
    assert info is not None
    assert (info.token_decimals, info.chain_id, info.testnet_chain_id) == (
        token_decimals, chain_id, testnet_chain_id
    )
    assert info.is_token is (token_decimals is not None)


def test_every_processor_crypto_code_is_known() -> None:
    assert [c for c in PROCESSOR_CRYPTO if not currencies.is_supported(c)] == []


def test_the_table_is_consistent() -> None:
    for info in currencies.CURRENCIES.values():
        assert info.name and info.network and info.ticker, info.code
        assert 0 <= info.decimals <= 18, info.code
        if info.uri_style == "bip21":
            assert info.uri_scheme and info.chain_id is None, info.code
        if info.uri_style == "eip681":
            assert info.uri_scheme == "ethereum" and info.chain_id, info.code
        if info.uri_style == "plain":
            assert info.uri_scheme is None, info.code
        # A token's QR is its recipient alone: a contract-first URI is misread (uris.py).
        if info.is_token:
            assert info.uri_style == "plain", info.code
            assert info.token_decimals == info.decimals, info.code
        # A main chain has a test network named in sandbox mode.
        if info.uri_style == "eip681" and not info.testnet:
            assert info.testnet_chain_id, info.code
        assert info.qr_has_amount is (info.uri_style in ("bip21", "eip681")), info.code
        assert info.code == info.code.upper()


def test_a_currency_cannot_be_changed_at_run_time() -> None:
    info = currencies.get("BTC")
    assert info is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.decimals = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("BTC", "BTC"),
        ("btc", "BTC"),
        ("Bnb-Bsc", "BNB-BSC"),
        ("usdtt", "USDTT"),
        ("tbtc", "TBTC"),
        ("BTC ", None),
        (" BTC", None),
        ("BTC\n", None),
        ("", None),
        ("EUR", None),
        ("BITCOIN", None),
        ("USDT", None),
        ("BNB_BSC", None),
        ("ＢＴＣ", None),
        ("BTC\x00", None),
        (None, None),
        (1, None),
        (b"BTC", None),
        (["BTC"], None),
    ],
)
def test_get_finds_codes_in_any_case_and_nothing_else(code: object, expected: str | None) -> None:
    info = currencies.get(code)
    assert (info.code if info else None) == expected
    assert currencies.is_supported(code) is (expected is not None)


@pytest.mark.parametrize(
    ("code", "address", "testnet"),
    [
        ("BTC", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", True),
        ("BTC", "TB1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KXPJZSX", True),
        ("BTC", "bcrt1qs758ursh4q9z627kt3pp5yysm78ddny6txaqgw", True),
        ("BTC", "2MwToDP2jFAwQxFuUSFzTH9FM8kMDWQCpRt", True),
        ("BTC", "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", True),
        ("BTC", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", False),
        ("BTC", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", False),
        ("BTC", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", False),
        ("BCH", "bchtest:qr95sy3j9xwd2ap32xkykttr4cvcu7as4yw5n6mhwr", True),
        ("BCH", "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a", False),
        ("BCH", "msUqPvgX6PYNekZPuHa9Hdv5Z9ENZ6ieZW", True),
        ("BCH", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", False),
        ("ETH", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", False),
        ("ADA", "addr_test1vz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzerspjrlsz", True),
    ],
)
def test_testnet_addresses_are_recognised(code: str, address: str, testnet: bool) -> None:
    info = currencies.get(code)
    assert info is not None
    assert info.is_testnet_address(address) is testnet


def test_fiat_codes_are_the_processors() -> None:
    assert list(currencies.FIAT_CODES) == PROCESSOR_FIAT
    assert currencies.FIAT == frozenset(PROCESSOR_FIAT)
    assert not currencies.FIAT & set(currencies.CURRENCIES)


@pytest.mark.parametrize(
    ("code", "places"),
    [
        ("EUR", 2), ("USD", 2), ("GBP", 2), ("JPY", 0), ("KRW", 0), ("CLP", 0), ("VND", 0),
        ("IDR", 2), ("HUF", 2), ("UAH", 2), ("eur", 2), ("jpy", 0),
    ],
)
def test_fiat_places_follow_iso_4217(code: str, places: int) -> None:
    assert currencies.fiat_places(code) == places
    assert currencies.is_fiat(code)


@pytest.mark.parametrize("code", ["BTC", "XXX", "", "EUR ", "EURO", "€", None, 978])
def test_fiat_places_refuse_what_is_not_fiat(code: object) -> None:
    with pytest.raises(UnknownCurrency):
        currencies.fiat_places(code)  # type: ignore[arg-type]
    assert not currencies.is_fiat(code)


def test_unknown_currency_is_a_value_error() -> None:
    assert issubclass(UnknownCurrency, ValueError)
    assert isinstance(currencies.get("BTC"), Currency)
