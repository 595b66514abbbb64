"""Which language a customer gets, and how it follows them: `?lang=`, then the same `?lang=`
carried on every link, form and refresh of the page (no cookie), then the browser's
Accept-Language, then the merchant's default, then English. Numbers keep every digit."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from hypothesis import given
from hypothesis import strategies as st
from kit.catalogues import pseudo_catalogue, seed_xrp_customer
from kit.site import MERCHANT_SECRET
from werkzeug.wrappers import Request

from checkout import i18n, merchants, terminal
from checkout.models import Merchant


@given(header=st.one_of(
    st.text(alphabet="abcdefzhptHansDE-_,;=q.0123456789 *", max_size=600),
    st.lists(st.sampled_from(["de-AT", "zh-TW", "pt", "en;q=0.5", "ar;q=0.9", "*", "x"]),
             max_size=80).map(", ".join)))
def test_the_browsers_choice_is_read_alike_whether_its_header_is_kept_or_not(
        header: str) -> None:
    """Each Accept-Language is read once per process (a short one is kept); the choice is
    the one werkzeug's reading of it gives, and a long header is never kept."""
    asking = Request({"HTTP_ACCEPT_LANGUAGE": header})
    expected = next((chosen for asked, _q in asking.accept_languages
                     if (chosen := i18n.match(asked, i18n.LANGUAGES))), None)
    before = i18n.first_served.kept.cache_info().currsize
    assert i18n.browser_choice(asking, i18n.LANGUAGES) == expected
    if len(header) > i18n.first_served.longest:
        assert i18n.first_served.kept.cache_info().currsize == before


@pytest.mark.parametrize(("asked", "served"), [
    ("de", "de"), ("DE", "de"), ("de-AT", "de"), ("de_CH", "de"), ("pt-BR", "pt_BR"),
    ("pt_br", "pt_BR"), ("pt", "pt_BR"), ("pt-PT", "pt_BR"), ("zh", "zh_Hans"),
    ("zh-CN", "zh_Hans"), ("zh-Hans", "zh_Hans"), ("zh-Hans-CN", "zh_Hans"),
    ("zh_Hans", "zh_Hans"), ("ar-EG", "ar"), ("ja-JP", "ja"), ("en-US", "en"),
    # Traditional Chinese is not answered in Simplified; the next preference decides.
    ("zh-TW", None), ("zh-Hant", None), ("zh-HK", None),
    # Not a language, or hostile: ignored.
    ("xx", None), ("", None), (None, None), ("de;drop", None), ("<script>", None),
    ("de\x00", None), ("d" * 200, None), ("../de", None), ("*", None),
])
def test_a_language_tag_finds_the_language_served(asked: str | None, served: str | None) -> None:
    assert i18n.match(asked, i18n.LANGUAGES) == served


@pytest.mark.parametrize(("value", "locale", "shown"), [
    ("1234.50000000", "de", "1.234,50000000"),
    ("0.00012300", "de", "0,00012300"),
    ("1234567.1", "en", "1,234,567.1"),
    ("12345.5", "es", "12.345,5"),
    ("1234.5", "fr", "1\u202f234,5"),
    ("999", "de", "999"),
    ("-1234.5", "de", "-1.234,5"),
    # Not a plain decimal: shown exactly as it came, never rounded or invented.
    ("1e3", "de", "1e3"), ("NaN", "de", "NaN"), ("", "de", ""), (None, "de", ""),
    ("１２３", "de", "１２３"), ("1_000", "de", "1_000"), (".5", "de", ".5"),
])
def test_numbers_are_written_in_the_locales_marks(value: str | None, locale: str,
                                                  shown: str) -> None:
    assert i18n.number(value, locale) == shown


@given(st.decimals(min_value=0, max_value=10**12, places=18, allow_nan=False),
       st.sampled_from(i18n.LANGUAGES))
def test_a_crypto_amount_never_loses_a_digit(value: Decimal, locale: str) -> None:
    plain = format(value, "f")
    decimal, group, _min = i18n.symbols(locale)
    shown = i18n.number(plain, locale)
    assert shown.replace(group, "").replace(decimal, ".") == plain


# ---------------------------------------------------------------- a page in two languages


