"""`flask --app checkout demo`: a demo merchant (client_id 1000), links to try, and the command
that pays them in the sandbox (`sandbox pay`, checkout/sandbox/cli.py)."""

from __future__ import annotations

import secrets
import shlex
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

import click
from flask import Flask, current_app

from . import clock, db, merchants, terminal
from .models import Merchant
from .services import invoices, people, user_directory

DEMO_CLIENT_ID = 1000


def init_app(app: Flask) -> None:
    @app.cli.command("demo")
    @click.option("--base-url", default=None, help="Where the site is served.")
    @click.option("--flask-command", default="flask --app checkout", show_default=True,
                  help="How this checkout's flask is run here, for the printed pay command.")
    def demo_command(base_url: str | None, flask_command: str) -> None:
        """Create the demo merchant if missing and print links to try, and how to pay them.

        The links are fresh on every run: a new customer (foreign_id) for the terminal link,
        whose earlier link may be paid already, and a new invoice."""
        if not current_app.config["SANDBOX"]:
            raise click.ClickException("the demo merchant exists in sandbox mode only")
        base = (base_url or current_app.config.get("PUBLIC_URL") or "http://127.0.0.1:8000")
        base = base.rstrip("/")
        merchant = demo_merchant(base)
        deposit = demo_terminal_link(merchant, base)
        invoice = demo_invoice(merchant, base)
        pay = f"{flask_command} sandbox pay"
        for line in (
            f"Demo merchant {merchant.client_id} is ready. Open in a browser:",
            f"- a deposit of {DEMO_AMOUNT} BTC, for a new customer each run (so not paid yet):",
            f"  Terminal link: {deposit}",
            "- an invoice of 35 EUR; its page asks for a currency, then an email, before it "
            "shows an address:",
            f"  Invoice link: {invoice}",
            "Pay a page in the sandbox with exactly what it asks for now (the link or the "
            "page's URL):",
            f"  {pay} {shlex.quote(deposit)}",
            f"  {pay} {shlex.quote(invoice)}    # once a currency and an email are given",
            "Pay too much (or too little) to see the page offer the difference back; the "
            "refund waits for the owner's approval in the back office:",
            f"  {pay} {shlex.quote(deposit)} --amount 0.002",
            "Hold every withdrawal at the processor (its withdrawal limits), then decide one:",
            f"  {flask_command} sandbox withdrawal limit BTC 0",
            f"  {flask_command} sandbox withdrawal approve|cancel <foreign_id>",
            "These links (fresh ones each time), this command and the callbacks the shop "
            "received:",
            f"  {base}/sandbox/shop",
            *demo_owner_lines(merchant, base),
        ):
            click.echo(line)


DEMO_AMOUNT = "0.00123"


def demo_merchant(base: str) -> Merchant:
    merchant = merchants.by_client_id(DEMO_CLIENT_ID)
    if merchant is None:
        merchant = merchants.add(merchants.NewMerchant(
            client_id=DEMO_CLIENT_ID,
            name="Demo shop",
            key="demo-" + secrets.token_hex(8),
            secret=secrets.token_hex(32),
            return_hosts=(urlsplit(base).netloc,),
            frame_origins=(base,),
            webhook_url=f"{base}/sandbox/shop/callback",
        ))
    return merchant


DEMO_OWNER = "owner@demo.example"


def demo_owner_lines(merchant: Merchant, base: str) -> list[str]:
    """How to sign in to the back office as the demo merchant's owner: until they have
    enrolled, a fresh one-time link on every run (no password is ever printed)."""
    with db.transaction() as session:
        owner = people.by_email(session, DEMO_OWNER)
        if owner is None:
            token: str | None = user_directory.add(session, DEMO_OWNER, now=clock.now(),
                                                   client_id=merchant.client_id, role="owner")
        elif owner.enrolled_at is None:
            token = people.new_link(session, owner, now=clock.now())
        else:
            token = None
    if token is None:
        return [f"Back office: sign in as {DEMO_OWNER} (the demo shop's owner) at",
                f"  {base}/console/login"]
    return [f"Back office: enrol as {DEMO_OWNER} (the demo shop's owner), a password and an "
            "authenticator app, with this one-time link (24 hours):",
            f"  {base}/console/enrol/{token}"]


def demo_terminal_link(merchant: Merchant, base: str) -> str:
    """A terminal link for a new customer: the last run's link may be paid, and a paid
    order's link reopens its paid page."""
    query = terminal.encode_link({
        "client_id": merchant.client_id,
        "currency": "BTC",
        "foreign_id": f"demo-customer-{secrets.token_hex(4)}",
        "amount": DEMO_AMOUNT,
        "convert_to": "EUR",
        "url_back": f"{base}/sandbox/shop",
    }, merchant.api_secret)
    return f"{base}/?{urlencode(query)}"


def demo_invoice(merchant: Merchant, base: str) -> str:
    """A fresh type 1 invoice (the customer picks the currency): its customer page.

    Made through the service, not over HTTP: the site is not serving yet when `make run`
    prints it. Nothing reaches the processor until a currency is picked on the page.
    """
    request = invoices.InvoiceRequest(
        foreign_id=f"demo-order-{secrets.token_hex(4)}", title="Demo order",
        description="Two books", currency="EUR", amount=Decimal("35"), timer=False,
        sender_currency=None, type="fill_or_kill", url_success=f"{base}/sandbox/shop?paid=1",
        url_failed=f"{base}/sandbox/shop?failed=1", email_user=None, end_user_reference=None)
    invoice = invoices.create(db.session(), merchant, request)
    return f"{base}/p/{invoice.page_id}"
