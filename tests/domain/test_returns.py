"""Return URLs lead only to the merchant's own hosts: a corpus of hostile URLs is refused."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kit.returns import BRACKETED, shop_checks

from checkout import returns

HOSTS = ["shop.example", "pay.shop.example:8443"]
ONE_HOST = ["shop.example"]


@pytest.mark.parametrize("url", [
    "https://shop.example/",
    "https://shop.example",
    "http://shop.example/orders/42?done=1#top",
    "https://SHOP.example/Orders/42",
    "https://shop.example:443/explicit-default-port",
    "http://shop.example:80/explicit-default-port",
    "https://pay.shop.example:8443/back",
    "https://shop.example/path/with/%20encoded?q=a%26b",
])
def test_urls_on_the_merchants_hosts_are_kept_unchanged(url: str) -> None:
    assert returns.check(url, HOSTS) == url


@pytest.mark.parametrize(("url", "why"), [
    ("https://evil.example/", "another host"),
    ("https://shop.example.evil.example/", "suffix trick"),
    ("https://evilshop.example/", "prefix trick"),
    ("https://sub.shop.example/", "subdomain not listed"),
    ("https://shop.example@evil.example/", "userinfo trick"),
    ("https://user:pass@shop.example/", "credentials"),
    ("https://evil.example\\@shop.example/", "backslash userinfo"),
    ("https://evil.example\\shop.example/", "backslash as slash"),
    ("https:\\\\evil.example/", "backslash scheme-relative"),
    ("//evil.example/", "scheme-relative"),
    ("//shop.example/", "scheme-relative to the right host"),
    ("/orders/42", "relative path"),
    ("shop.example/orders", "no scheme"),
    ("javascript:alert(1)", "javascript"),
    ("JaVaScRiPt:alert(1)//https://shop.example/", "javascript mixed case"),
    ("data:text/html,<script>alert(1)</script>", "data"),
    ("ftp://shop.example/", "other scheme"),
    ("https:/shop.example/", "one slash"),
    ("https:shop.example/", "no slashes"),
    ("https://shop.example:8443/", "port not listed"),
    ("https://pay.shop.example/", "listed host without its port"),
    ("https://shop.example:99999/", "impossible port"),
    ("https://shop.example:abc/", "port not a number"),
    ("https://shоp.example/", "cyrillic o look-alike"),
    ("https://xn--shp-fdd.example/", "punycode of a look-alike"),
    ("https://shop.example。evil.example/", "ideographic full stop"),
    ("https://shop.ex\u200bample/", "zero-width space"),
    ("https://shop.example /", "space"),
    ("https://shop.example/\n", "newline"),
    ("\thttps://shop.example/", "leading tab"),
    ("https://shop.example%2eevil.example/", "encoded dot in host"),
    ("https://[::1]/", "IPv6 literal"),
    ("https://127.0.0.1/", "IP address"),
    ("https://shop.example/" + "a" * 2100, "too long"),
    ("", "empty"),
])
def test_hostile_return_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(returns.ReturnUrlError):
        returns.check(url, HOSTS)


@pytest.mark.parametrize("value", [
    None, 42, ["https://shop.example/"], {"url": "x"}, b"https://shop.example/"])
def test_a_return_url_must_be_text(value: object) -> None:
    with pytest.raises(returns.ReturnUrlError):
        returns.check(value, HOSTS)


def test_no_allowed_hosts_allows_nothing() -> None:
    with pytest.raises(returns.ReturnUrlError):
        returns.check("https://shop.example/", [])


@given(st.text(max_size=300))
def test_any_text_is_refused_or_kept_exactly_and_on_an_allowed_host(text: str) -> None:
    try:
        kept = returns.check(text, HOSTS)
    except returns.ReturnUrlError:
        return
    assert kept == text
    assert kept.lower().startswith(("https://shop.example", "http://shop.example",
                                    "https://pay.shop.example:8443", "http://pay.shop.example:8443"))


@given(st.sampled_from(["https://shop.example", "http://shop.example:80"]),
       st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=60))
def test_what_follows_an_allowed_host_never_changes_where_it_leads(base: str, tail: str) -> None:
    url = f"{base}/{tail}"
    try:
        returns.check(url, HOSTS)
    except returns.ReturnUrlError:
        return
    assert urlsplit(url).hostname == "shop.example"


# ---------------------------------------------------------------------------------------------
# Signed outcomes: what a shop's return handler can check (README, "Return URLs")




@pytest.mark.parametrize("foreign_id", ["order-7", "a b/ü&=?#", "0", "x" * 255])
def test_a_signed_outcome_verifies_with_the_shops_own_code(foreign_id: str) -> None:
    url = returns.signed_outcome("https://shop.example/done?order=7&lang=de%20x#top",
                                 status="confirmed", foreign_id=foreign_id, secret="s3cret")
    checked = shop_checks(url, "s3cret")
    assert checked is not None
    assert (checked["status"], checked["foreign_id"], checked["order"]) == (
        "confirmed", foreign_id, "7")
    assert "lang=de%20x" in url and url.endswith("#top")


def test_a_forged_outcome_does_not_verify() -> None:
    url = returns.signed_outcome("https://shop.example/done", status="failed",
                                 foreign_id="order-7", secret="s3cret")
    assert shop_checks(url.replace("status=failed", "status=confirmed"), "s3cret") is None
    assert shop_checks(url, "another-secret") is None


def test_outcome_parameters_already_in_the_url_are_replaced_not_doubled() -> None:
    url = returns.signed_outcome("https://shop.example/done?status=confirmed&signature=x&a=1",
                                 status="failed", foreign_id="o", secret="s")
    query = url.split("?", 1)[1]
    assert query.startswith("a=1&status=failed&foreign_id=o&signature=")
    assert query.count("status=") == 1 and query.count("signature=") == 1


@pytest.mark.parametrize("url", BRACKETED)
def test_a_bracket_in_the_host_is_a_refused_return_url_not_a_crash(url: str) -> None:
    with pytest.raises(returns.ReturnUrlError):
        returns.check(url, ONE_HOST)
