"""`flask --app checkout sandbox pay <page URL>`: pay a customer page in the sandbox;
`flask --app checkout sandbox clock <site URL> --advance <seconds>`: move its clock on;
`flask --app checkout sandbox withdrawal ...`: the processor's back office for withdrawals.

It does what a customer with a wallet would: reads the page (its public status JSON) for the
address, the tag and the amount due now, and sends exactly that through the sandbox's
simulate endpoint, as a payer on the chain. Everything goes over HTTP to the served site, so
it pays what the page shows, never a stale figure, and imports nothing of the site. A page
that still asks for something first (an invoice's currency and email) is named, not guessed.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
import requests
from flask import Flask

from checkout.wire import decimals, jsontext

from . import backoffice, currencies, simulate

TIMEOUT = 30
# A customer page's path: /p/<token>.
_PAGE_PATH = re.compile(r"\A/p/[A-Za-z0-9_-]{16,64}\Z")

_ASKS = {
    "choose": "a currency to pay with",
    "email": "the customer's email address",
    "requote": "a fresh quote (the time to pay at the last rate ran out)",
}


class PayError(click.ClickException):
    """What keeps the page from being paid, said plainly."""


def pay_page(url: str, amount: str | None, status: str) -> str:
    """Pay the page at `url` (or the page a terminal link opens); a sentence saying what was
    sent."""
    page = page_url(url)
    model = read_model(page)
    needs = asked_for(model)
    if needs:
        raise PayError(f"the page at {page} asks for {needs} first: open it in a browser, "
                       "answer it, then run this again")
    if not model.get("pay_now") and amount is None:
        # With --amount the payer sends anyway: money after an invoice's time ran out
        # (a late payment) reaches its address as it would on the chain.
        raise PayError(f"nothing to pay: the page at {page} is {model.get('phase')} "
                       "(--amount sends a payment anyway, such as a late one)")
    address, tag = model.get("address"), model.get("tag")
    if not isinstance(address, str) or not address:
        raise PayError(f"the page at {page} shows no address yet")
    due = amount if amount is not None else model.get("amount_due")
    if due is None:
        raise PayError("this page takes any amount: say how much with --amount")
    body: dict[str, Any] = {"address": address, "amount": due, "status": status}
    if tag:
        body["tag"] = tag
    origin = urlunsplit(urlsplit(page)[:2] + ("", "", ""))
    answer = post(f"{origin}{simulate.bp.url_prefix}/simulate/payment", body)
    if answer.status_code >= 300:
        raise PayError(f"the sandbox refused the payment ({answer.status_code}): "
                       f"{answer.text[:300]}")
    with_tag = f" with tag {tag}" if tag else ""
    return (f"Sent {due} {model.get('currency')} to {address}{with_tag} ({status}). "
            "The page shows it once the worker has delivered the callbacks (a few seconds "
            "under `make run`).")


def advance_clock(url: str, seconds: int) -> str:
    """Move the sandbox's clock forward; a sentence saying where it stands now."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PayError(f"not a URL of the site: {url!r}")
    origin = urlunsplit(parts[:2] + ("", "", ""))
    answer = post(f"{origin}{simulate.bp.url_prefix}/clock", {"advance_seconds": seconds})
    if answer.status_code >= 300:
        raise PayError(f"the sandbox refused to move its clock ({answer.status_code}): "
                       f"{answer.text[:300]}")
    now = jsontext.loads(answer.content)
    return (f"The sandbox clock moved {seconds} s forward (now {now.get('now')}). Its "
            "callbacks follow once the worker runs (a few seconds under `make run`).")


