"""The migrations build exactly the schema the models declare: a column, index or table added
to a model without its migration (or the other way round) fails here, not in production."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from checkout import migrate, models
from checkout.db import Base, make_engine
from checkout.sandbox import store as sandbox_store

assert models  # registers the site's tables on Base.metadata


def differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, [Base.metadata, sandbox_store.Base.metadata]))
    finally:
        engine.dispose()


def test_the_migrations_build_the_models_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate.upgrade(url)
    assert differences(url) == []


def test_the_comparison_sees_a_missing_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP INDEX ix_invoice_quotes_address")
    finally:
        engine.dispose()
    assert [diff[0] for diff in differences(url) if isinstance(diff, tuple)] == ["add_index"]
