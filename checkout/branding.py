"""Merchant branding: a display name, a logo, an accent colour and instructions for customers.

What an operator sets is bounded and checked here, once, when it is set; pages only show it.
The logo is decoded and re-encoded by us (PNG), so no script, metadata or third-party URL
reaches a customer. The accent becomes colours that keep WCAG AA contrast (4.5:1) in light
and in dark, worked out here rather than trusted to the merchant's eye. Both are served from
our own origin at URLs named by their content: the pages' CSP stays `style-src 'self'`
(no inline style) and browsers may cache them for good.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import click
from babel import Locale, UnknownLocaleError
from flask_babel import lazy_gettext
from flask_babel.speaklater import LazyString
from PIL import Image, ImageOps, UnidentifiedImageError

from .models import Merchant, MerchantLogo

MAX_DISPLAY_NAME = 100
MAX_INSTRUCTIONS = 300
MAX_INSTRUCTION_LANGUAGES = 20
DEFAULT = "default"  # the instructions' key for every language without its own text
# The uploaded file: read no more than this, and decode no larger picture.
MAX_LOGO_BYTES = 256 * 1024
MAX_LOGO_SIDE = 1024
LOGO_FORMATS = {"PNG", "JPEG", "WEBP"}
# What Pillow calls a phone camera's JPEG with a second picture inside: a JPEG to the operator.
_JPEG_KINDS = {"MPO"}
# What we keep: enough for a header line on a 3x phone screen, and a page stays light.
STORED_LOGO_BOX = (480, 160)
# The cards' backgrounds in checkout.css (light, dark): accent text and links sit on them.
CARD = {"light": "#ffffff", "dark": "#1d2025"}
PAGE_BG = {"light": "#f4f5f7", "dark": "#121417"}
AA = 4.5
CACHE_FOREVER = "public, max-age=31536000, immutable"

_ACCENT = re.compile(r"\A#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")
DIGEST = re.compile(r"\A[0-9a-f]{16}\Z")
_LANGUAGE = re.compile(r"\A[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8}){0,2}\Z")
# Control, format (bidi overrides, zero-width), separator-line, private and surrogate
# characters: none belongs in a name or a sentence a customer reads, and some can disguise it.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"}


# An error's words: lazy where a back-office page shows them, so that they are read in the
# person's language there and in English in the command (which has no request).
Message: TypeAlias = str | LazyString


class BrandError(ValueError):
    """A branding setting that cannot be accepted, with a message for the operator
    (`message` kept lazy for a page to render late; `str()` reads it now)."""

    def __init__(self, message: Message) -> None:
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------- checking what is set


@dataclass(frozen=True)
class _TextErrors:
    """One text's own sentences: a name spliced into a shared sentence would not translate."""

    empty: Callable[[], Message]
    too_long: Callable[[int, int], Message]  # (length, limit)
    invisible: Callable[[str], Message]  # the character as U+XXXX


_DISPLAY_NAME_ERRORS = _TextErrors(
    empty=lambda: lazy_gettext("display name must not be empty"),
    too_long=lambda length, limit: lazy_gettext(
        "display name is %(length)s characters long; at most %(limit)s are allowed",
        length=length, limit=limit),
    invisible=lambda character: lazy_gettext(
        "display name contains the invisible or control character %(character)s; please "
        "type it without", character=character))
_INSTRUCTIONS_ERRORS = _TextErrors(
    empty=lambda: lazy_gettext("instructions must not be empty"),
    too_long=lambda length, limit: lazy_gettext(
        "instructions is %(length)s characters long; at most %(limit)s are allowed",
        length=length, limit=limit),
    invisible=lambda character: lazy_gettext(
        "instructions contains the invisible or control character %(character)s; please "
        "type it without", character=character))


