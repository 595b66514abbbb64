"""Payment URIs: exact strings per currency, exact amounts, tags, labels, and the QR form."""

from __future__ import annotations

import re
from decimal import Context, Decimal
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from checkout import currencies, money, uris
from checkout.uris import UriError

BTC_BECH32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
BTC_TAPROOT = "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"
BTC_LEGACY = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
BTC_P2SH = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
TBTC_BECH32 = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
TBTC_P2SH = "2MwToDP2jFAwQxFuUSFzTH9FM8kMDWQCpRt"
REGTEST = "bcrt1qs758ursh4q9z627kt3pp5yysm78ddny6txaqgw"
LTC_BECH32 = "ltc1qg42tkwuuxefutzxezdkdel39gfstuap288mfea"
LTC_TEST = "tltc1qu78xur5xnq6fjy83amy0qcjfau8m367defyhms"
LTC_LEGACY = "LM2WMpR1Rp6j3Sa59cMXMs1SPzj9eXpGc1"
BCH = "qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a"
BCH_TEST = "qr95sy3j9xwd2ap32xkykttr4cvcu7as4yw5n6mhwr"
DOGE = "DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L"
ETH = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
XRP = "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh"
TRON = "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7"
BNB_BEACON = "bnb136ns6lfw4zs5hg4n85vdthaad7hq5m4gtkgf23"
ADA = (
    "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7drv2xwl2"
    "wywfgse35a3x"
)
XAMAN = "https://xaman.app/detect/request:"
MIXED_CASE = "bc1QAR0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"

D = Decimal

