"""Merchant branding (issue 10, item 2), set with `merchant edit` and read on the pages.

A merchant's display name replaces the account name wherever a customer reads it; its logo
is an image we checked and re-encoded, served by us at a URL named by its content; its
accent keeps AA contrast in light and dark whatever colour is given; its instructions are
shown in the page's language, else the default. Every input is bounded; a refused edit
changes nothing; the key and secret are never printed.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from hypothesis import given
from hypothesis import strategies as st
from kit.deposits import LINK, open_link
from kit.site import MERCHANT_KEY, MERCHANT_SECRET
from PIL import Image, PngImagePlugin
from sqlalchemy import func, select

from checkout import branding, db
from checkout.models import DepositAddress, Merchant, MerchantLogo


def edit(runner: FlaskCliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(args=["merchant", "edit", "--client-id", "11", *args])
    return result.exit_code, result.output


def stored(app: Flask) -> Merchant:
    with app.app_context():
        merchant = db.session().get(Merchant, 11)
        assert merchant is not None
        _ = merchant.logo
        db.session().expunge_all()
        return merchant


def image_file(tmp_path: Path, fmt: str = "PNG", size: tuple[int, int] = (300, 100),
               name: str = "logo", **save: Any) -> Path:
    path = tmp_path / f"{name}.{fmt.lower()}"
    Image.new("RGB", size, (11, 92, 173)).save(path, fmt, **save)
    return path


@pytest.fixture
def page_url(app: Flask, client: FlaskClient, merchant: Merchant) -> str:
    with app.app_context(), db.transaction() as s:
        s.add(DepositAddress(merchant_id=11, foreign_id="user-7", currency="BTC",
                             convert_to="", address="bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"))
    return open_link(client, {**LINK, "convert_to": None})


# ---------------------------------------------------------------- colours


def test_contrast_is_wcags_relative_luminance_ratio() -> None:
    assert branding.contrast("#ffffff", "#000000") == pytest.approx(21.0)
    assert branding.contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert branding.contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)


@given(st.from_regex(r"\A#[0-9a-f]{6}\Z"))
def test_any_accent_becomes_colours_that_keep_aa_in_light_and_dark(accent: str) -> None:
    for scheme, colours in branding.palette(accent).items():
        for background in (branding.CARD[scheme], branding.PAGE_BG[scheme]):
            assert branding.contrast(colours.accent, background) >= 4.5, (scheme, colours)
        assert branding.contrast(colours.accent_text, colours.accent) >= 4.5, (scheme, colours)


def test_a_readable_accent_is_kept_and_a_pale_one_darkened_keeping_its_hue() -> None:
    assert branding.palette("#0b5cad")["light"].accent == "#0b5cad"
    light = branding.palette("#ffd400")["light"].accent  # a yellow on white
    assert light != "#ffd400" and branding.contrast(light, "#ffffff") >= 4.5
    red, green, blue = (int(light[i:i + 2], 16) for i in (1, 3, 5))
    assert red >= green > blue  # still a yellow-brown, not grey
    assert branding.palette("#0b5cad")["dark"].accent != "#0b5cad"  # too dark on dark


# ---------------------------------------------------------------- merchant edit


def test_a_display_name_replaces_the_account_name_for_customers(
        app: Flask, runner: FlaskCliRunner, client: FlaskClient, page_url: str) -> None:
    code, output = edit(runner, "--display-name", "  Café   Nord  ")
    assert code == 0, output
    assert "display name: Café Nord" in output
    assert MERCHANT_SECRET not in output and MERCHANT_KEY not in output
    html = client.get(page_url).get_data(as_text=True)
    assert "Café Nord" in html and ">Shop<" not in html
    assert "Return to Café Nord" in html
    assert stored(app).name == "Shop"  # the account name stays for operators
    code, output = edit(runner, "--no-display-name")
    assert code == 0 and "account name" in output
    assert ">Shop<" in client.get(page_url).get_data(as_text=True)


def test_a_hostile_display_name_is_text_on_the_page(
        runner: FlaskCliRunner, client: FlaskClient, page_url: str) -> None:
    assert edit(runner, "--display-name", '<img src=x onerror="alert(1)">',
                "--instructions", "</p><script>alert(2)</script>")[0] == 0
    html = client.get(page_url).get_data(as_text=True)
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(2)" in html


@pytest.mark.parametrize(("args", "message"), [
    (["--display-name", "   "], "display name must not be empty"),
    (["--display-name", "x" * 101], "at most 100"),
    (["--display-name", "Shop\u202egnp.exe"], "U+202E"),
    (["--display-name", "Sh\u200bop"], "U+200B"),
    (["--display-name", "A", "--no-display-name"], "not both"),
    (["--accent", "blue"], "must be a colour"),
    (["--accent", "#12345"], "must be a colour"),
    (["--accent", "#123456;}body{x:y"], "must be a colour"),
    (["--accent", "#fff", "--no-accent"], "not both"),
    (["--instructions", "x" * 301], "at most 300"),
    (["--instructions", "bad\x00byte"], "U+0000"),
    (["--instructions-for", "klingon!", "x"], "language code"),
    (["--instructions-for", "xx", "x"], "not a language"),
    (["--instructions-for", "de", "a", "--instructions-for", "de", "b"], "given twice"),
    (["--remove-instructions-for", "de"], "no instructions for 'de'"),
    (["--no-instructions", "--instructions", "x"], "give it alone"),
    (["--logo", "/nonexistent/logo.png"], "cannot be read"),
])
def test_bad_branding_is_refused_with_a_reason_and_changes_nothing(
        app: Flask, runner: FlaskCliRunner, merchant: Merchant, args: list[str],
        message: str) -> None:
    before = stored(app)
    code, output = edit(runner, "--display-name", "Kept?", *args) if args[0] not in (
        "--display-name",) else edit(runner, *args)
    assert code != 0 and message in output, output
    after = stored(app)
    assert (after.display_name, after.accent, after.instructions_json) == (
        before.display_name, before.accent, before.instructions_json)


def test_the_edit_command_lists_the_branding_options_when_nothing_is_given(
        runner: FlaskCliRunner, merchant: Merchant) -> None:
    code, output = edit(runner)
    assert code != 0 and "--display-name" in output and "--accent" in output


def test_merchant_list_shows_the_branding_without_secrets(
        runner: FlaskCliRunner, merchant: Merchant, tmp_path: Path) -> None:
    assert edit(runner, "--display-name", "Nord", "--accent", "#0B5CAD",
                "--logo", str(image_file(tmp_path)), "--instructions", "Own wallet.")[0] == 0
    listed = runner.invoke(args=["merchant", "list"]).output
    assert "display name: Nord" in listed and "accent: #0b5cad" in listed
    assert "logo: 300x100" in listed and "instructions: default" in listed
    assert MERCHANT_SECRET not in listed and MERCHANT_KEY not in listed


# ---------------------------------------------------------------- the logo


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_logo_is_re_encoded_as_png_and_served_by_us_with_a_long_cache(
        app: Flask, runner: FlaskCliRunner, client: FlaskClient, page_url: str,
        tmp_path: Path, fmt: str) -> None:
    code, output = edit(runner, "--logo", str(image_file(tmp_path, fmt)))
    assert code == 0, output
    html = client.get(page_url).get_data(as_text=True)
    found = re.search(r'<img class="logo" src="(/brand/11/logo-[0-9a-f]{16}\.png)" alt="" '
                      r'width="300" height="100">', html)
    assert found, html[:2000]
    response = client.get(found.group(1))
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    with Image.open(io.BytesIO(response.data)) as image:
        assert image.format == "PNG" and image.size == (300, 100)


def test_a_logo_keeps_no_metadata_and_is_shrunk_for_a_header(
        app: Flask, runner: FlaskCliRunner, tmp_path: Path, merchant: Merchant) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    path = image_file(tmp_path, "PNG", (1024, 1024), pnginfo=info)
    assert edit(runner, "--logo", str(path))[0] == 0
    logo = stored(app).logo
    assert logo is not None and (logo.width, logo.height) == (160, 160)
    with app.app_context():
        png = db.session().get(MerchantLogo, 11).png  # type: ignore[union-attr]
    assert b"script" not in png and b"Comment" not in png


def png_claiming(tmp_path: Path, width: int, height: int) -> Path:
    """A few bytes whose header claims a picture of width x height (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    return path


def svg(tmp_path: Path) -> Path:
    path = tmp_path / "logo.svg"
    path.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    return path


@pytest.mark.parametrize(("make", "message"), [
    (svg, "SVG"),
    (lambda p: image_file(p, "GIF"), "not a readable PNG, JPEG or WebP"),
    (lambda p: image_file(p, "PNG", (1025, 10)), "at most 1024x1024"),
    (lambda p: image_file(p, "PNG", (10, 2000)), "at most 1024x1024"),
    (lambda p: png_claiming(p, 20_000, 20_000), "1024x1024"),
    (lambda p: png_claiming(p, 5000, 5000), "1024x1024"),
    (lambda p: p.joinpath("big.png").write_bytes(b"\x89PNG" + b"\0" * 262_144) and
     p / "big.png", "larger than 256 KB"),
    (lambda p: p.joinpath("cut.png").write_bytes(image_file(p).read_bytes()[:80]) and
     p / "cut.png", "not a readable"),
    (lambda p: p.joinpath("empty.png").write_bytes(b"") or p / "empty.png", "not a readable"),
])
def test_a_logo_that_is_not_a_small_png_jpeg_or_webp_is_refused(
        app: Flask, runner: FlaskCliRunner, merchant: Merchant, tmp_path: Path,
        make: Any, message: str) -> None:
    code, output = edit(runner, "--logo", str(make(tmp_path)))
    assert code != 0 and message in output, output
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(MerchantLogo)) == 0


