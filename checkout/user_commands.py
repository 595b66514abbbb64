"""`flask --app checkout user add|list|disable`: the back office's first users, from the
server's command line (audited as "command line")."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from . import clock, db
from .services import people, user_directory

user_cli = AppGroup("user", help="Add, list and disable the back office's users.")


def enrolment_url(token: str, base_url: str | None = None) -> str:
    base = (base_url or current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    return f"{base}/console/enrol/{token}"


def _base_url(given: str | None) -> str:
    base = given or current_app.config.get("PUBLIC_URL")
    if not base:
        raise click.ClickException(
            "the site's public URL is unknown: set CHECKOUT_PUBLIC_URL or pass --base-url")
    return str(base)


@user_cli.command("add")
@click.option("--email", required=True, help="The user's email (their sign-in name).")
@click.option("--operator", is_flag=True, help="Runs the site: every merchant, every user.")
@click.option("--client-id", type=int, help="The merchant the user works for.")
@click.option("--role", help="Their role at --client-id: owner, admin, developer, support, "
                             "accountant or viewer.")
@click.option("--base-url", default=None, help="Where the site is served (default: "
                                               "CHECKOUT_PUBLIC_URL).")
def add_command(email: str, operator: bool, client_id: int | None, role: str | None,
                base_url: str | None) -> None:
    """Add a user and print their one-time enrolment link (24 hours)."""
    if operator == (client_id is not None):
        raise click.UsageError("give either --operator or --client-id (with --role)")
    if operator and role:
        raise click.UsageError("an operator has no --role: it may do everything")
    if client_id is not None and not role:
        raise click.UsageError("--client-id needs --role")
    base = _base_url(base_url)
    try:
        with db.transaction() as session:
            token = user_directory.add(session, email, now=clock.now(), operator=operator,
                                       client_id=client_id, role=role)
    except people.PeopleError as exc:
        raise click.ClickException(str(exc)) from exc
    who = "operator" if operator else f"{role} of merchant {client_id}"
    click.echo(f"added {email.strip().lower()} ({who}). Their one-time enrolment link, "
               "good for 24 hours (a password, then an authenticator app):")
    click.echo(f"  {enrolment_url(token, base)}")


@user_cli.command("list")
def list_command() -> None:
    """Every user: email, operator or roles per merchant, enrolled, disabled."""
    rows = user_directory.listing(db.session())
    if not rows:
        click.echo("no users yet: add one with `flask --app checkout user add`")
    for row in rows:
        roles = "operator" if row.operator else ", ".join(
            f"{role}@{client_id}" for client_id, role in row.roles.items()) or "no role"
        enrolled = (f"enrolled {row.enrolled_at:%Y-%m-%d %H:%M}" if row.enrolled_at
                    else "not enrolled")
        disabled = f", disabled {row.disabled_at:%Y-%m-%d %H:%M}" if row.disabled_at else ""
        click.echo(f"{row.email}\t{roles}\t{enrolled}{disabled}")


@user_cli.command("disable")
@click.option("--email", required=True)
def disable_command(email: str) -> None:
    """Disable a user: no sign-in any more, and their sessions end now."""
    try:
        with db.transaction() as session:
            ended = user_directory.disable(session, email, now=clock.now())
    except people.PeopleError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"disabled {email.strip().lower()}; sessions ended: {ended}")


def init_app(app: Flask) -> None:
    app.cli.add_command(user_cli)
