"""The migrations build exactly the schema the models declare: a column, index or table added
to a model without its migration (or the other way round) fails here, not in production.

Two branches: the site's tables ("site") and the embedded sandbox's ("sandbox"). Each builds
exactly its own; outside sandbox mode the site's database holds no sandbox table."""

from __future__ import annotations

import tomllib
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from checkout import ROOT, create_app, db, migrate, models
from checkout.db import Base, make_engine
from checkout.sandbox import store as sandbox_store

assert models  # registers the site's tables on Base.metadata

SITE = set(Base.metadata.tables)
SANDBOX = set(sandbox_store.Base.metadata.tables)


def differences(url: str, metadata: list[sa.MetaData] | None = None) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(
                context, metadata or [Base.metadata, sandbox_store.Base.metadata]))
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_the_models_of_the_two_branches_share_no_table() -> None:
    assert SITE and SANDBOX
    assert not SITE & SANDBOX
    assert all(name.startswith("sandbox_") for name in SANDBOX)
    assert not any(name.startswith("sandbox_") for name in SITE)


def test_the_migrations_build_the_models_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate.upgrade(url, sandbox=True)
    assert tables(url) == SITE | SANDBOX
    assert differences(url) == []


def test_outside_sandbox_mode_the_site_gets_its_own_tables_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate.upgrade(url, sandbox=False)
    assert tables(url) == SITE
    assert differences(url, [Base.metadata]) == []


def test_the_sandbox_branch_builds_the_sandbox_tables_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    command.upgrade(migrate.alembic_config(url), "sandbox@head")
    assert tables(url) == SANDBOX
    assert differences(url, [sandbox_store.Base.metadata]) == []


def test_sandbox_mode_switched_on_later_adds_the_sandbox_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate.upgrade(url, sandbox=False)
    migrate.upgrade(url, sandbox=True)
    assert tables(url) == SITE | SANDBOX
    assert differences(url) == []


def test_flask_db_upgrade_follows_sandbox_mode(tmp_path: Path) -> None:
    for sandbox, expected in ((False, SITE), (True, SITE | SANDBOX)):
        url = f"sqlite:///{tmp_path / f'sandbox-{sandbox}.db'}"
        app = create_app({
            "TESTING": True, "DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path / "instance"),
            "SECRET_KEY": "test-secret-key", "SANDBOX": sandbox, "PUBLIC_URL": None,
            "PROCESSOR_URL": None if sandbox else "https://app.cryptoprocessing.com/api/v2"})
        try:
            result = app.test_cli_runner().invoke(args=["db", "upgrade"])
        finally:
            app.extensions[db.EXTENSION].remove()
            app.extensions[db.EXTENSION + ".engine"].dispose()
        assert result.exit_code == 0, result.output
        assert "database is up to date" in result.output
        assert tables(url) == expected


def test_the_comparison_sees_a_missing_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate.upgrade(url, sandbox=True)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP INDEX ix_invoice_quotes_address")
    finally:
        engine.dispose()
    assert [diff[0] for diff in differences(url) if isinstance(diff, tuple)] == ["add_index"]


def test_a_non_editable_install_carries_every_migration() -> None:
    """The migration folders are no packages: only package-data puts them in a wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["checkout"]
    package = ROOT / "checkout"
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    needed = [migrate.MIGRATIONS / "env.py", migrate.MIGRATIONS / "script.py.mako"]
    for folder in migrate.BRANCHES.values():
        found = sorted(folder.glob("*.py"))
        assert found, folder
        needed += found
    assert [path for path in needed if path not in shipped] == []
