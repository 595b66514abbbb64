"""A page's HTML is rendered once per state (pagecache.py): a repeated view of an unchanged
page reads one row and renders nothing, yet shows the countdown of the moment it is served;
a callback, a language, a merchant's edit or a fiat value grown old each give a new
rendering; the kept copies are bounded."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from kit import kept_rows
from kit.callbacks import deposit_body, post
from kit.invoices import ORDER, TestShop, settle
from kit.links import page_of
from kit.live import LiveServer
from kit.renderings import unrendered
from kit.site import flask_requests, sql_statements
from werkzeug.test import Client

from checkout import branding, clock, merchants, rates
from checkout.models import Merchant
from checkout.web import front, pagecache

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "cache-1", "amount": "0.00123",
        "convert_to": "EUR"}
COUNTDOWN = re.compile(r'data-field="countdown-time" dir="ltr">(\d+):(\d\d)<')


def open_page(client: FlaskClient, **changes: Any) -> str:
    return page_of(client, {**LINK, **changes})


@pytest.fixture
def page(app: Flask, merchant: Merchant, live_server: LiveServer) -> str:
    settle(app)  # a fresh rate, so that the page shows a fiat value
    path = open_page(app.test_client())
    unrendered(app)  # as a link rendered ahead in another process, stored no longer
    return path



def test_a_second_view_of_an_unchanged_page_reads_one_row_and_renders_nothing(
        app: Flask, page: str, renders: list[str]) -> None:
    """On PostgreSQL the process keeps the state it read (web/pagerows.py): not even that."""
    keeps = kept_rows.listening(app) is not None
    client = app.test_client()
    first = client.get(page)
    assert first.status_code == 200 and renders == ["deposit.html"]
    again, sent = sql_statements(app, lambda: client.get(page))
    assert again.status_code == 200 and renders == ["deposit.html"]
    assert sent == ([] if keeps else ["SELECT"]), sent
    assert again.get_data() == first.get_data()
    assert again.headers["Cache-Control"] == "no-store"
    assert again.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]
    assert b"\x00" not in again.get_data()  # no marker is ever sent


def test_a_callback_gives_the_next_view_a_new_rendering(
        app: Flask, page: str, renders: list[str]) -> None:
    client = app.test_client()
    before = client.get(page).get_data(as_text=True)
    address = client.get(f"{page}/status").get_json()["address"]
    body = deposit_body(5100, "not_confirmed", address=address, foreign_id=LINK["foreign_id"],
                        amount="0.00123")
    assert post(client, body).status_code == 200
    after = client.get(page).get_data(as_text=True)
    assert len(renders) == 2 and after != before
    assert 'data-phase="confirming"' in after and 'data-phase="waiting"' in before


def test_each_language_and_each_address_has_its_own_rendering(
        app: Flask, page: str, renders: list[str]) -> None:
    client = app.test_client()
    german = client.get(page, headers={"Accept-Language": "de"}).get_data(as_text=True)
    english = client.get(page, headers={"Accept-Language": "en"}).get_data(as_text=True)
    chosen = client.get(f"{page}?lang=de", headers={"Accept-Language": "en"})
    assert '<html lang="de"' in german and '<html lang="en"' in english
    # The language picker's links carry the address they were rendered for.
    assert "lang=de" in chosen.get_data(as_text=True).split('data-status-url="', 1)[1][:80]
    assert len(renders) == 3
    client.get(page, headers={"Accept-Language": "de"})
    assert len(renders) == 3


def test_a_merchants_new_default_language_shows_on_the_next_view(
        app: Flask, page: str, renders: list[str]) -> None:
    client = app.test_client()
    assert '<html lang="en"' in client.get(page).get_data(as_text=True)
    with app.app_context():
        merchants.edit(11, merchants.MerchantEdit(language="de"))
    assert '<html lang="de"' in client.get(page).get_data(as_text=True)


def test_a_query_the_site_never_makes_is_rendered_and_not_kept(
        app: Flask, page: str, renders: list[str]) -> None:
    client = app.test_client()
    kept: pagecache.PageCache = app.extensions[pagecache.EXTENSION]
    for n in range(3):
        assert client.get(f"{page}?junk={n}").status_code == 200
    assert len(renders) == 3 and len(kept.entries) == 0
    client.get(f"{page}?lang=de")
    client.get(f"{page}?lang=de")
    assert len(renders) == 4 and len(kept.entries) == 1


@pytest.mark.parametrize("query", [b"lang=\xff", b"\xff\xfe=1", b"lang=%ff%fe"])
def test_an_undecodable_query_is_answered_by_flask_with_the_headers(
        app: Flask, page: str, query: bytes) -> None:
    client = app.test_client()
    client.get(page)  # kept: the front would answer a plain view
    for path in (page, f"{page}/status"):
        # As a server hands raw bytes to WSGI: each byte one latin-1 character.
        response = client.get(path, environ_overrides={"QUERY_STRING": query.decode("latin-1")})
        assert response.status_code in (200, 400), response.status_code
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"


def test_a_merchants_edit_shows_on_the_next_view(
        app: Flask, page: str, renders: list[str]) -> None:
    client = app.test_client()
    assert "Shop" in client.get(page).get_data(as_text=True)
    with app.app_context():
        merchants.edit(11, merchants.MerchantEdit(
            brand=branding.BrandEdit(display_name="Renamed Corner Store")))
    assert "Renamed Corner Store" in client.get(page).get_data(as_text=True)
    assert len(renders) == 2


def test_a_fiat_value_grown_old_is_rendered_away(
        app: Flask, page: str, renders: list[str]) -> None:
    client = app.test_client()
    assert "about " in client.get(page).get_data(as_text=True)
    later = clock.system_now() + timedelta(seconds=rates.SHOWN_MAX_AGE + 30)
    app.config["CLOCK"] = lambda: later
    html = client.get(page).get_data(as_text=True)
    fiat = html.split('data-field="fiat"', 1)[1][:40]
    assert fiat.startswith(" hidden") and len(renders) == 2


def test_the_kept_renderings_are_bounded(make_app: Any, merchant: Merchant) -> None:
    from kit.live import start_live_server

    app = make_app(PAGE_CACHE_SIZE=2)
    live = start_live_server(app)
    try:
        client = app.test_client()
        pages = [open_page(client, foreign_id=f"bounded-{n}") for n in range(3)]
        for path in pages:
            assert client.get(path).status_code == 200
        kept: pagecache.PageCache = app.extensions[pagecache.EXTENSION]
        assert len(kept.entries) == 2
        assert {key[0] for key in kept.entries} == {p.rsplit("/", 1)[1] for p in pages[1:]}
    finally:
        live.server.shutdown()
        live.server.server_close()


# ---------------------------------------------------------------- the countdown


def countdown_of(html: str) -> tuple[int, bool]:
    found = COUNTDOWN.search(html)
    assert found, "the page shows a countdown"
    urgent = 'class="countdown urgent"' in html
    return int(found[1]) * 60 + int(found[2]), urgent


@pytest.fixture
def quoted(app: Flask, merchant: Merchant, live_server: LiveServer) -> str:
    """An invoice page with its currency picked: a fixed rate, so a countdown."""
    settle(app)
    created = TestShop(live_server.url).create(ORDER)
    assert created.status_code == 200, created.text
    url = str(created.json()["data"]["url"])
    html = requests.get(url, timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert token
    picked = requests.post(f"{url}/pick", data={"csrf_token": token[1], "currency": "BTC"},
                           allow_redirects=False, timeout=30)
    assert picked.status_code == 303
    unrendered(app)
    return "/p/" + url.rsplit("/", 1)[1]


def test_the_countdown_of_a_kept_page_is_the_moment_of_serving(
        app: Flask, quoted: str, renders: list[str]) -> None:
    client = app.test_client()
    left, urgent = countdown_of(client.get(quoted).get_data(as_text=True))
    assert left > 300 and not urgent
    start = clock.system_now()
    app.config["CLOCK"] = lambda: start + timedelta(seconds=61)
    later, _ = countdown_of(client.get(quoted).get_data(as_text=True))
    assert 59 <= left - later <= 63
    app.config["CLOCK"] = lambda: start + timedelta(seconds=left - 100)
    near, urgent = countdown_of(client.get(quoted).get_data(as_text=True))
    assert 95 <= near <= 102 and urgent
    status = client.get(f"{quoted}/status").get_json()
    assert abs(status["seconds_left"] - near) <= 1  # the page and the poll agree
    assert renders.count("invoice.html") == 1


# ---------------------------------------------------------------- in front of Flask


@pytest.mark.parametrize("asking", [
    {},
    {"headers": {"Accept-Language": "de-AT,de;q=0.9"}},
    {"query_string": "lang=ar"},
    {"query_string": "lang=fr", "headers": {"Accept-Language": "de"}},
])
def test_a_page_viewed_again_never_reaches_flask_and_answers_what_flask_does(
        app: Flask, page: str, asking: dict[str, Any]) -> None:
    client = app.test_client()
    first = client.get(page, **asking)
    handled = flask_requests(app)
    again = client.get(page, **asking)
    assert again.status_code == 200 and handled == []
    assert isinstance(app.wsgi_app, front.Front)
    app.extensions[pagecache.EXTENSION].entries.clear()  # Flask renders it anew
    behind = Client(app.wsgi_app.inner).get(page, **asking)
    assert handled == [page]
    assert again.get_data() == first.get_data() == behind.get_data()

    def headers(response: Any) -> set[tuple[str, str]]:
        return {(k, v) for k, v in response.headers.items() if k != "Date"}

    assert headers(again) == headers(behind)


def test_a_framed_page_viewed_again_keeps_its_frame_ancestors(
        app: Flask, merchant: Merchant, live_server: LiveServer) -> None:
    client = app.test_client()
    framed = open_page(client, foreign_id="framed-1", is_iframe=True)
    first = client.get(framed)
    again = client.get(framed)
    policy = again.headers["Content-Security-Policy"]
    assert policy == first.headers["Content-Security-Policy"]
    assert "frame-ancestors https://shop.example" in policy
    assert "X-Frame-Options" not in again.headers


def test_page_views_are_counted_once_each_and_refused_past_the_limit(
        make_app: Any, merchant: Merchant) -> None:
    from kit.live import start_live_server

    app = make_app(RATELIMIT_PAGES="3 per minute")
    live = start_live_server(app)
    try:
        client = app.test_client()
        path = open_page(client)
        codes = [client.get(path).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = client.get(path)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert "Too many requests" in refused.get_data(as_text=True)
    finally:
        live.server.shutdown()
        live.server.server_close()