def test_a_new_logo_gets_a_new_url_and_the_old_one_is_gone(
        runner: FlaskCliRunner, client: FlaskClient, page_url: str, tmp_path: Path) -> None:
    edit(runner, "--logo", str(image_file(tmp_path)))
    first = re.findall(r'/brand/11/logo-\w+\.png', client.get(page_url).get_data(as_text=True))
    Image.new("RGB", (200, 50), (200, 0, 0)).save(tmp_path / "red.png")
    edit(runner, "--logo", str(tmp_path / "red.png"))
    second = re.findall(r'/brand/11/logo-\w+\.png', client.get(page_url).get_data(as_text=True))
    assert first and second and first != second
    assert client.get(first[0]).status_code == 404
    assert client.get(second[0]).status_code == 200
    assert edit(runner, "--no-logo")[0] == 0
    assert 'class="logo"' not in client.get(page_url).get_data(as_text=True)
    assert client.get(second[0]).status_code == 404


@pytest.mark.parametrize("path", ["/brand/11/logo-zz.png", "/brand/11/logo-.png",
                                  "/brand/99/logo-0123456789abcdef.png", "/brand/x/a.css",
                                  "/brand/11/0123456789abcdef.css", "/brand/11/%00.css"])
def test_unknown_branding_files_are_a_plain_404(client: FlaskClient, merchant: Merchant,
                                                path: str) -> None:
    assert client.get(path).status_code == 404


