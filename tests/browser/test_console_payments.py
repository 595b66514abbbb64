"""The payments list in Chromium, as an accountant uses it: signed in with the password and a
real TOTP code, filtering, searching, paging and exporting, without any script of ours (the
back office has none); axe-core finds nothing in light or dark, and every state is
photographed at 320 and 1280 px, light and dark, in English, German and Arabic."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from kit.accessibility import check
from kit.browser import LANGUAGES, SHOTS, shoot
from kit.console import PASSWORD, Person, add_person, next_code
from kit.live import LiveServer
from playwright.sync_api import expect

from checkout import db
from checkout.models import Invoice, Merchant, Page

A = 11
T0 = datetime(2026, 3, 1, 12, 0, 0)


def fill_pages(app: Flask) -> list[str]:
    """130 confirmed ETH deposits, newest first, and a few others of every kind and state."""
    made = []
    with app.app_context(), db.transaction() as session:
        for i in range(130):
            page = Page(id=secrets.token_urlsafe(32), kind="deposit", merchant_id=A,
                        foreign_id=f"order-{i}", currency="ETH", amount="0.25",
                        amount_paid="0.25", fiat_currency="EUR", address=f"0xaddr{i:04d}",
                        status="confirmed", created_at=T0 - timedelta(minutes=i),
                        updated_at=T0)
            session.add(page)
            made.append(page.id)
        for i, (status, reason) in enumerate((("waiting", None), ("confirmed", "underpaid"),
                                              ("failed", "expired"), ("pending", None))):
            page = Page(id=secrets.token_urlsafe(32), kind="invoice", merchant_id=A,
                        foreign_id=f"invoice-{i}", currency="BTC", amount="0.00309556",
                        amount_paid="0", fiat_currency="EUR", status=status, reason=reason,
                        created_at=T0 + timedelta(minutes=i + 1), updated_at=T0)
            session.add(page)
            session.flush()
            session.add(Invoice(merchant_id=A, foreign_id=f"invoice-{i}", page_id=page.id,
                                title="Order", currency="EUR", amount="26",
                                email_user=f"payer{i}@example.org",
                                url_success="https://shop.example/ok",
                                url_failed="https://shop.example/failed", status=status,
                                reason=reason))
    return made


def sign_in(app: Flask, page: Any, base: str, person: Person) -> None:
    """Through the forms, as a person types them: email and password, then the code."""
    page.goto(f"{base}/console/payments")
    expect(page).to_have_url(f"{base}/console/login?next=/console/payments")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code").fill(next_code(app, person))
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/console/payments")


def photograph(page: Any, state: str) -> None:
    """axe-core, then `console-payments-<state>-<lang>-<width>-<scheme>.png`."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    check(page, f"payments {state}")
    shoot(page, f"console-payments-{state}-en")
    url = page.url
    for lang in LANGUAGES:
        other = page.context.new_page()
        try:
            other.goto(f"{url}{'&' if '?' in url else '?'}lang={lang}")
            expect(other.locator("html")).to_have_attribute("lang", lang)
            check(other, f"payments {state} {lang}")
            shoot(other, f"console-payments-{state}-{lang}")
        finally:
            other.close()


def order_cells(page: Any) -> Any:
    return page.locator("table.payments tbody tr td:nth-child(4)")


def shown_orders(page: Any) -> list[str]:
    return [text.strip() for text in order_cells(page).all_inner_texts()]


def clear_filters(page: Any, base: str) -> None:
    page.get_by_role("link", name="Clear filters").click()
    expect(page).to_have_url(f"{base}/console/payments")


def test_an_accountant_filters_searches_pages_and_exports(
        app: Flask, site: LiveServer, merchant: Merchant, context: Any) -> None:
    fill_pages(app)
    person = add_person(app, "books@a.example", roles={A: "accountant"})
    page = context.new_page()
    sign_in(app, page, site.url, person)
    expect(page.locator("table.payments tbody tr")).to_have_count(100)
    photograph(page, "list")

    # Filter: the form's own fields, by their labels; the URL carries them.
    page.get_by_label("Status").select_option("confirmed")
    page.get_by_label("Currency").fill("eth")
    page.get_by_label("Kind").select_option("deposit")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(f"{site.url}/console/payments?q=&status=confirmed&kind=deposit"
                             "&currency=eth&merchant=&from=&to=")
    assert shown_orders(page) == [f"order-{i}" for i in range(100)]

    # The next page keeps the filters and continues where the first ended.
    page.get_by_role("link", name="Next page").click()
    expect(page.locator("table.payments tbody tr")).to_have_count(30)
    assert "status=confirmed" in page.url and "currency=ETH" in page.url
    assert shown_orders(page) == [f"order-{i}" for i in range(100, 130)]
    photograph(page, "second-page")

    # Needs attention: the underpaid invoice only. Each step waits for the page it asked
    # for: reading the rows at once could read the page before, or none.
    clear_filters(page, site.url)
    page.get_by_label("Needs attention").check()
    page.get_by_role("button", name="Apply filters").click()
    expect(order_cells(page)).to_have_text(["invoice-1"])

    # Search by the payer's email, then by something no payment has.
    clear_filters(page, site.url)
    page.get_by_label("Search").fill("payer3@example.org")
    page.get_by_role("button", name="Apply filters").click()
    expect(order_cells(page)).to_have_text(["invoice-3"])
    page.get_by_label("Search").fill("no-such-order")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_role("status")).to_contain_text("Nothing found")
    photograph(page, "nothing-found")

    # A date that is not one: said, with the form as typed.
    page.goto(f"{site.url}/console/payments?from=2026-02-30&currency=ETH")
    expect(page.get_by_role("alert")).to_contain_text("From")
    expect(page.get_by_label("Currency")).to_have_value("ETH")
    photograph(page, "bad-filter")

    # Export the filtered list: a CSV of exactly those rows.
    page.goto(f"{site.url}/console/payments?currency=BTC")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export these payments (CSV)").click()
    path = download.value.path()
    with open(path, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(io.StringIO(file.read())))
    assert sorted(row["foreign_id"] for row in rows) == [f"invoice-{i}" for i in range(4)]
    assert {row["fiat_currency"] for row in rows} == {"EUR"}
    assert {row["fiat_value"] for row in rows} == {"26"}