@pytest.fixture
def polyglot(make_app: Callable[..., Flask], tmp_path: Path) -> Flask:
    """English, German (the real catalogue) and the pseudo-language."""
    folder = tmp_path / "translations"
    pseudo_catalogue(folder)
    (folder / "de" / "LC_MESSAGES").mkdir(parents=True)
    source = i18n.TRANSLATIONS / "de" / "LC_MESSAGES" / "messages.po"
    (folder / "de" / "LC_MESSAGES" / "messages.po").write_bytes(source.read_bytes())
    app = make_app(LANGUAGES=i18n.catalogue_languages(folder, ["en", "de", "eo"]),
                   BABEL_TRANSLATION_DIRECTORIES=str(folder))
    seed_xrp_customer(app)
    return app


def open_link(client: FlaskClient, lang: str | None = None, **headers: str) -> str:
    query = terminal.encode_link(
        {"client_id": 11, "currency": "XRP", "foreign_id": "ORDER-77", "amount": "1234.5",
         "convert_to": "EUR", "url_back": "https://shop.example/back"}, MERCHANT_SECRET)
    if lang is not None:
        query["lang"] = lang
    opened = client.get("/terminal", query_string=query, headers=headers)
    assert opened.status_code == 303, opened.get_data(as_text=True)
    return str(opened.headers["Location"])


