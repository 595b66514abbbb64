"""The overview page: the period in the URL, figures that link into the lists with their
filters, a bad period refused with a message, nothing of another merchant."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.console import add_person, sign_in
from kit.console_rows import add_merchant, callback, delivery, deposit_page, invoice_page

from checkout import clock, db
from checkout.models import Page

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
        f"/console/payments?merchant={A}&currency=BTC&status=paid&{span}": "1",
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
    assert f"/console/payments?merchant={A}&currency=BTC&status=paid&{span}" in links
    assert not any("ETH" in href or "LTC" in href for href in links)
    # The operator sees every merchant: B's delivery given up now (B's payment is newer
    # than that period).
    assert f"/console/deliveries?state=given_up&merchant={B}" in links
    assert f"/console/payments?merchant={B}&currency=LTC&status=paid" in "".join(
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


# Pages in every state a page can end in (and some still open), per kind, as
# (status, reason, amount asked, amount paid): built through the ORM session, so the hook that
# writes each page's model before the commit also writes its outcome.
DEPOSIT_STATES = (("confirmed", None), ("confirmed", "underpaid"), ("confirmed", "overpaid"),
                  ("waiting", None), ("not_confirmed", None), ("cancelled", "below_minimum"))
INVOICE_STATES = (("confirmed", None, "0.001", "0.0015"), ("confirmed", None, "0.001", "0.001"),
                  ("failed", "expired", "0.001", "0"), ("failed", None, "0.001", "0"),
                  ("failed", "underpaid", "0.001", "0.0004"), ("failed", "timeout", "0.001", "0"),
                  ("cancelled", "cancelled", "0.001", "0"), ("pending", None, "0.001", "0"))
OUTCOMES = ("paid", "expired", "underpaid", "overpaid")
_ROW_LINK = re.compile(r'href="/console/payments/([A-Za-z0-9_-]{43})"')


@pytest.fixture
def every_state(app: Flask) -> tuple[Flask, dict[str, set[str]]]:
    """Merchants A and B with pages in every state; the ids of the pages paid the wrong
    amount (`short_or_over`), which the list of paid pages must never show."""
    add_merchant(app, A, "Shop A")
    add_merchant(app, B, "Shop B")
    at = NOW - timedelta(days=1)
    short_or_over: set[str] = set()
    with app.app_context(), db.transaction() as session:
        for merchant in (A, B):
            for status, reason in DEPOSIT_STATES:
                page = deposit_page(session, merchant, status=status, reason=reason, at=at)
                if reason in ("underpaid", "overpaid"):
                    short_or_over.add(page.id)
            for status, reason, asked, paid in INVOICE_STATES:
                page = invoice_page(session, merchant, status=status, reason=reason,
                                    asked=asked, paid=paid, pay_currency="ETH", at=at)
                if paid not in ("0", asked):
                    short_or_over.add(page.id)
        later = deposit_page(session, A, status="waiting", currency="LTC", at=at)
    # A page that ends later: its outcome follows the change, written with its model.
    with app.app_context(), db.transaction() as session:
        changed = session.get(Page, later.id)
        assert changed is not None
        changed.status, changed.reason, changed.amount_paid = "confirmed", "overpaid", "2"
        short_or_over.add(changed.id)
    return app, {"short_or_over": short_or_over}


def _listed(client: FlaskClient, url: str) -> list[str]:
    """The page ids the payments list shows at `url`, every page of it followed."""
    ids: list[str] = []
    while url:
        answer = client.get(url)
        assert answer.status_code == 200, url
        ids += _ROW_LINK.findall(answer.text)
        following = re.search(r'<a href="(/console/payments\?[^"]*after=[^"]+)"', answer.text)
        url = unescape(following.group(1)) if following else ""
    return ids


def test_each_figure_counts_exactly_the_pages_its_link_lists(
        every_state: tuple[Flask, dict[str, set[str]]]) -> None:
    site, built = every_state
    client = site.test_client()
    sign_in(site, client, add_person(site, "op@site.example", operator=True))
    figures = {href: int(text) for href, text in _links(client.get("/console/").text).items()
               if href.startswith("/console/payments?")}
    span = f"from={_day(29)}&to={_day(0)}"
    every = {f"/console/payments?merchant={merchant}&currency={currency}&status={outcome}&{span}"
             for merchant in (A, B) for currency in ("BTC", "ETH", "LTC") for outcome in OUTCOMES}
    assert set(figures) <= every
    assert {href.split("status=")[1].split("&")[0] for href in figures} == set(OUTCOMES)
    for href in sorted(every):
        listed = _listed(client, href)
        assert len(listed) == len(set(listed))
        assert figures.get(href, 0) == len(listed), href
        if "status=paid&" in href:
            assert not built["short_or_over"] & set(listed), href