# (currency, address, amount, tag, label) -> the exact URI.
URIS = [
    ("BTC", BTC_BECH32, D("0.00123"), None, None, f"bitcoin:{BTC_BECH32}?amount=0.00123"),
    ("BTC", BTC_BECH32, D("0.00123000"), None, None, f"bitcoin:{BTC_BECH32}?amount=0.00123"),
    ("BTC", BTC_BECH32, None, None, None, f"bitcoin:{BTC_BECH32}"),
    ("BTC", BTC_LEGACY, D("20.3"), None, "Luke-Jr",
     f"bitcoin:{BTC_LEGACY}?amount=20.3&label=Luke-Jr"),
    ("BTC", BTC_P2SH, D("1"), None, "", f"bitcoin:{BTC_P2SH}?amount=1"),
    ("BTC", BTC_TAPROOT, D("0.1"), None, None, f"bitcoin:{BTC_TAPROOT}?amount=0.1"),
    ("TBTC", TBTC_BECH32, D("0.0001"), None, None, f"bitcoin:{TBTC_BECH32}?amount=0.0001"),
    ("TBTC", TBTC_P2SH, D("0.5"), None, None, f"bitcoin:{TBTC_P2SH}?amount=0.5"),
    ("LTC", LTC_BECH32, D("0.01"), None, None, f"litecoin:{LTC_BECH32}?amount=0.01"),
    ("LTC", LTC_LEGACY, D("2.5"), None, "Shop", f"litecoin:{LTC_LEGACY}?amount=2.5&label=Shop"),
    ("TLTC", LTC_TEST, D("1"), None, None, f"litecoin:{LTC_TEST}?amount=1"),
    ("BCH", BCH, D("0.001"), None, None, f"bitcoincash:{BCH}?amount=0.001"),
    ("BCH", f"bitcoincash:{BCH}", D("0.001"), None, None, f"bitcoincash:{BCH}?amount=0.001"),
    ("BCH", f"BITCOINCASH:{BCH}", None, None, None, f"bitcoincash:{BCH}"),
    ("BCH", f"bchtest:{BCH_TEST}", D("1"), None, None, f"bchtest:{BCH_TEST}?amount=1"),
    ("BCH", BTC_LEGACY, D("1"), None, None, f"bitcoincash:{BTC_LEGACY}?amount=1"),
    ("DOGE", DOGE, D("150"), None, None, f"dogecoin:{DOGE}?amount=150"),
    ("ETH", ETH, D("0.01"), None, None, f"ethereum:{ETH}@1?value=10000000000000000"),
    ("ETH", ETH, D("1.000000000000000001"), None, None,
     f"ethereum:{ETH}@1?value=1000000000000000001"),
    ("ETH", ETH, None, None, None, f"ethereum:{ETH}@1"),
    ("ETH", ETH, D("1"), None, "ignored: no label in EIP-681",
     f"ethereum:{ETH}@1?value=1000000000000000000"),
    ("TETH", ETH, D("2"), None, None, f"ethereum:{ETH}@11155111?value=2000000000000000000"),
    ("BNB-BSC", ETH, D("0.5"), None, None, f"ethereum:{ETH}@56?value=500000000000000000"),
    # Tokens: the recipient alone; EIP-681's contract-first form is misread (uris.py).
    ("USDTE", ETH, D("12.5"), None, None, ETH),
    ("USDTE", ETH, None, None, None, ETH),
    ("USDC", ETH, D("0.000001"), None, None, ETH),
    ("DAI", ETH, D("5.000000000000000001"), None, None, ETH),
    ("USDTB", ETH, D("5"), None, None, ETH),
    ("XRP", XRP, D("10"), "12345", None, f"{XAMAN}{XRP}?amount=10&network=XRPL&dt=12345"),
    ("XRP", XRP, D("0.000001"), "0", None, f"{XAMAN}{XRP}?amount=0.000001&network=XRPL&dt=0"),
    ("XRP", XRP, None, "4294967295", "ignored", f"{XAMAN}{XRP}?network=XRPL&dt=4294967295"),
    ("USDTT", TRON, D("5"), None, None, TRON),
    ("TRX", TRON, D("10"), None, "ignored", TRON),
    ("BNB", BNB_BEACON, D("0.01"), "104620493", None, BNB_BEACON),
    ("BNB", BNB_BEACON, D("0.01"), "memo with spaces", None, BNB_BEACON),
    ("CSC", TRON, D("1"), "77", None, TRON),
    ("ADA", ADA, D("2"), None, None, ADA),
    ("WBTC", ETH, D("1"), None, None, ETH),
    # A code the site does not know: the address alone, never a guessed scheme.
    ("NEWCOIN", TRON, D("1"), None, None, TRON),
    ("NEWCOIN", TRON, D("1"), "tag-1", None, TRON),
]


@pytest.mark.parametrize(("code", "address", "amount", "tag", "label", "expected"), URIS)
def test_payment_uri_per_currency(
    code: str, address: str, amount: Decimal | None, tag: str | None, label: str | None,
    expected: str,
) -> None:
    assert uris.payment_uri(code, address, amount, tag=tag, label=label) == expected


@pytest.mark.parametrize(("code", "address", "amount", "tag", "label", "expected"), URIS)
def test_a_currency_object_or_its_code_in_any_case_give_the_same_uri(
    code: str, address: str, amount: Decimal | None, tag: str | None, label: str | None,
    expected: str,
) -> None:
    info = currencies.get(code)
    if info is not None:
        assert uris.payment_uri(info, address, amount, tag, label) == expected
    assert uris.payment_uri(code.lower(), address, amount, tag, label) == expected


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (D("0.00000001"), "0.00000001"),
        (D("1E-8"), "0.00000001"),
        (D("0.00000010"), "0.0000001"),
        (D("1"), "1"),
        (D("1.00000000"), "1"),
        (D("1E+2"), "100"),
        (D("100"), "100"),
        (D("20.3"), "20.3"),
        (D("21000000"), "21000000"),
        (D("20999999.99999999"), "20999999.99999999"),
        (D("99999999999999999999.99999999"), "99999999999999999999.99999999"),
    ],
)
def test_bip21_amounts_are_plain_decimal_coins(amount: Decimal, text: str) -> None:
    uri = uris.payment_uri("BTC", BTC_BECH32, amount)
    assert uri == f"bitcoin:{BTC_BECH32}?amount={text}"
    assert "E" not in uri.split("?")[1] and "e" not in uri.split("?")[1]


