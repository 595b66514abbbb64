"""GET/POST /find: a form without script or cookie; an exact match answers with the page's
link, every miss with the same neutral words and nothing else; bad text a clear 400; its own
tight rate limit (429), which names the view that answers the search."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import deposit_body, issue_address, post
from kit.counters import statements
from kit.deposits import BTC_ADDRESS, LINK, open_link

from checkout.models import Merchant
from checkout.web import ratelimit

TXID = "ab" * 32
MISS = "No payment matches exactly."


@pytest.fixture
def app(make_app: Any) -> Flask:
    """The search's own limit is the subject of its own tests only."""
    return make_app(RATELIMIT_FIND="1000 per minute")


@pytest.fixture
def paid_page(app: Flask, client: FlaskClient, merchant: Merchant, address: Any,
              fresh_rate: None) -> str:
    """A page of merchant 11's customer, paid by the transaction TXID: its path."""
    page = open_link(client)
    body = deposit_body(1, "confirmed", address=BTC_ADDRESS, foreign_id=str(LINK["foreign_id"]),
                        amount="0.00123", txid=TXID)
    assert post(client, body).status_code == 200
    return page


def search(client: FlaskClient, text: str, tag: str = "", **query: str) -> Any:
    return client.post("/find", data={"text": text, "tag": tag}, query_string=query)


def links(html: str) -> list[str]:
    return re.findall(r'<a href="(/p/[^"]+)" data-field="find-link">', html)


def test_the_form_needs_no_script_and_no_cookie(client: FlaskClient) -> None:
    response = client.get("/find")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert '<form method="post" action="/find"' in html
    assert 'name="text"' in html and 'name="tag"' in html
    assert "<script" not in html and "style=" not in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("key", ["txid", "TXID", "address"])
def test_an_exact_match_answers_with_the_page_s_link(client: FlaskClient, paid_page: str,
                                                     key: str) -> None:
    text = {"txid": TXID, "TXID": TXID.upper(), "address": BTC_ADDRESS}[key]
    response = search(client, text)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert links(html) == [paid_page]
    assert "http://localhost" + paid_page in html  # its address, to keep
    assert MISS not in html
    # Nothing about the payment itself: the page behind the link says that.
    for secretive in ("Shop", "0.00123", "confirmed", "user-7"):
        assert secretive not in html.replace('value="', "")
    assert client.get(paid_page).status_code == 200


def test_the_link_keeps_the_language_asked_for(client: FlaskClient, paid_page: str) -> None:
    html = search(client, TXID, lang="de").get_data(as_text=True)
    assert links(html) == [paid_page + "?lang=de"]
    assert "Zahlung" in html
    # The language links read the search page again; they never post the search.
    assert 'href="/find?lang=ar"' in html


def without_echo(html: str) -> str:
    return re.sub(r'(name="(?:text|tag)"[^>]*value=")[^"]*"', r'\1"', html)


def test_every_miss_is_the_same_answer_but_for_the_echoed_text(
        client: FlaskClient, paid_page: str) -> None:
    misses = [TXID[:-1], TXID[:32], BTC_ADDRESS[:-1], BTC_ADDRESS + "0", "order-7", "user-7",
              paid_page.rsplit("/", 1)[1], "%", "' OR 1=1 --", "Shop",
              BTC_ADDRESS.replace("a", "\u0430"), "x" * 128]
    answers = [search(client, text) for text in misses]
    assert {a.status_code for a in answers} == {200}
    bodies = {without_echo(a.get_data(as_text=True)) for a in answers}
    assert len(bodies) == 1
    body = bodies.pop()
    assert MISS in body and not links(body)
    assert "Shop" not in body and "0.00123" not in body


@pytest.mark.parametrize(("form", "message"), [
    ({"text": ""}, "Please enter a transaction ID or an address."),
    ({"text": "   \t "}, "Please enter a transaction ID or an address."),
    ({}, "Please enter a transaction ID or an address."),
    ({"text": "x" * 129}, "at most 128 characters"),
    ({"text": "ab\x00cd"}, "invisible or control characters"),
    ({"text": "\u202e" + TXID}, "invisible or control characters"),
    ({"text": BTC_ADDRESS, "tag": "1" * 65}, "at most 64 characters"),
])
def test_unusable_text_gets_a_clear_400_and_is_not_shown_again(
        client: FlaskClient, paid_page: str, form: dict[str, str], message: str) -> None:
    response = client.post("/find", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in html
    assert not links(html) and MISS not in html
    assert "x" * 129 not in html and "\x00" not in html and "\u202e" not in html


def test_bytes_that_are_not_text_get_a_400(client: FlaskClient) -> None:
    response = client.post("/find", data=b"text=%FF%FE",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


def test_a_search_costs_one_statement_whatever_it_finds(app: Flask, client: FlaskClient,
                                                       paid_page: str) -> None:
    for text in (TXID, BTC_ADDRESS, "nothing-here"):
        with statements(app) as seen:
            assert search(client, text).status_code == 200
        assert len(seen) == 1, seen


def test_searches_are_limited_per_address_with_a_429(make_app: Any) -> None:
    app = make_app(RATELIMIT_FIND="3 per minute")
    client = app.test_client()
    codes = [search(client, f"{n:064x}").status_code for n in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = search(client, TXID)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many requests" in refused.get_data(as_text=True)
    # Refused text counts too: a script cannot probe for free with bad input.
    other = make_app(RATELIMIT_FIND="2 per minute").test_client()
    assert [other.post("/find", data={"text": t}).status_code
            for t in ("", "\x00", "x")] == [400, 400, 429]
    # Reading the form is a page view, not a search.
    assert client.get("/find").status_code == 200


def test_the_default_limit_is_tight_and_a_setting(make_app: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_app().config["RATELIMIT_FIND"] == "10 per minute; 50 per hour"
    monkeypatch.setenv("CHECKOUT_RATELIMIT_FIND", "1 per hour")
    client = make_app().test_client()
    assert [search(client, "x").status_code for _ in range(2)] == [200, 429]


def test_the_find_limit_names_the_search_view(app: Flask) -> None:
    """A limit on a name no view has would leave the search unlimited: refused instead."""
    adapter = app.url_map.bind("localhost")
    endpoint, _ = adapter.match("/find", method="POST")
    limiter = app.extensions[ratelimit.EXTENSION]
    ratelimit.limit_views(app, limiter, "RATELIMIT_FIND", endpoint)  # a real name: fine
    with pytest.raises(LookupError, match="find.serch"):
        ratelimit.limit_views(app, limiter, "RATELIMIT_FIND", "find.serch")


def test_the_front_page_and_a_lost_page_lead_to_the_search(client: FlaskClient) -> None:
    assert 'href="/find"' in client.get("/").get_data(as_text=True)
    lost = client.get("/p/" + "a" * 32)
    assert lost.status_code == 404
    assert 'href="/find"' in lost.get_data(as_text=True)


def test_a_shared_address_without_its_tag_is_a_miss(app: Flask, client: FlaskClient,
                                                    merchant: Merchant) -> None:
    xrp = "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh"
    _, page = issue_address(app, address=xrp, currency="XRP", foreign_id="c", tag="42")
    assert MISS in search(client, xrp).get_data(as_text=True)
    assert links(search(client, xrp, "42").get_data(as_text=True)) == ["/p/" + page]