def html_lang(html: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', html)
    assert found
    return found.group(1)


def test_the_shops_lang_carries_over_to_every_url_the_page_builds(polyglot: Flask) -> None:
    client = polyglot.test_client()
    location = open_link(client, lang="de-DE")
    assert location.endswith("?lang=de")
    html = client.get(location).get_data(as_text=True)
    assert html_lang(html) == "de"
    page_path = location.split("?")[0]
    # Every URL but the picker's, which names each language itself.
    built = re.findall(r'(?:href|src|action|data-status-url|data-qr-url)="([^"]+)"',
                       re.sub(r'<nav class="languages.*?</nav>', "", html, flags=re.S))
    ours = [url for url in built if url.startswith(page_path)]
    assert {page_path + "/status?lang=de", page_path + "/qr.svg?lang=de"} <= set(ours)
    assert all("lang=de" in url for url in ours), ours
    # The no-JavaScript refresh link is the page's own URL.
    assert f'href="{page_path}?lang=de"' in html
    # Shared files stay cacheable: no language on them.
    assert all("lang=" not in url for url in built if url.startswith("/static/"))


def test_without_lang_the_browser_decides_then_the_merchant_then_english(
        polyglot: Flask, runner_for: Callable[[Flask], FlaskCliRunner]) -> None:
    client = polyglot.test_client()
    page = open_link(client)
    assert "lang=" not in page
    assert html_lang(client.get(page).get_data(as_text=True)) == "en"
    german = {"Accept-Language": "fr-CH, de;q=0.9, en;q=0.8"}
    assert html_lang(client.get(page, headers=german).get_data(as_text=True)) == "de"
    result = runner_for(polyglot).invoke(
        args=["merchant", "edit", "--client-id", "11", "--language", "de"])
    assert result.exit_code == 0, result.output
    assert "language: de" in result.output
    # No language the site speaks in the browser's list: the merchant's default.
    assert html_lang(client.get(page, headers={"Accept-Language": "fi"})
                     .get_data(as_text=True)) == "de"
    assert html_lang(client.get(page).get_data(as_text=True)) == "de"
    # The status the script polls speaks the same language (the network's name).
    assert client.get(page + "/status").get_json()["network"] == "XRP Ledger"
    # The browser's own choice still comes first, and ?lang= before it.
    assert html_lang(client.get(page, headers={"Accept-Language": "en"})
                     .get_data(as_text=True)) == "en"
    assert html_lang(client.get(page + "?lang=en", headers=german)
                     .get_data(as_text=True)) == "en"


@pytest.fixture
def runner_for() -> Callable[[Flask], FlaskCliRunner]:
    return lambda app: app.test_cli_runner()


@pytest.mark.parametrize("value", ["xx", "", "de;drop", "klingon", "zh-TW"])
def test_a_merchant_language_the_site_does_not_speak_is_refused(
        app: Flask, runner: FlaskCliRunner, merchant: Merchant, value: str) -> None:
    result = runner.invoke(args=["merchant", "edit", "--client-id", "11", "--language", value])
    assert result.exit_code != 0
    assert "is not one this site speaks" in result.output
    with app.app_context():
        assert merchants.by_client_id(11).language is None  # type: ignore[union-attr]


def test_a_merchant_is_added_with_its_language_in_any_spelling(
        app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["merchant", "add", "--client-id", "12", "--name", "Loja",
                                 "--key", "k-12", "--secret", "s-12", "--language", "pt-br"])
    assert result.exit_code == 0, result.output
    assert "language: pt-BR" in result.output
    with app.app_context():
        assert merchants.by_client_id(12).language == "pt_BR"  # type: ignore[union-attr]


def test_a_verified_link_that_cannot_open_answers_in_the_merchants_language(
        make_app: Callable[..., Flask]) -> None:
    app = make_app(PROCESSOR_URL="http://127.0.0.1:9/api/v2", PROCESSOR_TIMEOUT=0.5)
    with app.app_context():
        merchants.add(merchants.NewMerchant(11, "Shop", "k-11", MERCHANT_SECRET,
                                            ("shop.example",), language="de"))
    query = terminal.encode_link({"client_id": 11, "currency": "BTC", "foreign_id": "o-1"},
                                 MERCHANT_SECRET)
    client = app.test_client()
    busy = client.get("/terminal", query_string=query)
    assert busy.status_code == 503
    assert html_lang(busy.get_data(as_text=True)) == "de"
    assert "Erneut versuchen" in busy.get_data(as_text=True)
    asked = client.get("/terminal", query_string=query, headers={"Accept-Language": "en"})
    assert html_lang(asked.get_data(as_text=True)) == "en"


def test_a_hostile_lang_is_ignored_and_never_echoed(polyglot: Flask) -> None:
    client = polyglot.test_client()
    page = open_link(client).split("?")[0]
    for hostile in ['"><script>alert(1)</script>', "de\r\nSet-Cookie: x=1", "d" * 5000]:
        response = client.get(page, query_string={"lang": hostile})
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert html_lang(html) == "en"
        assert "<script>alert" not in html and "Set-Cookie" not in html
        assert "d" * 100 not in html


def test_the_picker_links_each_language_in_its_own_name_without_script(
        polyglot: Flask) -> None:
    client = polyglot.test_client()
    page = open_link(client, lang="de").split("?")[0]
    html = client.get(page + "?lang=de").get_data(as_text=True)
    nav = re.search(r'<nav class="languages[^"]*" aria-label="Sprache">(.*?)</nav>', html, re.S)
    assert nav, "a labelled list of links"
    links = re.findall(r'<a href="([^"]+)" hreflang="([^"]+)" lang="([^"]+)"([^>]*)>([^<]+)</a>',
                       nav.group(1))
    assert [(href, tag, name) for href, tag, _lang, _current, name in links] == [
        (f"{page}?lang=en", "en", "English"), (f"{page}?lang=de", "de", "Deutsch"),
        (f"{page}?lang=eo", "eo", "Esperanto")]
    assert [current.strip() for *_rest, current, _name in links] == [
        "", 'aria-current="true"', ""]


def test_the_picker_on_a_link_error_keeps_the_link(polyglot: Flask) -> None:
    client = polyglot.test_client()
    html = client.get("/terminal?data=bm90LWpzb24&signature=00&lang=de").get_data(as_text=True)
    assert "/terminal?data=bm90LWpzb24&amp;signature=00&amp;lang=en" in html


def test_amounts_read_in_the_language_and_copy_plain(polyglot: Flask) -> None:
    client = polyglot.test_client()
    html = client.get(open_link(client, lang="de")).get_data(as_text=True)
    amount = re.search(r'<span data-field="amount"[^>]*data-plain="([^"]+)">([^<]+)</span>', html)
    assert amount and amount.groups() == ("1234.5", "1.234,5")
    assert "ca. 617,25 EUR" in html  # the fiat value in German marks
    assert '"decimal": ","' in html, "the script writes numbers with the same marks"


def test_a_catalogue_not_compiled_is_compiled_at_start_and_a_missing_one_not_offered(
        make_app: Callable[..., Flask], tmp_path: Path, caplog: Any) -> None:
    folder = tmp_path / "translations" / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "messages.po").write_bytes(
        (i18n.TRANSLATIONS / "de" / "LC_MESSAGES" / "messages.po").read_bytes())
    served = i18n.catalogue_languages(tmp_path / "translations", ["en", "de", "fr"])
    assert served == ["en", "de"]
    assert (folder / "messages.mo").exists()
    assert "compiling" in caplog.text and "not offered: fr" in caplog.text