@pytest.mark.parametrize(
    ("amount", "wei"),
    [
        (D("1.000000000000000001"), 1000000000000000001),
        (D("0.000000000000000001"), 1),
        (D("1E-18"), 1),
        (D("123456789012.123456789012345678"), 123456789012123456789012345678),
        (D("99999999999999999999.999999999999999999"), 10**38 - 1),
        (D("1.10"), 1100000000000000000),
        (D("1.100000000000000000000000"), 1100000000000000000),
    ],
)
def test_wei_is_exact_integer_digits(amount: Decimal, wei: int) -> None:
    assert uris.payment_uri("ETH", ETH, amount) == f"ethereum:{ETH}@1?value={wei}"


@pytest.mark.parametrize("code", ["USDTE", "USDC", "DAI", "USDTB", "SNACK", "WBTC"])
@pytest.mark.parametrize("testnet", [False, True])
def test_a_token_uri_names_the_recipient_and_no_contract_or_chain(code: str,
                                                                   testnet: bool) -> None:
    assert uris.payment_uri(code, ETH, D("12.5"), testnet=testnet) == ETH
    # Even in any letter case, the QR holds exactly the address the page shows.
    assert uris.qr_content(code, ETH, ETH) == ETH


@pytest.mark.parametrize(
    ("code", "testnet", "chain"),
    [("ETH", False, 1), ("ETH", True, 11155111), ("BNB-BSC", False, 56),
     ("BNB-BSC", True, 97), ("TETH", False, 11155111), ("TETH", True, 11155111)],
)
def test_a_test_page_names_the_test_chain(code: str, testnet: bool, chain: int) -> None:
    assert uris.payment_uri(code, ETH, D("1"), testnet=testnet) == \
        f"ethereum:{ETH}@{chain}?value=1000000000000000000"


def test_the_xrp_qr_is_the_bare_address_and_the_link_is_xamans() -> None:
    link = uris.payment_uri("XRP", XRP, D("10"), tag="12345")
    assert link.startswith(XAMAN)
    assert uris.qr_content("XRP", XRP, link) == XRP


def test_a_test_pages_xaman_link_names_no_ledger() -> None:
    assert uris.payment_uri("XRP", XRP, D("10"), tag="7", testnet=True) == \
        f"{XAMAN}{XRP}?amount=10&dt=7"


@pytest.mark.parametrize(("code", "address"), [("USDTT", TRON), ("TRX", TRON), ("ADA", ADA)])
def test_a_bare_address_qr_is_that_address(code: str, address: str) -> None:
    assert uris.qr_content(code, address, uris.payment_uri(code, address, D("5"))) == address


def test_a_qr_that_carries_the_amount_is_the_uri_in_qr_form() -> None:
    link = uris.payment_uri("BTC", BTC_BECH32, D("0.1"))
    assert uris.qr_content("BTC", BTC_BECH32, link) == f"bitcoin:{BTC_BECH32.upper()}?amount=0.1"
    # A code the site does not know: its URI is the address already; kept as it is.
    assert uris.qr_content("NEWCOIN", TRON, TRON) == TRON


