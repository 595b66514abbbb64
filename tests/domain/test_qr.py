"""QR images: they decode (zxing-cpp) to exactly the text, in both formats, every time."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from checkout import qr, uris
from checkout.qr import QrError

SVG_NS = "{http://www.w3.org/2000/svg}"
RUN = re.compile(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z")

D = Decimal
ETH = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
BTC_BECH32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"

# One payment per currency family, as the page would build it.
PAYMENTS = [
    ("BTC", BTC_BECH32, D("0.00000001"), None, "Shop & Café #1"),
    ("BTC", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", D("20999999.99999999"), None, None),
    ("BTC", "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297", D("0.1"), None, None),
    ("TBTC", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", None, None, None),
    ("LTC", "ltc1qg42tkwuuxefutzxezdkdel39gfstuap288mfea", D("0.5"), None, None),
    ("BCH", "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a", D("0.001"), None, None),
    ("DOGE", "DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L", D("150"), None, "Магазин"),
    ("ETH", ETH, D("1.000000000000000001"), None, None),
    ("USDTE", ETH, D("12.5"), None, None),
    ("USDC", ETH, D("0.000001"), None, None),
    ("DAI", ETH, D("5.000000000000000001"), None, None),
    ("USDTB", ETH, D("5"), None, None),
    ("BNB-BSC", ETH, D("0.01"), None, None),
    ("XRP", "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh", D("10.5"), "4294967295", None),
    ("USDTT", "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7", D("5"), None, None),
    ("TRX", "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7", D("10"), None, None),
    ("BNB", "bnb136ns6lfw4zs5hg4n85vdthaad7hq5m4gtkgf23", D("0.01"), "104620493", None),
    ("ADA", "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7"
     "drv2xwl2wywfgse35a3x", D("2"), None, None),
]
PAYLOADS = [
    uris.qr_text(uris.payment_uri(code, address, amount, tag, label))
    for code, address, amount, tag, label in PAYMENTS
]


def decode(image: Image.Image) -> str:
    [barcode] = zxingcpp.read_barcodes(image)
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode
    assert barcode.ec_level == "M"
    return barcode.text


def png_image(text: str, scale: int = 8) -> Image.Image:
    image = Image.open(io.BytesIO(qr.png(text, scale)))
    assert image.format == "PNG"
    return image


def svg_modules(data: bytes) -> tuple[int, set[tuple[int, int]]]:
    """The dark modules an SVG draws, read back from its path."""
    root = ET.fromstring(data)  # noqa: S314 (our own output)
    size = int(root.attrib["viewBox"].split()[2])
    [path] = root.iter(f"{SVG_NS}path")
    d = path.attrib["d"]
    runs = RUN.findall(d)
    assert "".join(f"M{x} {y}h{w}v1h-{w2}z" for x, y, w, w2 in runs) == d
    dark = set()
    for x, y, width, back in runs:
        assert width == back
        dark |= {(int(x) + i, int(y)) for i in range(int(width))}
    return size, dark


def rasterise_svg(data: bytes, scale: int = 8) -> Image.Image:
    size, dark = svg_modules(data)
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y in dark:
        draw.rectangle((x * scale, y * scale, (x + 1) * scale - 1, (y + 1) * scale - 1), fill=0)
    return image


@pytest.mark.parametrize("text", PAYLOADS)
def test_png_decodes_to_exactly_the_payment_text(text: str) -> None:
    assert decode(png_image(text)) == text


@pytest.mark.parametrize("text", PAYLOADS)
def test_svg_decodes_to_exactly_the_payment_text(text: str) -> None:
    assert decode(rasterise_svg(qr.svg(text))) == text


@pytest.mark.parametrize("text", PAYLOADS[:4])
def test_svg_and_png_draw_the_same_modules(text: str) -> None:
    size, dark = svg_modules(qr.svg(text))
    matrix = qr.matrix(text)
    assert size == len(matrix)
    assert dark == {(x, y) for y, row in enumerate(matrix) for x, on in enumerate(row) if on}
    image = png_image(text, scale=1).convert("L")
    assert image.size == (size, size)
    assert {(x, y) for y in range(size) for x in range(size) if image.getpixel((x, y)) == 0} == dark


@pytest.mark.parametrize("text", ["x", PAYLOADS[0], "9" * 500])
def test_a_quiet_zone_of_four_light_modules_surrounds_the_code(text: str) -> None:
    matrix = qr.matrix(text)
    size = len(matrix)
    border = [(x, y) for y in range(size) for x in range(size)
              if min(x, y) < 4 or max(x, y) >= size - 4]
    assert not any(matrix[y][x] for x, y in border)
    assert matrix[4][4] and matrix[size - 5][4] and matrix[4][size - 5]  # finder corners
    assert (size - 8 - 17) % 4 == 0  # a real QR version: 21, 25, 29... modules plus the zone


@pytest.mark.parametrize("scale", [1, 4, 8, 40])
def test_png_is_scale_pixels_per_module(scale: int) -> None:
    text = PAYLOADS[0]
    image = png_image(text, scale)
    assert image.size == (len(qr.matrix(text)) * scale,) * 2
    if scale >= 2:
        assert decode(image) == text


@pytest.mark.parametrize("scale", [0, -1, 41, 1000])
def test_png_refuses_absurd_scales(scale: int) -> None:
    with pytest.raises(QrError):
        qr.png("x", scale)


def test_svg_is_clean_markup_with_a_title() -> None:
    data = qr.svg(PAYLOADS[0])
    text = data.decode()
    root = ET.fromstring(data)  # noqa: S314 (our own output)
    assert root.tag == f"{SVG_NS}svg"
    assert root.attrib["role"] == "img"
    assert [e.tag.removeprefix(SVG_NS) for e in root] == ["title", "rect", "path"]
    assert root.find(f"{SVG_NS}title").text == PAYLOADS[0]  # type: ignore[union-attr]
    assert "style" not in text and "<script" not in text and "href" not in text
    assert all("style" not in e.attrib for e in root.iter())


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        ("QR code of the payment link", "QR code of the payment link"),
        ("<script>alert(1)</script> & more", "<script>alert(1)</script> & more"),
        ("Код оплаты", "Код оплаты"),
        ("bell\x07 and nul\x00", "bell\ufffd and nul\ufffd"),
    ],
)
def test_svg_title_is_escaped_text(title: str, shown: str) -> None:
    data = qr.svg("x", title)
    root = ET.fromstring(data)  # noqa: S314 (our own output)
    assert root.find(f"{SVG_NS}title").text == shown  # type: ignore[union-attr]
    assert b"<script>" not in data


def test_images_are_deterministic_and_cached() -> None:
    text = PAYLOADS[1]
    first_svg, first_png = qr.svg(text), qr.png(text)
    assert qr.svg(text) is first_svg and qr.png(text) is first_png
    qr.svg.cache_clear()
    qr.png.cache_clear()
    qr._matrix.cache_clear()
    assert qr.svg(text) == first_svg and qr.png(text) == first_png


def test_etag_identifies_the_text_and_variant() -> None:
    tag = qr.etag("bitcoin:x", "svg")
    assert re.fullmatch(r"[0-9a-f]{32}", tag)
    assert qr.etag("bitcoin:x", "svg") == tag
    assert len({tag, qr.etag("bitcoin:y", "svg"), qr.etag("bitcoin:x", "png"),
                qr.etag("bitcoin:x"), qr.etag("bitcoin:x", "s", "vg")}) == 5


@pytest.mark.parametrize("text", ["x" * 2400, "\udc80"])
def test_text_a_qr_cannot_hold_is_refused(text: str) -> None:
    with pytest.raises(QrError):
        qr.png(text)
    with pytest.raises(QrError):
        qr.svg(text)


def test_qr_error_is_a_value_error() -> None:
    assert issubclass(QrError, ValueError)


def test_uppercase_bech32_makes_a_smaller_code_and_an_uppercase_scheme_would_not() -> None:
    link = f"bitcoin:{BTC_BECH32}"
    payload = uris.qr_text(link)
    assert len(qr.matrix(payload)) < len(qr.matrix(link))
    assert len(qr.matrix(payload.replace("bitcoin:", "BITCOIN:"))) == len(qr.matrix(payload))


@pytest.mark.parametrize(
    "text", ["Café ünïcode ✓", "日本語のテキスト", "tab\tand newline\n", "%20&?#=+"]
)
def test_any_text_round_trips(text: str) -> None:
    assert decode(png_image(text)) == text
    assert decode(rasterise_svg(qr.svg(text))) == text


@settings(max_examples=25, deadline=None)
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=120))
def test_printable_text_round_trips_through_png(text: str) -> None:
    assert decode(png_image(text, scale=3)) == text