# ---------------------------------------------------------------- the accent


def test_the_accent_is_a_stylesheet_of_our_own_and_the_csp_stays_strict(
        runner: FlaskCliRunner, client: FlaskClient, page_url: str) -> None:
    plain = client.get(page_url)
    assert "/brand/" not in plain.get_data(as_text=True)
    assert edit(runner, "--accent", "#FFD400")[0] == 0
    page = client.get(page_url)
    html = page.get_data(as_text=True)
    assert page.headers["Content-Security-Policy"] == plain.headers["Content-Security-Policy"]
    assert "style=" not in html and "<style" not in html
    href = re.search(r'<link rel="stylesheet" href="(/brand/11/[0-9a-f]{16}\.css)">', html)
    assert href, html[:1500]
    css = client.get(href.group(1))
    assert css.mimetype == "text/css"
    assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    text = css.get_data(as_text=True)
    light, dark = branding.palette("#ffd400")["light"], branding.palette("#ffd400")["dark"]
    assert f"--accent:{light.accent};--accent-text:{light.accent_text}" in text
    assert f"prefers-color-scheme:dark){{:root{{--accent:{dark.accent}" in text
    assert edit(runner, "--accent", "#0b5cad")[0] == 0
    assert client.get(href.group(1)).status_code == 404  # the colour changed: a new URL
    assert edit(runner, "--no-accent")[0] == 0
    assert "/brand/" not in client.get(page_url).get_data(as_text=True)