@pytest.mark.parametrize(
    ("code", "amount"),
    [
        ("BTC", D("0.000000001")),
        ("BTC", D("1.123456789")),
        ("LTC", D("1E-9")),
        ("ETH", D("1.0000000000000000001")),
        ("USDTE", D("0.0000001")),
        ("USDTE", D("1.1234567")),
        ("USDTT", D("1.1234567")),
        ("XRP", D("0.0000001")),
        ("BTC", D("0")),
        ("BTC", D("0.00000000")),
        ("BTC", D("-1")),
        ("BTC", D("-0")),
        ("ETH", D("-0.5")),
        ("BTC", D("NaN")),
        ("BTC", D("sNaN")),
        ("BTC", D("Infinity")),
        ("BTC", D("-Infinity")),
        ("BTC", D("1E+20")),
        ("BTC", D("1E+999999")),
        ("ETH", D("1E+30")),
        ("BTC", 0.1),
        ("BTC", 1),
        ("BTC", "0.1"),
        ("BTC", True),
    ],
)
def test_amounts_that_cannot_be_paid_exactly_are_refused_not_rounded(
    code: str, amount: object
) -> None:
    tag = "1" if code == "XRP" else None
    with pytest.raises(UriError):
        uris.payment_uri(code, {"XRP": XRP, "ETH": ETH, "USDTE": ETH}.get(code, TRON), amount, tag)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("label", "encoded"),
    [
        ("Luke-Jr", "Luke-Jr"),
        ("Order 42", "Order%2042"),
        ("Fish & Chips", "Fish%20%26%20Chips"),
        ("#1", "%231"),
        ("a=b", "a%3Db"),
        ("what?", "what%3F"),
        ("1+1", "1%2B1"),
        ("100%", "100%25"),
        ("a/b:c@d", "a%2Fb%3Ac%40d"),
        ("Café", "Caf%C3%A9"),
        ("Магазин", "%D0%9C%D0%B0%D0%B3%D0%B0%D0%B7%D0%B8%D0%BD"),
        ("店", "%E5%BA%97"),
        ("🛒", "%F0%9F%9B%92"),
        ("line\nbreak", "line%0Abreak"),
        ("&amount=1000", "%26amount%3D1000"),
        ("~._-", "~._-"),
    ],
)
def test_labels_are_utf8_percent_encoded(label: str, encoded: str) -> None:
    uri = uris.payment_uri("BTC", BTC_BECH32, D("1"), label=label)
    assert uri == f"bitcoin:{BTC_BECH32}?amount=1&label={encoded}"
    assert parse_qs(urlsplit(uri).query)["amount"] == ["1"]


def test_a_label_that_is_not_text_is_refused() -> None:
    with pytest.raises(UriError):
        uris.payment_uri("BTC", BTC_BECH32, D("1"), label="broken \udc80 surrogate")


