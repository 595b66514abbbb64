"""Every page state reads in every language the site has a catalogue for, and in the
pseudo-language that finds unwrapped text; right-to-left pages keep money left-to-right.

States are reached as a customer reaches them: a shop's signed terminal link or the invoice
API, payments through the embedded processor (its signed callbacks, the worker), the page's
own forms. The languages are the catalogues present in checkout/translations, so each one
merged later is covered without a change here.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from babel.dates import format_datetime
from babel.messages import extract
from babel.messages.catalog import Catalog
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from flask import Flask
from kit.catalogues import PSEUDO, TextOf, pseudo_catalogue, untranslated
from kit.invoices import ORDER, TestShop, advance_sandbox, settle
from kit.invoices import pay as sandbox_pay
from kit.live import LiveServer, start_live_server
from kit.site import MERCHANT_SECRET

from checkout import ROOT, currencies, i18n, merchants, terminal

TRANSLATIONS = ROOT / "checkout" / "translations"
CATALOGUES = sorted(p.parent.parent.name for p in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"))
SHOP = "Shop"


def read_catalogue(code: str) -> Catalog:
    with open(TRANSLATIONS / code / "LC_MESSAGES" / "messages.po", encoding="utf-8") as handle:
        return read_po(handle, locale=code)


def template() -> Catalog:
    with open(TRANSLATIONS / "messages.pot", encoding="utf-8") as handle:
        return read_po(handle)


# ---------------------------------------------------------------- the catalogues themselves


def test_every_catalogue_is_a_listed_language() -> None:
    """A catalogue nobody listed would never be served: one line in i18n.NAMES is needed."""
    assert CATALOGUES, "at least the German catalogue is present"
    assert set(CATALOGUES) <= set(i18n.LANGUAGES)


@pytest.mark.parametrize("code", [c for c in i18n.LANGUAGES if c != "en"])
def test_every_listed_language_has_a_compiled_catalogue(code: str) -> None:
    """`make run` and `make test` compile the catalogues before the app starts; the app
    compiles a stale one itself (i18n.catalogue_languages)."""
    folder = TRANSLATIONS / code / "LC_MESSAGES"
    if not (folder / "messages.po").exists():
        pytest.skip(f"no {code} catalogue in this branch yet (another helper writes it)")
    mo = folder / "messages.mo"
    assert mo.exists(), "run `make translations`"
    assert mo.stat().st_mtime >= (folder / "messages.po").stat().st_mtime


@pytest.mark.parametrize("code", CATALOGUES)
def test_a_catalogue_translates_every_message_with_every_plural_form(code: str) -> None:
    catalogue = read_catalogue(code)
    nplurals, _expression = get_plural(code)
    assert catalogue.num_plurals == nplurals, "Plural-Forms as CLDR has them for the language"
    wanted = {m.id if isinstance(m.id, str) else tuple(m.id) for m in template() if m.id}
    have = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in catalogue if m.id}
    assert sorted(map(str, wanted - set(have))) == [], "messages missing: run `make messages`"
    problems = []
    for key in sorted(wanted, key=str):
        message = have[key]
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(forms):
            problems.append(f"untranslated or fuzzy: {key!r}")
        if message.pluralizable and len(forms) != nplurals:
            problems.append(f"needs {nplurals} plural forms: {key!r}")
    problems += [f"{m.id!r}: {errors}" for m, errors in catalogue.check()]
    assert problems == []


def test_the_template_lists_every_message_the_code_wraps() -> None:
    """A wrapped string missing from messages.pot is in no catalogue: it reads in English
    in every language, and the test above cannot see it. Extracted as `make messages`
    does (babel.cfg, `_l` included)."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    wrapped = set()
    keywords = {**extract.DEFAULT_KEYWORDS, "N_": None, "_l": None, "lazy_gettext": None}
    for _file, _line, message, _comments, _context in extract.extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords):
        wrapped.add(message if isinstance(message, str) else tuple(message))
    listed = {m.id if isinstance(m.id, str) else tuple(m.id) for m in template() if m.id}
    assert sorted(map(str, wrapped - listed)) == []


# ---------------------------------------------------------------- driving the pages


