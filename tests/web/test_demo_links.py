"""A newcomer's first ten minutes: `make run` prints links and one command that pays any page
by its URL; each run's links open payable pages; the sandbox shop's page lists them again,
with that command, once the access log has scrolled them away."""

from __future__ import annotations

import re
import shlex
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Flask
from flask.testing import FlaskClient
from kit.invoices import TYPE_3, TestShop, settle
from kit.invoices import pay as sandbox_pay
from kit.live import LiveServer

from checkout import db, merchants, terminal
from checkout.models import Merchant
from checkout.services import invoices

README = Path(__file__).resolve().parents[2] / "README.md"


def run_demo(live: LiveServer) -> dict[str, Any]:
    """`flask demo` against the served site: its links and printed pay commands."""
    result = live.app.test_cli_runner().invoke(args=["demo", "--base-url", live.url])
    assert result.exit_code == 0, result.output
    terminal_link = re.search(r"Terminal link: (\S+)", result.output)
    invoice_link = re.search(r"Invoice link: (\S+)", result.output)
    assert terminal_link is not None and invoice_link is not None
    commands = [shlex.split(line.split("#")[0]) for line in result.output.splitlines()
                if "sandbox pay" in line]
    return {"output": result.output, "terminal": terminal_link.group(1),
            "invoice": invoice_link.group(1), "commands": commands}


def pay(live: LiveServer, *args: str) -> Any:
    return live.app.test_cli_runner().invoke(args=["sandbox", "pay", *args])


def model(url: str) -> dict[str, Any]:
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and "/p/" in page.url
    answer = requests.get(page.url.split("?")[0] + "/status", timeout=10)
    return dict(answer.json())


# ---------------------------------------------------------------- one command pays a page


def test_the_printed_command_pays_the_terminal_link_exactly_what_it_asks(
        live_server: LiveServer) -> None:
    demo = run_demo(live_server)
    assert "<address>" not in demo["output"]
    # Each link has its pay command, naming the link itself: nothing to fill in.
    assert [c[5] for c in demo["commands"]] == [demo["terminal"], demo["invoice"],
                                                 demo["terminal"]]
    # The third overpays, so that the page offers the difference back.
    assert demo["commands"][2][6:] == ["--amount", "0.002"]
    assert all(c[:5] == ["flask", "--app", "checkout", "sandbox", "pay"]
               for c in demo["commands"])
    asked = model(demo["terminal"])
    assert asked["pay_now"] and asked["amount_paid"] == "0"
    result = pay(live_server, *demo["commands"][0][5:])
    assert result.exit_code == 0, result.output
    assert f"Sent {asked['amount_due']} BTC to {asked['address']}" in result.output
    settle(live_server.app)
    paid = model(demo["terminal"])
    assert paid["phase"] == "paid"
    assert Decimal(paid["amount_paid"]) == Decimal(asked["amount_due"])


def test_the_command_says_what_an_invoice_needs_first_then_pays_it(
        live_server: LiveServer) -> None:
    demo = run_demo(live_server)
    assert "asks for a currency, then an email" in demo["output"]
    result = pay(live_server, demo["invoice"])
    assert result.exit_code == 1
    assert "a currency to pay with and the customer's email address" in result.output
    assert model(demo["invoice"])["amount_paid"] == "0"  # nothing was sent
    # The customer answers (as the page's form would); now the command pays the quote.
    page_id = demo["invoice"].rsplit("/", 1)[1]
    with live_server.app.app_context():
        invoices.set_email(page_id, "payer@example.com")
        invoices.choose_currency(page_id, "BTC")
    asked = model(demo["invoice"])
    assert asked["pay_now"] and asked["amount_due"]
    result = pay(live_server, demo["invoice"])
    assert result.exit_code == 0, result.output
    settle(live_server.app)
    assert model(demo["invoice"])["phase"] == "paid"


def test_a_page_that_takes_any_amount_needs_one_given(live_server: LiveServer) -> None:
    run_demo(live_server)
    with live_server.app.app_context():
        shop = merchants.by_client_id(1000)
        assert shop is not None
        query = terminal.encode_link({"client_id": 1000, "currency": "BTC",
                                      "foreign_id": "top-up-1"}, shop.api_secret)
    top_up = f"{live_server.url}/?{urlencode(query)}"
    result = pay(live_server, top_up)
    assert result.exit_code == 1 and "takes any amount: say how much with --amount" \
        in result.output
    page = requests.get(top_up, timeout=10).url.split("?")[0]
    assert pay(live_server, page, "--amount", "0.0005").exit_code == 0
    settle(live_server.app)
    assert model(page)["amount_paid"] == "0.0005"


