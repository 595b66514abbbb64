"""`flask --app checkout demo`: a demo merchant (client_id 1000) and links to try."""

from __future__ import annotations

import secrets
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

import click
from flask import Flask, current_app

from . import db, invoices, merchants, terminal
from .models import Merchant

DEMO_CLIENT_ID = 1000


def init_app(app: Flask) -> None:
    @app.cli.command("demo")
    @click.option("--base-url", default=None, help="Where the site is served.")
    def demo_command(base_url: str | None) -> None:
        """Create the demo merchant if missing and print a terminal link."""
        if not current_app.config["SANDBOX"]:
            raise click.ClickException("the demo merchant exists in sandbox mode only")
        base = (base_url or current_app.config.get("PUBLIC_URL") or "http://127.0.0.1:8000")
        base = base.rstrip("/")
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
        query = terminal.encode_link({
            "client_id": merchant.client_id,
            "currency": "BTC",
            "foreign_id": "demo-customer-1",
            "amount": "0.00123",
            "convert_to": "EUR",
            "url_back": f"{base}/sandbox/shop",
        }, merchant.api_secret)
        click.echo(f"Demo merchant {merchant.client_id} is ready.")
        click.echo(f"Terminal link: {base}/?{urlencode(query)}")
        click.echo(f"Invoice link: {demo_invoice(merchant, base)}")
        click.echo("To pay in the sandbox, post the page's address and amount:")
        click.echo(f"  curl -X POST {base}/sandbox/simulate/payment -H 'Content-Type: "
                   "application/json' -d '{\"address\": \"<address>\", \"amount\": "
                   "\"0.00123\"}'")
        click.echo(f"The demo shop (callbacks received, a button that creates invoices): "
                   f"{base}/sandbox/shop")


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