@dataclass
class Site:
    live: LiveServer
    app: Flask
    shop: TestShop
    languages: list[str]
    seen: list[str] = field(default_factory=list)

    def link(self, **fields: Any) -> str:
        payload = {"client_id": 11, "currency": "BTC", "foreign_id": "order-1042",
                   "amount": "0.0012", "convert_to": "EUR",
                   "url_back": "https://shop.example/back", **fields}
        payload = {k: v for k, v in payload.items() if v is not None}
        opened = requests.get(
            f"{self.live.url}/terminal?{urlencode(terminal.encode_link(payload, MERCHANT_SECRET))}",
            allow_redirects=False, timeout=30)
        assert opened.status_code == 303, opened.text
        return self.live.url + opened.headers["Location"]

    def reached(self, page: str, phase: str) -> list[str]:
        assert self.model(page)["phase"] == phase, "the state the test means to read"
        return [page]

    def model(self, page: str) -> dict[str, Any]:
        return dict(requests.get(page + "/status", timeout=30).json())

    def pay(self, page: str, amount: str | None = None, status: str = "confirmed") -> None:
        model = self.model(page)
        sandbox_pay(self.live.url, model["address"], amount or model["amount_due"], status,
                    tag=model["tag"])
        settle(self.app)

    def confirm(self) -> None:
        advance_sandbox(self.live.url, 60)
        settle(self.app)
        settle(self.app)

    def invoice(self, **changes: Any) -> str:
        response = self.shop.create(ORDER, **changes)
        assert response.status_code == 200, response.text
        return str(response.json()["data"]["url"])

    def pick(self, page: str, currency: str = "BTC") -> None:
        html = requests.get(page, timeout=30).text
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
        assert match, "the picker carries its token"
        answer = requests.post(f"{page}/pick", data={"csrf_token": match.group(1),
                                                    "currency": currency},
                               allow_redirects=False, timeout=30)
        assert answer.status_code == 303, answer.text


@pytest.fixture
def site(make_app: Callable[..., Flask], tmp_path: Path) -> Iterator[Site]:
    """The real catalogues and the pseudo-language, side by side in one app."""
    folder = tmp_path / "translations"
    for code in CATALOGUES:
        target = folder / code / "LC_MESSAGES"
        target.mkdir(parents=True)
        shutil.copy(TRANSLATIONS / code / "LC_MESSAGES" / "messages.po", target)
    pseudo_catalogue(folder)
    if "ar" not in CATALOGUES:
        # Right-to-left is tested before the Arabic catalogue lands: the pseudo-language's
        # messages under Arabic's name.
        shutil.copytree(folder / PSEUDO, folder / "ar")
    languages = i18n.catalogue_languages(folder, ["en", *CATALOGUES, "ar", PSEUDO])
    app = make_app(LANGUAGES=languages, BABEL_TRANSLATION_DIRECTORIES=str(folder))
    live = start_live_server(app)
    with app.app_context():
        merchants.add(merchants.NewMerchant(11, SHOP, "test-key-11", MERCHANT_SECRET,
                                            ("shop.example",), ("https://shop.example",)))
    settle(app)  # the worker fetches the rates the pages show
    yield Site(live, app, TestShop(live.url), languages)
    live.server.shutdown()
    live.server.server_close()


# Each state: how a customer gets there, and the page(s) to read then. Not reached here: an
# invoice paid late or left unconfirmed too long (the sandbox offers no way there over HTTP);
# their messages are still checked in every catalogue above.
def deposit_waiting(site: Site) -> list[str]:
    page = site.link()
    return site.reached(page, "waiting")


def deposit_partial(site: Site) -> list[str]:
    page = site.link()
    site.pay(page, "0.0005")
    return site.reached(page, "partial")


def deposit_seen(site: Site) -> list[str]:
    page = site.link()
    site.pay(page, status="not_confirmed")
    return site.reached(page, "confirming")


def deposit_paid(site: Site) -> list[str]:
    page = site.link()
    site.pay(page)
    return site.reached(page, "paid") + [page + "/receipt"]


def deposit_overpaid(site: Site) -> list[str]:
    page = site.link()
    site.pay(page, "0.002")
    return site.reached(page, "overpaid") + [page + "/receipt"]


def deposit_cancelled(site: Site) -> list[str]:
    page = site.link()
    site.pay(page, status="cancelled")
    return site.reached(page, "cancelled")


def deposit_below_minimum(site: Site) -> list[str]:
    page = site.link(currency="LTC", amount=None, foreign_id="customer-9")
    site.pay(page, "0.005")
    return site.reached(page, "below_minimum")


def deposit_rest_below_minimum(site: Site) -> list[str]:
    page = site.link(currency="LTC", amount="0.05")
    site.pay(page, "0.045")
    return site.reached(page, "partial")


def deposit_with_a_tag(site: Site) -> list[str]:
    page = site.link(currency="XRP", amount="25.5", foreign_id="order-xrp")
    return site.reached(page, "waiting")


def invoice_choose(site: Site) -> list[str]:
    page = site.invoice()
    return site.reached(page, "choose")


def invoice_email(site: Site) -> list[str]:
    page = site.invoice(timer=True, sender_currency="BTC", email_user=None)
    return site.reached(page, "email")


def invoice_waiting(site: Site) -> list[str]:
    page = site.invoice()
    site.pick(page)
    return site.reached(page, "waiting")


def invoice_paid(site: Site) -> list[str]:
    page = site.invoice()
    site.pick(page)
    site.pay(page)
    site.confirm()
    return site.reached(page, "paid") + [page + "/receipt"]


def invoice_requote(site: Site) -> list[str]:
    page = site.invoice()
    site.pick(page)
    advance_sandbox(site.live.url, 16 * 60)
    settle(site.app)
    return site.reached(page, "requote")


def invoice_expired(site: Site) -> list[str]:
    page = site.invoice(timer=True, sender_currency="BTC")
    advance_sandbox(site.live.url, 16 * 60)
    settle(site.app)
    return site.reached(page, "expired")