def test_what_is_no_page_is_said_plainly(live_server: LiveServer) -> None:
    result = pay(live_server, "not a url")
    assert result.exit_code == 1 and "not a page URL" in result.output
    result = pay(live_server, f"{live_server.url}/healthz")
    assert result.exit_code == 1 and "did not open a payment page" in result.output


# ---------------------------------------------------------------- every run: payable links


def test_a_second_run_prints_a_link_that_opens_a_payable_page(live_server: LiveServer) -> None:
    first = run_demo(live_server)
    asked = model(first["terminal"])
    # Paid as a wallet would, straight at the sandbox's chain.
    sandbox_pay(live_server.url, asked["address"], asked["amount_due"], "confirmed")
    settle(live_server.app)
    assert model(first["terminal"])["phase"] == "paid"
    second = run_demo(live_server)
    assert second["terminal"] != first["terminal"]
    again = model(second["terminal"])
    assert again["phase"] == "waiting" and again["pay_now"]
    assert second["invoice"] != first["invoice"]


# ---------------------------------------------------------------- found again later


def test_the_shop_page_lists_fresh_payable_links_and_the_pay_command(
        app: Flask, client: FlaskClient) -> None:
    # The test client is served as http://localhost.
    assert app.test_cli_runner().invoke(args=["demo", "--base-url", "http://localhost"]) \
        .exit_code == 0
    html = client.get("/sandbox/shop").get_data(as_text=True)
    links = re.findall(r'<a href="([^"]+)" data-try="([^"]+)"', html)
    assert {label for _, label in links} >= {"0.00123 BTC", "25 XRP (with a destination tag)",
                                             "19.99 USDT on Ethereum (ERC-20)",
                                             "19.99 USDT on TRON (TRC-20)"}
    assert "flask --app checkout sandbox pay" in html
    for href, _label in links:
        opened = client.get(href.replace("&amp;", "&"))
        assert opened.status_code == 303, (href, opened.get_data(as_text=True)[:200])
        page = opened.headers["Location"].split("?")[0]
        assert client.get(page + "/status").get_json()["pay_now"] is True
    # Fresh on every view: a link paid already never comes back.
    assert re.findall(r'<a href="([^"]+)" data-try=', client.get("/sandbox/shop").get_data(
        as_text=True))[0] != links[0][0]


def test_the_readme_tells_a_newcomer_the_port_and_that_an_invoice_asks_first() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make run PORT=" in text
    assert "sandbox pay" in text and "asks for a currency" in text


# ---------------------------------------------------------------- every money state by hand


def test_the_commands_reach_a_late_payment_and_a_tolerated_underpayment(
        live_server: LiveServer, shop: TestShop) -> None:
    """`make run`'s sandbox reaches the states of money that went wrong: an invoice paid after
    its time ran out (the sandbox clock moved on), and a page paid a little short within the
    merchant's tolerance."""
    data = shop.create(TYPE_3).json()["data"]  # as the sandbox shop's "BTC, timer" button
    page = data["url"]
    asked = model(page)
    moved = live_server.app.test_cli_runner().invoke(
        args=["sandbox", "clock", live_server.url, "--advance", "3600"])
    assert moved.exit_code == 0 and "moved 3600 s forward" in moved.output
    settle(live_server.app)
    assert (model(page)["status"], model(page)["pay_now"]) == ("failed", False)
    refused = pay(live_server, page)
    assert refused.exit_code == 1 and "--amount sends a payment anyway" in refused.output
    late = str((Decimal(asked["amount_due"]) * Decimal("1.05")).quantize(Decimal("1e-8")))
    assert pay(live_server, page, "--amount", late).exit_code == 0
    settle(live_server.app)
    seen = model(page)
    assert (seen["status"], seen["phase"]) == ("failed", "late")
    assert Decimal(seen["late"]["amount"]) == Decimal(late)

    demo = run_demo(live_server)
    with live_server.app.app_context(), db.transaction() as s:
        merchant = s.get(Merchant, 1000)
        assert merchant is not None
        merchant.underpaid_percent, merchant.underpaid_fiat = "2", "100"
    due = model(demo["terminal"])["amount_due"]
    short = str((Decimal(due) * Decimal("0.99")).quantize(Decimal("1e-8")))
    assert pay(live_server, demo["terminal"], "--amount", short).exit_code == 0
    settle(live_server.app)
    paid = model(demo["terminal"])
    assert (paid["phase"], paid["reason"]) == ("paid", "short_accepted")
    assert Decimal(paid["shortfall"]) == Decimal(due) - Decimal(short)