# ---------------------------------------------------------------- the instructions


def test_instructions_are_shown_in_the_pages_language_else_the_default(
        make_app: Any) -> None:
    app = make_app(LANGUAGES=["en", "de", "pt_BR"])
    client, runner = app.test_client(), app.test_cli_runner()
    with app.app_context():
        from checkout import merchants

        merchants.add(merchants.NewMerchant(11, "Shop", MERCHANT_KEY, MERCHANT_SECRET,
                                            ("shop.example",)))
        with db.transaction() as s:
            s.add(DepositAddress(merchant_id=11, foreign_id="user-7", currency="BTC",
                                 convert_to="", address="bc1qexample"))
    code, output = edit(runner, "--instructions", "Pay from your own wallet.",
                        "--instructions-for", "de", "Zahlen Sie aus Ihrer eigenen Wallet.",
                        "--instructions-for", "pt-BR", "Pague da sua carteira.")
    assert code == 0, output
    url = open_link(client, {**LINK, "convert_to": None})

    def shown(lang: str) -> str:
        html = client.get(url, query_string={"lang": lang}).get_data(as_text=True)
        found = re.search(r'<p class="notice notice-info" data-field="instructions"([^>]*)>'
                          r'<strong>[^<]*Shop[^<]*</strong> ([^<]*)</p>', html)
        assert found, html
        return found.group(2) + found.group(1)

    assert shown("en") == "Pay from your own wallet."
    assert shown("de") == 'Zahlen Sie aus Ihrer eigenen Wallet. lang="de"'
    assert shown("pt_BR") == 'Pague da sua carteira. lang="pt-BR"'
    assert edit(runner, "--remove-instructions-for", "de")[0] == 0
    assert shown("de") == "Pay from your own wallet."
    assert edit(runner, "--no-instructions")[0] == 0
    assert 'data-field="instructions"' not in client.get(url).get_data(as_text=True)


def test_instructions_step_aside_once_the_page_is_paid(
        app: Flask, runner: FlaskCliRunner, client: FlaskClient, page_url: str) -> None:
    assert edit(runner, "--instructions", "Pay from your own wallet.")[0] == 0
    html = client.get(page_url).get_data(as_text=True)
    box = html.split('data-field="pay-box"')[1].split('data-field="outcome"')[0]
    assert "Pay from your own wallet." in box


def test_a_brand_url_with_an_id_no_merchant_can_have_is_a_plain_404(
        app: Any) -> None:
    client = app.test_client()
    for path in ("/brand/99999999999999999999/abcdef.css", "/brand/2147483648/logo-abc.png",
                 "/brand/-1/abc.css"):
        assert client.get(path).status_code == 404, path
