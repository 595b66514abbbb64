"""`flask --app checkout db upgrade|revision`: the schema, by migrations only."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from . import migrate

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")


@db_cli.command("upgrade")
def upgrade_command() -> None:
    """Apply every migration not applied yet: the site's, and the sandbox's in sandbox mode."""
    sandbox = bool(current_app.config["SANDBOX"])
    migrate.upgrade(current_app.config["DATABASE_URL"], sandbox=sandbox)
    click.echo("database is up to date" + (" (with the sandbox's tables)" if sandbox else ""))


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--branch", type=click.Choice(sorted(migrate.BRANCHES)), default="site",
              show_default=True, help="Whose tables: the site's or the sandbox's.")
def revision_command(message: str, branch: str) -> None:
    """Autogenerate a migration from the models (developers only)."""
    migrate.revision(current_app.config["DATABASE_URL"], message, branch)


def init_app(app: Flask) -> None:
    app.cli.add_command(db_cli)
