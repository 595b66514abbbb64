"""Translation catalogues made for a test: a pseudo-language that shows any unwrapped English,
and a customer with an XRP page to look at in it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from flask import Flask

from checkout import ROOT, clock, db, i18n, merchants
from checkout.models import DepositAddress, RateQuote
from kit.site import MERCHANT_SECRET

LANGUAGE_NAMES = [*i18n.NAMES.values(), i18n.native_name("eo")]


PSEUDO = "eo"  # a real locale Babel knows, standing in for a translation of every message


XRP_ADDRESS = "r94qxp2ChX1aXkaasqMY2PHN3MQAYzj573"


def pseudo(message: str) -> str:
    return f"⟦{message}⟧"


def pseudo_catalogue(folder: Path) -> None:
    """Extract messages exactly as `make messages` does and translate each as ⟦message⟧."""
    catalog = Catalog(locale=PSEUDO)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None,
                "lazy_gettext": None}
    method_map = [("checkout/**.py", "python"), ("templates/**.html", "jinja2")]
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, keywords=keywords):
        if isinstance(message, tuple):
            catalog.add(message, tuple(pseudo(m) for m in message))
        else:
            catalog.add(message, pseudo(message))
    target = folder / PSEUDO / "LC_MESSAGES"
    target.mkdir(parents=True)
    with open(target / "messages.mo", "wb") as handle:
        write_mo(handle, catalog)


class TextOf(HTMLParser):
    """Visible text and the attributes a person reads or hears."""

    SPOKEN = {"alt", "title", "aria-label", "placeholder", "data-copied",
              "data-confirmations"}

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.chunks += [value for name, value in attrs if name in self.SPOKEN and value]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.chunks.append(data)


def untranslated(html: str, data: list[str]) -> list[str]:
    """What is left of each chunk once messages, data values, numbers and marks are removed."""
    parser = TextOf()
    parser.feed(html)
    left = []
    for chunk in parser.chunks:
        rest, nested = chunk, 1
        while nested:  # a message may hold another, e.g. "Copy %(label)s"
            rest, nested = re.subn(r"⟦[^⟦⟧]*⟧", " ", rest)
        # The picker names each language in itself, on purpose: data, not a message.
        for value in sorted([*data, *LANGUAGE_NAMES], key=len, reverse=True):
            rest = rest.replace(value, " ")
        rest = re.sub(r"[\d\s.,:·()\-–/%]+", "", rest)
        if rest:
            left.append(chunk.strip())
    return left


def seed_xrp_customer(app: Flask) -> None:
    """Merchant 11 and its customer ORDER-77, who pays XRP to a tagged address taken before,
    at a fresh rate: a link opens a page without the processor."""
    with app.app_context():
        merchants.add(merchants.NewMerchant(11, "Shop", "k-11", MERCHANT_SECRET,
                                            ("shop.example",)))
        with db.transaction() as s:
            s.add(DepositAddress(merchant_id=11, foreign_id="ORDER-77", currency="XRP",
                                 convert_to="EUR", address=XRP_ADDRESS, tag="100001"))
            s.add(RateQuote(currency_from="XRP", currency_to="EUR", rate="0.5",
                            fetched_at=clock.now()))