def invoice_underpaid(site: Site) -> list[str]:
    page = site.invoice(timer=True, sender_currency="BTC")
    site.pay(page, "0.00001")
    advance_sandbox(site.live.url, 16 * 60)
    settle(site.app)
    settle(site.app)
    return site.reached(page, "underpaid")


def invoice_cancelled(site: Site) -> list[str]:
    page = site.invoice()
    assert site.shop.cancel("order-7").status_code == 200
    settle(site.app)
    return site.reached(page, "cancelled_by_shop")


def error_pages(site: Site) -> list[str]:
    return [site.live.url + "/", site.live.url + "/find", site.live.url + "/p/no-such-page",
            site.live.url + "/terminal?data=bm90LWpzb24&signature=00"]


STATES = [deposit_waiting, deposit_partial, deposit_seen, deposit_paid, deposit_overpaid,
          deposit_cancelled, deposit_below_minimum, deposit_rest_below_minimum,
          deposit_with_a_tag, invoice_choose, invoice_email, invoice_waiting, invoice_paid,
          invoice_requote, invoice_expired, invoice_underpaid,
          invoice_cancelled, error_pages]
# What is data, not a message, on these pages.
DATA = [SHOP, "EUR", "order-1042", "customer-9", "order-xrp", "order-7", "Order 7", "Two books",
        "=", *{c.ticker for c in currencies.CURRENCIES.values()}]


# ---------------------------------------------------------------- what each language must show


def english_left(html: str, code: str) -> list[str]:
    """English text of messages that this language translates otherwise, found on the page:
    a whole text equal to one, or a stretch of several words of one."""
    translated = {}
    for message in read_catalogue(code):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for english in ids:
            if english not in strings:
                translated[english] = strings
    parser = TextOf()
    parser.feed(html)
    chunks = [" ".join(c.split()) for c in parser.chunks]
    found = [c for c in chunks if c in translated]
    for english in translated:
        for stretch in re.split(r"%\(\w+\)[sd]", english):
            stretch = stretch.strip(" .,:;()")
            if stretch.count(" ") >= 2 and any(stretch in c for c in chunks):
                found.append(stretch)
    return sorted(set(found))


def data_of(site: Site, url: str, code: str) -> list[str]:
    """Addresses, tags and transaction ids of the page, the support text's values, and the
    time it was paid as the locale writes it (CLDR's words, not ours)."""
    if "/p/" not in url or url.endswith("no-such-page"):
        return []
    model = site.model(url.removesuffix("/receipt"))
    values = [model["address"] or "", model["tag"] or ""]
    values += [tx["txid"] or "" for tx in model["transactions"]]
    # The support text's values are data by design (codes, decimals, ISO times): only its
    # labels are messages.
    values += [value for _key, value in model.get("support") or []]
    if model["receipt"]:
        paid_at = datetime.fromisoformat(model["receipt"]["paid_at"].removesuffix("Z"))
        values.append(format_datetime(paid_at.replace(tzinfo=UTC), "long", tzinfo=UTC,
                                      locale=code))
    return [v for v in values if v]


def assert_reads_in(html: str, code: str, data: list[str]) -> None:
    assert f'<html lang="{i18n.tag(code)}" dir="{i18n.text_direction(code)}">' in html
    if code == PSEUDO or (code == "ar" and "ar" not in CATALOGUES):
        assert "⟦" in html
        assert untranslated(html, data) == []
    elif code != "en":
        assert english_left(html, code) == []


def assert_money_stays_left_to_right(html: str) -> None:
    """Address, amounts, tag and QR are never mirrored, whatever the page's direction."""
    for name in ("address", "amount", "tag", "qr", "paid-amount", "countdown-time"):
        for tag in re.findall(rf'<[^>]*data-field="{name}"[^>]*>', html):
            assert 'dir="ltr"' in tag, tag
    for dd in re.findall(r'<dd[^>]*>\s*[-0-9.,\s]+\s+[A-Z]{3,5}\s*</dd>', html):
        assert 'dir="ltr"' in dd, dd


@pytest.mark.parametrize("state", STATES, ids=[s.__name__ for s in STATES])
def test_every_state_reads_in_every_language(site: Site, state: Callable[[Site], list[str]]
                                             ) -> None:
    for url in state(site):
        for code in site.languages:
            data = data_of(site, url, code)
            joiner = "&" if "?" in url else "?"
            html = requests.get(f"{url}{joiner}lang={i18n.tag(code)}", timeout=30).text
            try:
                assert_reads_in(html, code, DATA + data)
                assert_money_stays_left_to_right(html)
            except AssertionError as exc:
                raise AssertionError(f"{url} in {code}: {exc}") from exc


def test_arabic_mirrors_the_page_but_not_the_money(site: Site) -> None:
    html = requests.get(site.link(currency="XRP", amount="25.5") + "?lang=ar", timeout=30).text
    assert '<html lang="ar" dir="rtl">' in html
    assert_money_stays_left_to_right(html)