def page_url(url: str) -> str:
    """The customer page's own URL: a terminal link is opened (as a browser would) first."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PayError(f"not a page URL: {url!r} (give the link or the page's address)")
    if not _PAGE_PATH.match(parts.path):
        try:
            opened = requests.get(url, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise PayError(f"could not open {url}: {type(exc).__name__}") from exc
        parts = urlsplit(opened.url)
        if opened.status_code != 200 or not _PAGE_PATH.match(parts.path):
            raise PayError(f"{url} did not open a payment page ({opened.status_code})")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def read_model(page: str) -> dict[str, Any]:
    try:
        answer = requests.get(f"{page}/status", timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise PayError(f"could not read {page}: {type(exc).__name__} (is the site "
                       "running? `make run`)") from exc
    if answer.status_code != 200:
        raise PayError(f"no payment page at {page} ({answer.status_code})")
    model = jsontext.loads(answer.content)
    if not isinstance(model, dict):
        raise PayError(f"{page}/status is not a page model")
    return model


def asked_for(model: dict[str, Any]) -> str | None:
    """What the page asks the customer before it shows an address, in words; None if
    nothing."""
    form = model.get("form")
    if not form:
        return None
    wanted = [_ASKS.get(str(form), str(form))]
    invoice = model.get("invoice") or {}
    if form == "choose" and invoice.get("email_needed"):
        wanted.append(_ASKS["email"])
    return " and ".join(wanted)


def post(url: str, body: dict[str, Any]) -> requests.Response:
    try:
        return requests.post(url, data=jsontext.dumps(body),
                             headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise PayError(f"could not reach the sandbox at {url}: {type(exc).__name__}") from exc


def init_app(app: Flask) -> None:
    @app.cli.group("sandbox")
    def sandbox_group() -> None:
        """The embedded sandbox processor's controls."""

    @sandbox_group.command("pay")
    @click.argument("url")
    @click.option("--amount", default=None,
                  help="Send this instead of the amount due (an open-amount page needs it).")
    @click.option("--status", type=click.Choice(simulate.STATUSES), default="confirmed",
                  show_default=True, help="The transaction's status as the chain reports it.")
    def pay_command(url: str, amount: str | None, status: str) -> None:
        """Pay the page at URL (a terminal link or a /p/ page) exactly what it asks for now."""
        click.echo(pay_page(url, amount, status))

    @sandbox_group.command("clock")
    @click.argument("url")
    @click.option("--advance", "seconds", type=click.IntRange(min=1), required=True,
                  help="Seconds to move the sandbox processor's clock forward.")
    def clock_command(url: str, seconds: int) -> None:
        """Move the sandbox's clock at URL (the site, or any page of it) forward: invoices
        run out of time, payments confirm, withdrawals settle, as that much later."""
        click.echo(advance_clock(url, seconds))

    init_withdrawal_commands(app, sandbox_group)


def _limit_text(limit: str) -> Decimal | None:
    if limit.lower() == "off":
        return None
    try:
        return decimals.parse_amount(limit, currencies.PLACES, allow_zero=True)
    except decimals.AmountError as exc:
        raise click.BadParameter(f"{limit!r}: {exc} (or `off`)") from exc


def _describe(withdrawal: dict[str, Any]) -> str:
    sent = withdrawal.get("currency_sent") or {}
    amount = f"{sent.get('amount')} {sent.get('currency')} " if sent else ""
    error = f" ({withdrawal['error']})" if withdrawal.get("error") else ""
    return (f"withdrawal {withdrawal['id']} foreign_id {withdrawal['foreign_id']!r}: "
            f"{amount}to {withdrawal['crypto_address']['address']}: "
            f"{withdrawal['status']}{error}")


def init_withdrawal_commands(app: Flask, group: click.Group) -> None:
    """The processor's back office for withdrawals, run against the sandbox's own tables:
    the worker (`make run` has one) then sends the callbacks."""

    @group.group("withdrawal")
    def withdrawal_group() -> None:
        """Withdrawal limits, and approving or cancelling what they hold (pending)."""

    client_option = click.option(
        "--client-id", type=int, default=None,
        help="The account (merchant client_id); needed only when there are several.")

    def decide(approve: bool, foreign_id: str, client_id: int | None,
               error: str | None) -> None:
        try:
            done = backoffice.decide(app, approve=approve, foreign_id=foreign_id,
                                     client_id=client_id, error=error)
        except backoffice.Refused as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(_describe(done))

    @withdrawal_group.command("approve")
    @click.argument("foreign_id")
    @client_option
    def approve_command(foreign_id: str, client_id: int | None) -> None:
        """Approve the pending withdrawal FOREIGN_ID: it goes on chain and confirms."""
        decide(True, foreign_id, client_id, None)

    @withdrawal_group.command("cancel")
    @click.argument("foreign_id")
    @client_option
    @click.option("--error", default=None,
                  help=f"The error the callback carries (default: {backoffice.DECLINED!r}).")
    def cancel_command(foreign_id: str, client_id: int | None, error: str | None) -> None:
        """Cancel the pending withdrawal FOREIGN_ID: the money goes back to the balance."""
        decide(False, foreign_id, client_id, error)

    @withdrawal_group.command("limit")
    @click.argument("currency")
    @click.argument("limit")
    @client_option
    def limit_command(currency: str, limit: str, client_id: int | None) -> None:
        """Withdrawals of more than LIMIT CURRENCY wait for approval (LIMIT `off`: none do)."""
        found = currencies.get(currency.upper())
        if found is None:
            raise click.BadParameter(f"unknown currency {currency!r}")
        try:
            done = backoffice.set_limit(app, client_id, found, _limit_text(limit))
        except backoffice.Refused as exc:
            raise click.ClickException(exc.message) from exc
        shown = "off" if done.limit is None else currencies.amount_text(done.limit)
        click.echo(f"Account {done.client_id}: withdrawal limit in {done.currency}: {shown}")

    @withdrawal_group.command("pending")
    def pending_command() -> None:
        """List the withdrawals waiting for a decision."""
        waiting = backoffice.pending(app)
        for withdrawal in waiting:
            click.echo(f"account {withdrawal['client_id']}: {_describe(withdrawal)}")
        if not waiting:
            click.echo("No withdrawal is waiting for approval.")
