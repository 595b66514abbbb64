"""Alembic environment: both the site's and the embedded sandbox's tables."""

from __future__ import annotations

from alembic import context

from checkout import models  # noqa: F401  (registers the site's tables)
from checkout.db import Base, make_engine
from checkout.sandbox import store as sandbox_store

target_metadata = [Base.metadata, sandbox_store.Base.metadata]


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,  # ALTER TABLE on SQLite
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()  # no connection outlives the run


run_migrations_online()
