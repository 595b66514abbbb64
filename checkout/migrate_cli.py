"""`flask --app checkout db upgrade|revision`: the schema, by migrations only."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from . import migrate

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")


@db_cli.command("upgrade")
def upgrade_command() -> None:
    """Apply every migration not applied yet."""
    migrate.upgrade(current_app.config["DATABASE_URL"])
    click.echo("database is up to date")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def revision_command(message: str) -> None:
    """Autogenerate a migration from the models (developers only)."""
    migrate.revision(current_app.config["DATABASE_URL"], message)


def init_app(app: Flask) -> None:
    app.cli.add_command(db_cli)