@pytest.mark.parametrize(
    ("code", "address"),
    [
        ("BTC", ""),
        ("BTC", f"{BTC_BECH32}?amount=1000"),
        ("BTC", f"{BTC_BECH32}&amount=1000"),
        ("BTC", f"{BTC_BECH32}#x"),
        ("BTC", f" {BTC_BECH32}"),
        ("BTC", f"{BTC_BECH32}\n"),
        ("BTC", "bс1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),  # Cyrillic "с"
        ("BTC", "javascript:alert(1)"),
        ("BTC", f"bitcoin:{BTC_BECH32}"),
        ("BTC", "a" * 201),
        ("BCH", "bitcoincash:"),
        ("BCH", f"bitcoincash:bitcoincash:{BCH}"),
        ("BCH", f"bitcoincash:{BCH}?amount=1"),
        ("ETH", ETH[2:]),
        ("ETH", ETH + "0"),
        ("ETH", ETH[:-1]),
        ("ETH", "0x" + "g" * 40),
        ("ETH", f"{ETH}@56"),
        ("USDTE", f"{ETH}&uint256=1"),
        ("USDTB", ""),
        ("XRP", "r"),
        ("XRP", XRP.replace("r", "x", 1)),
        ("XRP", f"{XRP}?amount=1"),
        ("XRP", XRP + "0"),
        ("USDTT", f"{TRON} "),
        ("USDTT", ""),
        ("ADA", ADA + "!"),
        ("NEWCOIN", "a?b"),
        ("NEWCOIN", ""),
    ],
)
def test_hostile_or_malformed_addresses_are_refused(code: str, address: str) -> None:
    tag = "1" if code == "XRP" else None
    with pytest.raises(UriError):
        uris.payment_uri(code, address, D("1"), tag=tag)


@pytest.mark.parametrize(
    ("code", "tag"),
    [
        ("XRP", None),
        ("XRP", ""),
        ("XRP", "abc"),
        ("XRP", "-1"),
        ("XRP", "4294967296"),
        ("XRP", "99999999999"),
        ("XRP", "12 "),
        ("XRP", "1e3"),
        ("XRP", "１２"),
        ("XRP", "12&amount=1000"),
        ("XRP", 12),
        ("CSC", None),
        ("CSC", "x"),
        ("BNB", None),
        ("BNB", ""),
        ("BNB", " leading"),
        ("BNB", "trailing "),
        ("BNB", "new\nline"),
        ("BNB", "\x00"),
        ("BNB", "x" * 129),
        ("BNB", "ünïcode"),
        ("BTC", "123"),
        ("ETH", "1"),
        ("USDTT", "1"),
        ("NEWCOIN", "bad\ttag"),
    ],
)
def test_tags_are_never_dropped_silently_or_made_up(code: str, tag: object) -> None:
    address = {"XRP": XRP, "BNB": BNB_BEACON, "ETH": ETH, "BTC": BTC_BECH32}.get(code, TRON)
    with pytest.raises(UriError):
        uris.payment_uri(code, address, D("1"), tag=tag)  # type: ignore[arg-type]


def test_a_memo_at_the_limit_is_accepted() -> None:
    assert uris.payment_uri("BNB", BNB_BEACON, None, tag="x" * 128) == BNB_BEACON


def test_uri_error_is_a_value_error() -> None:
    assert issubclass(UriError, ValueError)


# ------------------------------------------------------------------ QR form


@pytest.mark.parametrize(
    ("uri", "qr"),
    [
        (f"bitcoin:{BTC_BECH32}", f"bitcoin:{BTC_BECH32.upper()}"),
        (f"bitcoin:{BTC_BECH32}?amount=0.00123",
         f"bitcoin:{BTC_BECH32.upper()}?amount=0.00123"),
        (f"bitcoin:{BTC_BECH32}?amount=1&label=my%20shop",
         f"bitcoin:{BTC_BECH32.upper()}?amount=1&label=my%20shop"),
        (f"bitcoin:{BTC_TAPROOT}?amount=0.1", f"bitcoin:{BTC_TAPROOT.upper()}?amount=0.1"),
        (f"bitcoin:{TBTC_BECH32}", f"bitcoin:{TBTC_BECH32.upper()}"),
        (f"bitcoin:{REGTEST}?amount=1", f"bitcoin:{REGTEST.upper()}?amount=1"),
        (f"litecoin:{LTC_BECH32}?amount=1", f"litecoin:{LTC_BECH32.upper()}?amount=1"),
        (f"litecoin:{LTC_TEST}", f"litecoin:{LTC_TEST.upper()}"),
        (f"bitcoin:{BTC_BECH32.upper()}", f"bitcoin:{BTC_BECH32.upper()}"),
        (f"BITCOIN:{BTC_BECH32}", f"BITCOIN:{BTC_BECH32.upper()}"),
        # Not bech32, or not ours to change: left exactly as it is.
        (f"bitcoin:{BTC_LEGACY}?amount=1", f"bitcoin:{BTC_LEGACY}?amount=1"),
        (f"bitcoin:{TBTC_P2SH}", f"bitcoin:{TBTC_P2SH}"),
        (f"litecoin:{LTC_LEGACY}", f"litecoin:{LTC_LEGACY}"),
        (f"bitcoin:{MIXED_CASE}", f"bitcoin:{MIXED_CASE}"),
        ("bitcoin:bc1qbbbbbbbbbb", "bitcoin:bc1qbbbbbbbbbb"),
        ("bitcoin:bc1qq", "bitcoin:bc1qq"),
        (f"litecoin:{BTC_BECH32}", f"litecoin:{BTC_BECH32}"),
        (f"bitcoin:{LTC_BECH32}", f"bitcoin:{LTC_BECH32}"),
        (f"bitcoincash:{BCH}?amount=1", f"bitcoincash:{BCH}?amount=1"),
        (f"ethereum:{ETH}@1?value=1", f"ethereum:{ETH}@1?value=1"),
        (f"{XAMAN}{XRP}?amount=1&network=XRPL&dt=2", f"{XAMAN}{XRP}?amount=1&network=XRPL&dt=2"),
        (TRON, TRON),
        (BNB_BEACON, BNB_BEACON),
        (ADA, ADA),
        (BTC_BECH32, BTC_BECH32),
        ("", ""),
    ],
)
def test_qr_text_uppercases_only_a_bech32_address(uri: str, qr: str) -> None:
    assert uris.qr_text(uri) == qr


@pytest.mark.parametrize(("code", "address", "amount", "tag", "label", "expected"), URIS)
def test_the_qr_form_is_the_link_up_to_the_address_case(
    code: str, address: str, amount: Decimal | None, tag: str | None, label: str | None,
    expected: str,
) -> None:
    qr = uris.qr_text(expected)
    assert qr.lower() == expected.lower()
    assert qr.partition("?")[2] == expected.partition("?")[2]
    assert uris.qr_text(qr) == qr


# ------------------------------------------------------------------ properties


def _places(places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=Decimal(1).scaleb(-places), max_value=Decimal("99999999999"), places=places,
        allow_nan=False, allow_infinity=False,
    )


def amount_in_uri(uri: str, code: str) -> Decimal:
    """What a wallet would read back from the URI, in coins."""
    info = currencies.get(code)
    assert info is not None
    query = parse_qs(urlsplit(uri).query if "?" in uri else "", strict_parsing=False)
    exact = Context(prec=100)
    if info.uri_style == "eip681":
        [wei] = query["value"]
        return Decimal(wei).scaleb(-18, exact)
    [amount] = query["amount"]
    return Decimal(amount)


PLAIN_NUMBER = re.compile(r"\A(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?\Z")


@pytest.mark.parametrize(
    ("code", "address", "tag"),
    [
        ("BTC", BTC_BECH32, None), ("LTC", LTC_BECH32, None), ("BCH", BCH, None),
        ("DOGE", DOGE, None), ("ETH", ETH, None), ("BNB-BSC", ETH, None), ("XRP", XRP, "7"),
    ],
)
@given(data=st.data())
def test_amount_survives_the_round_trip(
    code: str, address: str, tag: str | None, data: st.DataObject
) -> None:
    info = currencies.get(code)
    assert info is not None
    amount = data.draw(_places(info.decimals))
    uri = uris.payment_uri(code, address, amount, tag=tag)
    assert amount_in_uri(uri, code) == amount
    number = re.search(r"(?:amount|value|uint256)=([^&]*)", uri)
    assert number is not None and PLAIN_NUMBER.match(number.group(1))


@given(label=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40))
@example(label="a&b=c#d?e f+g%h")
def test_any_label_decodes_back_and_never_breaks_the_query(label: str) -> None:
    uri = uris.payment_uri("BTC", BTC_BECH32, D("0.5"), label=label)
    query = urlsplit(uri).query
    assert query.count("&") == 1 and query.count("#") == 0 and " " not in uri
    assert query.startswith("amount=0.5&label=")
    assert unquote(query.removeprefix("amount=0.5&label="), errors="strict") == label


@given(st.integers(min_value=1, max_value=10**38 - 1), st.integers(min_value=0, max_value=18))
def test_atomic_units_invert_scaling(units: int, places: int) -> None:
    amount = Decimal(units).scaleb(-places, Context(prec=100))
    assert uris.atomic_units(amount, places) == units
    assert PLAIN_NUMBER.match(money.plain(amount))
    assert Decimal(money.plain(amount)) == amount
