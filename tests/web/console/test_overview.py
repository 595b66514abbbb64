"""The overview page: the period in the URL, figures that link into the lists with their
filters, a bad period refused with a message, nothing of another merchant."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from flask import Flask
from kit.console import add_person, sign_in
from kit.console_rows import add_merchant, callback, delivery, deposit_page, invoice_page

from checkout import clock, db

A, B = 11, 22
# The site's own clock: sign-in codes are of the real time, so the rows are placed around it.
NOW = clock.system_now()
TODAY = NOW.date()


def _day(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).isoformat()


@pytest.fixture
def site(app: Flask) -> Flask:
    add_merchant(app, A, "Shop A")
    add_merchant(app, B, "Shop B")
    with app.app_context(), db.transaction() as session:
        deposit_page(session, A, status="confirmed", paid="0.1", rate="30000", fiat="EUR",
                     at=NOW - timedelta(days=12))
        invoice_page(session, A, status="failed", reason="expired", amount="19.99",
                     pay_currency="ETH", at=NOW - timedelta(days=29))
        deposit_page(session, A, status="confirmed", at=NOW - timedelta(days=31))  # too old
        delivery(session, A, state="pending", error="HTTP 500", at=NOW)
        delivery(session, A, state="failed", error="HTTP 500", at=NOW)
        callback(session, A, outcome="flagged", flag="unknown address", at=NOW)
        deposit_page(session, B, status="confirmed", currency="LTC", foreign_id="order-of-b",
                     at=NOW - timedelta(days=1))
        delivery(session, B, state="failed", error="HTTP 500", at=NOW)
    return app


def _links(html: str) -> dict[str, str]:
    """href -> the link's text, for the links inside the main part."""
    main = html.split('<main', 1)[1]
    return {unescape(href): text for href, text in
            re.findall(r'<a href="([^"]+)">([^<]*)</a>', main)}


def test_each_figure_links_into_its_list_with_the_filters(site: Flask) -> None:
    client = site.test_client()
    sign_in(site, client, add_person(site, "acc@a.example", roles={A: "accountant"}))
    page = client.get("/console/")
    assert page.status_code == 200
    links = _links(page.text)
    span = f"from={_day(29)}&to={_day(0)}"  # the default: the last 30 days up to today
    assert links == {
        f"/console/payments?merchant={A}&currency=BTC&status=confirmed&{span}": "1",
        f"/console/payments?merchant={A}&currency=ETH&status=expired&{span}": "1",
        f"/console/deliveries?state=failing&merchant={A}": "1",
        f"/console/deliveries?state=given_up&merchant={A}": "1",
        f"/console/flagged?merchant={A}&{span}": "1",
    }
    assert "3,000.00 EUR" in page.text and "19.99 EUR" in page.text
    assert "Shop B" not in page.text and "LTC" not in page.text


def test_the_period_comes_from_the_url(site: Flask) -> None:
    client = site.test_client()
    sign_in(site, client, add_person(site, "op@site.example", operator=True))
    span = f"from={_day(13)}&to={_day(11)}"
    links = _links(client.get(f"/console/?{span}").text)
    assert f"/console/payments?merchant={A}&currency=BTC&status=confirmed&{span}" in links
    assert not any("ETH" in href or "LTC" in href for href in links)
    # The operator sees every merchant: B's delivery given up now (B's payment is newer
    # than that period).
    assert f"/console/deliveries?state=given_up&merchant={B}" in links
    assert f"/console/payments?merchant={B}&currency=LTC&status=confirmed" in "".join(
        _links(client.get("/console/").text))


@pytest.mark.parametrize("query", [
    "from=2026-02-30", "from=20260101", "to=99999-01-01", "from=2026-03-10&to=2026-03-01",
    "from=" + "9" * 5000, "to=%00", "from=2026-03-10%27%20OR%201=1",
])
def test_a_bad_period_gets_a_message_and_no_figures(site: Flask, query: str) -> None:
    client = site.test_client()
    sign_in(site, client, add_person(site, "v@a.example", roles={A: "viewer"}))
    answer = client.get(f"/console/?{query}")
    assert answer.status_code == 400
    assert 'role="alert"' in answer.text
    assert "/console/payments?" not in answer.text  # no figure links into the list
    assert "<script" not in answer.text.lower()


def test_a_user_of_another_merchant_sees_nothing_of_it(site: Flask) -> None:
    client = site.test_client()
    sign_in(site, client, add_person(site, "owner@b.example", roles={B: "owner"}))
    page = client.get(f"/console/?from={_day(60)}")
    assert "Shop A" not in page.text and f"merchant={A}" not in page.text
    assert f"merchant={B}" in page.text and "order-of-b" not in page.text