def _plain_text(errors: _TextErrors, value: str, limit: int) -> str:
    text = " ".join(value.split())  # one line; runs of spaces are one space
    if not text:
        raise BrandError(errors.empty())
    if len(text) > limit:
        raise BrandError(errors.too_long(len(text), limit))
    bad = next((c for c in text if unicodedata.category(c) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        raise BrandError(errors.invisible(f"U+{ord(bad):04X}"))
    return text


def normalise_display_name(value: str) -> str:
    return _plain_text(_DISPLAY_NAME_ERRORS, value, MAX_DISPLAY_NAME)


def normalise_instructions(value: str) -> str:
    return _plain_text(_INSTRUCTIONS_ERRORS, value, MAX_INSTRUCTIONS)


def normalise_accent(value: str) -> str:
    """`#0b5cad` or `#08f`, as `#rrggbb` in lower case."""
    colour = value.strip()
    if not _ACCENT.match(colour):
        raise BrandError(lazy_gettext(
            "accent %(value)s must be a colour like #0b5cad", value=repr(value)))
    digits = colour[1:].lower()
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return "#" + digits


def normalise_language(value: str) -> str:
    """A language the instructions are written in, as Babel names it (`de`, `pt_BR`)."""
    tag = value.strip()
    if not _LANGUAGE.match(tag):
        raise BrandError(lazy_gettext(
            "language %(value)s must be a language code such as de or pt_BR",
            value=repr(value)))
    try:
        return str(Locale.parse(tag.replace("-", "_")))
    except (UnknownLocaleError, ValueError) as exc:
        raise BrandError(lazy_gettext("language %(value)s is not a language Babel knows",
                                      value=repr(value))) from exc


@dataclass(frozen=True)
class Logo:
    png: bytes
    width: int
    height: int

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.png).hexdigest()


def read_logo(path: str | Path) -> Logo:
    """Check an uploaded image (type, bytes, pixels) and re-encode it as a small PNG."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_LOGO_BYTES + 1)
    except OSError as exc:
        raise BrandError(f"logo {str(path)!r} cannot be read: {exc.strerror}") from exc
    if len(data) > MAX_LOGO_BYTES:
        raise BrandError(f"logo is larger than {MAX_LOGO_BYTES // 1024} KB; please make it "
                         "smaller")
    return decode_logo(data)


def decode_logo(data: bytes) -> Logo:
    if len(data) > MAX_LOGO_BYTES:
        raise BrandError(lazy_gettext(
            "logo is larger than %(size)s KB", size=MAX_LOGO_BYTES // 1024))
    head = data[:512].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!doctype", b"<")):
        raise BrandError(lazy_gettext("logo must be a PNG, JPEG or WebP image; SVG and other "
                                      "text formats are refused because they can carry "
                                      "script"))
    try:
        with Image.open(io.BytesIO(data), formats=sorted(LOGO_FORMATS)) as image:
            if image.format not in LOGO_FORMATS | _JPEG_KINDS:
                raise BrandError(lazy_gettext("logo must be a PNG, JPEG or WebP image"))
            # Checked before the pixels are decoded: a small file may unpack to a huge image.
            width, height = image.size
            if width > MAX_LOGO_SIDE or height > MAX_LOGO_SIDE or not width or not height:
                raise BrandError(lazy_gettext("logo is %(width)sx%(height)s pixels; at most "
                                              "%(side)sx%(side)s are allowed", width=width,
                                              height=height, side=MAX_LOGO_SIDE))
            image.seek(0)  # an animation's first frame only
            image.load()
            picture = ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as exc:
        raise BrandError(lazy_gettext("logo is larger than %(side)sx%(side)s pixels",
                                      side=MAX_LOGO_SIDE)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, BrandError):
            raise
        raise BrandError(lazy_gettext("logo is not a readable PNG, JPEG or WebP image")) from exc
    picture = picture.convert("RGBA")
    picture.thumbnail(STORED_LOGO_BOX, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # A fresh file from the pixels alone: no metadata, text chunks or colour profile survive.
    picture.save(out, "PNG", optimize=True)
    return Logo(out.getvalue(), picture.width, picture.height)


# ---------------------------------------------------------------- colours


def _channel(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _rgb(colour: str) -> tuple[float, float, float]:
    return (int(colour[1:3], 16) / 255, int(colour[3:5], 16) / 255, int(colour[5:7], 16) / 255)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(max(0.0, min(1.0, c)) * 255):02x}" for c in rgb)


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of `#rrggbb`."""
    r, g, b = (_channel(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable_on(colour: str, backgrounds: list[str], *, darker: bool) -> str:
    """`colour`, made darker (or lighter) in steps of lightness, keeping its hue and
    saturation, until it reaches AA against every background."""
    h, lightness, s = colorsys.rgb_to_hls(*_rgb(colour))
    candidate = colour
    for _ in range(101):
        candidate = _hex(colorsys.hls_to_rgb(h, lightness, s))
        if all(contrast(candidate, bg) >= AA for bg in backgrounds):
            return candidate
        lightness = max(0.0, lightness - 0.01) if darker else min(1.0, lightness + 0.01)
    # Black or white always reach AA on these cards.
    return "#000000" if darker else "#ffffff"


@dataclass(frozen=True)
class Scheme:
    accent: str  # links, outlines, button borders: on the card
    accent_text: str  # text on an accent-filled button


def palette(accent: str) -> dict[str, Scheme]:
    """The accent for light and dark pages, each readable on the card and the page."""
    schemes = {}
    for scheme, darker in (("light", True), ("dark", False)):
        shown = readable_on(accent, [CARD[scheme], PAGE_BG[scheme]], darker=darker)
        # On the accent, the card's own extreme reads best; it meets AA because the accent
        # meets AA against the card.
        text = max(("#ffffff", "#0d1117"), key=lambda t: contrast(t, shown))
        schemes[scheme] = Scheme(shown, text)
    return schemes


def stylesheet(merchant: Merchant, logo: MerchantLogo | None) -> str | None:
    """The merchant's small stylesheet; None when there is nothing to style."""
    rules = []
    if merchant.accent:
        colours = palette(merchant.accent)
        light, dark = colours["light"], colours["dark"]
        rules.append(f":root{{--accent:{light.accent};--accent-text:{light.accent_text}}}")
        rules.append("@media (prefers-color-scheme:dark){:root{"
                     f"--accent:{dark.accent};--accent-text:{dark.accent_text}}}}}")
    if logo is not None:
        rules.append(".logo{display:block;width:auto;height:auto;max-width:100%;"
                     "max-height:2.5rem;margin:0 0 .5rem}")
        # A dark logo on a transparent ground would vanish on a dark card.
        rules.append("@media (prefers-color-scheme:dark){.logo{background:#fff;"
                     "padding:.2rem;border-radius:.3rem}}")
    return "\n".join(rules) + "\n" if rules else None


def digest_of(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(raw).hexdigest()[:16]


# ---------------------------------------------------------------- what a page shows


def instructions_for(texts: dict[str, str], locale: str) -> tuple[str | None, str | None]:
    """The text for `locale` (`pt_BR`, then `pt`), else the default; and its language when
    known."""
    language = locale.split("_")[0]
    for key in (locale, language):
        if key in texts:
            return texts[key], key
    for key, text in texts.items():  # `pt_BR` written, `pt` asked
        if key.split("_")[0] == language:
            return text, key
    return texts.get(DEFAULT), None



# ---------------------------------------------------------------- `merchant edit`


@dataclass(frozen=True)
class BrandEdit:
    """What `merchant edit` changes in the branding; None and () leave a setting as it is."""

    display_name: str | None = None
    no_display_name: bool = False
    logo: Logo | None = None
    no_logo: bool = False
    accent: str | None = None
    no_accent: bool = False
    instructions: tuple[tuple[str, str], ...] = ()  # (language or DEFAULT, text)
    no_instructions: bool = False
    remove_instructions: tuple[str, ...] = field(default=())

    def is_empty(self) -> bool:
        return self == BrandEdit()


OPTION_NAMES = ("--display-name, --no-display-name, --logo, --no-logo, --accent, --no-accent, "
                "--instructions, --instructions-for, --remove-instructions-for, "
                "--no-instructions")


def brand_options(command: Any) -> Any:
    """The branding options of `merchant edit`, kept together."""
    options = [
        click.option("--display-name", help="Name customers see instead of the account name "
                     f"(at most {MAX_DISPLAY_NAME} characters)."),
        click.option("--no-display-name", is_flag=True, help="Show the account name again."),
        click.option("--logo", "logo_path", type=click.Path(dir_okay=False),
                     help=f"PNG, JPEG or WebP logo, at most {MAX_LOGO_BYTES // 1024} KB and "
                     f"{MAX_LOGO_SIDE}x{MAX_LOGO_SIDE} pixels (SVG is refused)."),
        click.option("--no-logo", is_flag=True, help="Remove the logo."),
        click.option("--accent", help="Accent colour, e.g. '#0b5cad'; adjusted where needed "
                     "so text keeps AA contrast in light and dark."),
        click.option("--no-accent", is_flag=True, help="Use the site's own accent again."),
        click.option("--instructions", help="A short text for the pay page, in any language "
                     f"without its own (at most {MAX_INSTRUCTIONS} characters)."),
        click.option("--instructions-for", "instructions_for", type=(str, str),
                     multiple=True, metavar="LANG TEXT",
                     help="The instructions in one language, e.g. --instructions-for de "
                     "'Bitte ...' (repeatable)."),
        click.option("--remove-instructions-for", "removed_instructions", multiple=True,
                     metavar="LANG", help="Remove one language's instructions (repeatable)."),
        click.option("--no-instructions", is_flag=True, help="Remove all instructions."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def edit_from_options(display_name: str | None, no_display_name: bool,
                      logo_path: str | None, no_logo: bool, accent: str | None,
                      no_accent: bool, instructions: str | None,
                      instructions_for: tuple[tuple[str, str], ...],
                      removed_instructions: tuple[str, ...],
                      no_instructions: bool, logo_data: bytes | None = None) -> BrandEdit:
    """Everything checked (the logo read and re-encoded) before anything is stored.
    `logo_data`: an uploaded file's bytes (the back office), instead of `logo_path`."""
    logo_given = logo_path if logo_path is not None else logo_data
    for value, flag, name in ((display_name, no_display_name, "display-name"),
                              (logo_given, no_logo, "logo"), (accent, no_accent, "accent")):
        if value is not None and flag:
            raise BrandError(f"give either --{name} or --no-{name}, not both")
    if no_instructions and (instructions is not None or instructions_for
                            or removed_instructions):
        raise BrandError("--no-instructions removes every text; give it alone")
    texts: list[tuple[str, str]] = []
    if instructions is not None:
        texts.append((DEFAULT, normalise_instructions(instructions)))
    for language, text in instructions_for:
        texts.append((normalise_language(language), normalise_instructions(text)))
    keys = [k for k, _ in texts]
    if len(set(keys)) != len(keys):
        raise BrandError("the instructions for one language are given twice")
    # The default text has no language to name it by; it is removed by its own key.
    removed = tuple(lang if lang == DEFAULT else normalise_language(lang)
                    for lang in removed_instructions)
    if set(removed) & set(keys):
        raise BrandError("the instructions for one language are both given and removed")
    return BrandEdit(
        display_name=normalise_display_name(display_name) if display_name is not None else None,
        no_display_name=no_display_name,
        logo=(read_logo(logo_path) if logo_path is not None
              else decode_logo(logo_data) if logo_data is not None else None),
        no_logo=no_logo,
        accent=normalise_accent(accent) if accent is not None else None,
        no_accent=no_accent,
        instructions=tuple(texts),
        no_instructions=no_instructions,
        remove_instructions=removed,
    )


def apply(merchant: Merchant, change: BrandEdit) -> list[str]:
    """Change `merchant`'s branding inside the caller's transaction; what changed, in words."""
    changes: list[str] = []
    name = None if change.no_display_name else change.display_name or merchant.display_name
    if name != merchant.display_name:
        changes.append(f"display name: {name or '- (account name)'}")
        merchant.display_name = name
    accent = None if change.no_accent else change.accent or merchant.accent
    if accent != merchant.accent:
        if accent:
            shown = palette(accent)
            changes.append(f"accent: {accent} (shown as {shown['light'].accent} in light, "
                           f"{shown['dark'].accent} in dark)")
        else:
            changes.append("accent: - (the site's own)")
        merchant.accent = accent
    current = merchant.logo
    if change.no_logo and current is not None:
        merchant.logo = None  # delete-orphan: the row goes
        changes.append("logo: removed")
    elif change.logo is not None and (current is None or current.digest != change.logo.digest):
        if current is None:
            current = merchant.logo = MerchantLogo(merchant_id=merchant.client_id)
        current.png, current.digest = change.logo.png, change.logo.digest
        current.width, current.height = change.logo.width, change.logo.height
        changes.append(f"logo: {change.logo.width}x{change.logo.height} PNG, "
                       f"{len(change.logo.png)} bytes")
    texts = {} if change.no_instructions else merchant.instructions
    missing = [lang for lang in change.remove_instructions if lang not in texts]
    if missing:
        raise BrandError(f"there are no instructions for {missing[0]!r} (set: "
                         f"{', '.join(sorted(texts)) or 'none'}); nothing was changed")
    for lang in change.remove_instructions:
        del texts[lang]
    texts.update(dict(change.instructions))
    if len(texts) > MAX_INSTRUCTION_LANGUAGES:
        raise BrandError(lazy_gettext("at most %(count)s languages of instructions",
                                      count=MAX_INSTRUCTION_LANGUAGES))
    if texts != merchant.instructions:
        changes.append(f"instructions: {', '.join(sorted(texts)) or '-'}")
        merchant.instructions = texts
    return changes


def branding_summary(merchant: Merchant) -> str:
    """The branding for `merchant list`; empty when none is set."""
    logo = merchant.logo
    parts = []
    if merchant.display_name:
        parts.append(f"display name: {merchant.display_name}")
    if merchant.accent:
        parts.append(f"accent: {merchant.accent}")
    if logo is not None:
        parts.append(f"logo: {logo.width}x{logo.height}")
    if merchant.instructions:
        parts.append(f"instructions: {', '.join(sorted(merchant.instructions))}")
    return "\t".join(parts)
