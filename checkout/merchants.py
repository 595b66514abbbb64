"""Merchants: validation of their settings, lookups, and the `merchant` CLI."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from . import db
from .models import Merchant

_HOST = re.compile(r"\A(?=.{1,253}(?::|\Z))[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                   r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::[0-9]{1,5})?\Z")
_FORBIDDEN_IN_ORIGIN = set("*; \t\r\n,'\"")


class MerchantError(ValueError):
    """A merchant setting that cannot be accepted, with a message for the operator."""


def normalise_return_host(value: str) -> str:
    """`shop.example` or `shop.example:8443`; a scheme, path or wildcard is refused."""
    host = value.strip().lower()
    if "/" in host or "?" in host or "#" in host:
        raise MerchantError(
            f"return host {value!r} must be a host name only, without scheme or path "
            "(for example shop.example)")
    if not _HOST.match(host):
        raise MerchantError(f"return host {value!r} is not a valid host name")
    return host


def normalise_frame_origin(value: str) -> str:
    """`https://shop.example[:port]`: exactly one origin, safe inside a CSP header."""
    origin = value.strip()
    if not origin or set(origin) & _FORBIDDEN_IN_ORIGIN:
        raise MerchantError(
            f"frame origin {value!r} must be a single origin without '*', ';', ',', quotes "
            "or spaces (for example https://shop.example)")
    parts = urlsplit(origin.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MerchantError(f"frame origin {value!r} must start with https:// or http://")
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise MerchantError(f"frame origin {value!r} must not have a path, query or user")
    host = parts.netloc.lower()
    if not _HOST.match(host):
        raise MerchantError(f"frame origin {value!r} has an invalid host")
    return f"{parts.scheme}://{host}"


def normalise_webhook_url(value: str) -> str:
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise MerchantError(f"webhook URL {value!r} must be an http(s) URL")
    return url


@dataclass(frozen=True)
class NewMerchant:
    client_id: int
    name: str
    key: str
    secret: str
    return_hosts: tuple[str, ...] = ()
    frame_origins: tuple[str, ...] = ()
    webhook_url: str | None = None


def add(new: NewMerchant) -> Merchant:
    """Validate and store a merchant; in sandbox mode also open its processor account."""
    if new.client_id <= 0:
        raise MerchantError("client id must be a positive whole number")
    if not new.name.strip():
        raise MerchantError("name must not be empty")
    if not new.key or not new.secret:
        raise MerchantError("key and secret must not be empty")
    merchant = Merchant(
        client_id=new.client_id,
        name=new.name.strip(),
        api_key=new.key,
        api_secret=new.secret,
        webhook_url=normalise_webhook_url(new.webhook_url) if new.webhook_url else None,
    )
    merchant.return_hosts = sorted({normalise_return_host(h) for h in new.return_hosts})
    merchant.frame_origins = sorted({normalise_frame_origin(o) for o in new.frame_origins})
    with db.transaction() as s:
        if s.get(Merchant, new.client_id) is not None:
            raise MerchantError(f"a merchant with client id {new.client_id} exists already")
        if s.scalar(select(Merchant).where(Merchant.api_key == new.key)) is not None:
            raise MerchantError("another merchant has this API key already")
        s.add(merchant)
    open_account = current_app.extensions.get("sandbox.open_account")
    if open_account is not None:
        open_account(new.client_id, new.key, new.secret)
    return merchant


def by_client_id(client_id: int) -> Merchant | None:
    return db.session().get(Merchant, client_id)


def by_key(api_key: str) -> Merchant | None:
    return db.session().scalar(select(Merchant).where(Merchant.api_key == api_key))


merchant_cli = AppGroup("merchant", help="Add and list the merchants this site serves.")


@merchant_cli.command("add")
@click.option("--client-id", type=int, required=True, help="CoinsPaid client id.")
@click.option("--name", required=True)
@click.option("--key", required=True, help="CoinsPaid API key, exactly as issued.")
@click.option("--secret", required=True, help="CoinsPaid API secret, exactly as issued.")
@click.option("--return-host", "return_hosts", multiple=True,
              help="Host allowed in url_back/url_success/url_failed (repeatable).")
@click.option("--frame-origin", "frame_origins", multiple=True,
              help="Origin allowed to frame the page, e.g. https://shop.example (repeatable).")
@click.option("--webhook-url", help="Where processor callbacks are forwarded.")
def add_command(client_id: int, name: str, key: str, secret: str, return_hosts: tuple[str, ...],
                frame_origins: tuple[str, ...], webhook_url: str | None) -> None:
    """Add a merchant. The key and secret are stored, never printed back."""
    try:
        merchant = add(NewMerchant(client_id, name, key, secret, return_hosts, frame_origins,
                                   webhook_url))
    except MerchantError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added merchant {merchant.client_id} ({merchant.name})")


@merchant_cli.command("list")
def list_command() -> None:
    """List merchants (without keys or secrets)."""
    merchants = db.session().scalars(select(Merchant).order_by(Merchant.client_id)).all()
    if not merchants:
        click.echo("no merchants yet: add one with `flask --app checkout merchant add`")
    for m in merchants:
        click.echo(
            f"{m.client_id}\t{m.name}\treturn hosts: {', '.join(m.return_hosts) or '-'}\t"
            f"frame origins: {', '.join(m.frame_origins) or '-'}\t"
            f"webhook: {m.webhook_url or '-'}")


def init_app(app: Flask) -> None:
    app.cli.add_command(merchant_cli)
