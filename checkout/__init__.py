"""checkout: a self-hosted hosted checkout in front of the CoinsPaid merchant API v2."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask

if TYPE_CHECKING:
    from .worker import Task

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the site from small named steps; `config` overrides the environment (tests)."""
    app = Flask(
        __name__,
        static_folder=str(ROOT / "static"),
        template_folder=str(ROOT / "templates"),
        instance_path=str(ROOT / "instance"),
    )
    load_settings(app, config or {})
    init_storage(app)
    init_extensions(app)
    register_blueprints(app)
    register_commands(app)
    wrap_wsgi(app)
    return app


def worker_tasks(app: Flask) -> dict[str, Task]:
    """The worker's one task list, run in this order on every loop. Nothing else adds a task."""
    from . import limits, rates
    from .pagekinds import snapshot
    from .services import deliveries, invoices, reconcile, refunds
    from .web import pagestore

    tasks: dict[str, Task] = {"invoices.expiry": invoices.expire_due}  # the shop's timers
    if app.config["SANDBOX"]:
        from . import sandbox

        tasks.update(sandbox.worker_tasks(app))
    tasks.update({
        "reconcile": reconcile.run_due,  # ask the processor about pages gone quiet
        "refunds": refunds.send_due,  # approved refunds to pay, sent ones gone quiet
        "limits": limits.refresh_if_stale,  # minimum deposits
        "rates": partial(rates.refresh_all, snapshot.mark_open_pages),  # and the open pages
        "deliveries": deliveries.run_due,  # callbacks to the shops
        "renderings": pagestore.prune,  # pages' stored HTML grown old
    })
    return tasks


def load_settings(app: Flask, overrides: dict[str, Any]) -> None:
    from .config import from_environment

    instance = Path(overrides.get("INSTANCE_PATH", app.instance_path))
    app.config.from_mapping(from_environment(instance))
    app.config.from_mapping(overrides)


def init_storage(app: Flask) -> None:
    from . import db
    from .pagekinds import snapshot
    from .web import pagecache, qrimages

    db.init_app(app)
    pagecache.init_app(app)
    qrimages.init_app(app)
    # Every transaction that changes a page writes its model before it commits.
    snapshot.install(app.extensions[db.EXTENSION + ".factory"])


def init_extensions(app: Flask) -> None:
    from .web import assets, inputs, language, security

    inputs.init_app(app)  # first: every later hook meets a bounded body of text
    security.init_app(app)
    language.init_app(app)
    assets.init_app(app)


def register_blueprints(app: Flask) -> None:
    # refund_claims adds its routes to the customer blueprint as it is imported: before
    # customer.init_app registers it.
    from .web import (
        branding,
        callbacks,
        console,
        customer,
        errors,
        find,
        health,
        merchant_api,
        refund_claims,
    )

    errors.init_app(app)
    health.init_app(app)
    customer.init_app(app)
    find.init_app(app)
    refund_claims.init_app(app)
    branding.init_app(app)
    callbacks.init_app(app)
    merchant_api.init_app(app)
    console.init_app(app)
    if app.config["SANDBOX"]:
        # Only the factory mounts the embedded processor, and only in sandbox mode.
        from . import sandbox

        sandbox.init_app(app)
    from .web import ratelimit

    ratelimit.init_app(app)  # wraps the views registered above


def wrap_wsgi(app: Flask) -> None:
    from .web import callback_front, front, link_front, pagerows, security

    # The hottest customer requests are answered before Flask runs (front.py); the proxy
    # fix goes outside, so that their rate limits count the client's address, not the proxy's.
    # The front keeps what it reads until a notice (PostgreSQL) or the change log (SQLite)
    # says it changed (pagerows.py).
    pagerows.install(app)
    link_front.install(app)  # a terminal link clicked again; inside the front's mended query
    callback_front.install(app)  # a signed processor callback
    front.install(app)
    security.trust_proxies(app, int(app.config.get("TRUSTED_PROXIES", 0)))


def register_commands(app: Flask) -> None:
    from . import demo, limits, merchants, migrate_cli, user_commands, worker
    from .services import deliveries

    merchants.init_app(app)
    worker.init_app(app, worker_tasks(app))
    limits.init_app(app)
    deliveries.init_app(app)
    migrate_cli.init_app(app)
    demo.init_app(app)
    user_commands.init_app(app)
