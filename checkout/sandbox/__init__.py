"""The embedded CoinsPaid sandbox: a processor of its own behind HTTP.

It imports nothing of the site but the wire format, `checkout.wire` (signatures; PHP
json_encode bytes, as the real processor's bodies are; decimal amounts as text); only the app
factory mounts it, and adds its jobs (`worker_tasks`) to the worker's list. It keeps its own
tables (`sandbox_*`, built by its own Alembic branch, `sandbox`, in sandbox/migrations/), its
own engine on the same database, and its own clock.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from . import accounts, api, cli, invoices, loopback, operations, outbox, shop, simulate, store


def init_app(app: Flask) -> None:
    """Mount the processor API and the sandbox controls."""
    store.init_app(app)
    cli.init_app(app)
    for blueprint in (api.bp, simulate.bp, shop.bp):
        app.register_blueprint(blueprint)
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        # The processor and its controls are JSON APIs authenticated by signatures (or by
        # nothing, like the chain); a browser form token has no place there.
        for blueprint in (api.bp, simulate.bp, shop.bp):
            csrf.exempt(blueprint)

    def open_account(client_id: int, key: str, secret: str) -> None:
        accounts.open_account(app, client_id, key, secret)

    app.extensions["sandbox.open_account"] = open_account

    def endpoint(origin: str) -> tuple[str, dict[str, str]]:
        return loopback.endpoint(app, origin)

    # The site's processor client reaches the sandbox here, never at the site's own address.
    app.extensions["sandbox.endpoint"] = endpoint


def worker_tasks(app: Flask) -> dict[str, Callable[[], int]]:
    """The sandbox's jobs, for the worker's list: the processor's callbacks, confirmations
    and invoice timers, each on the sandbox's own engine and clock (so: this app's)."""
    return {
        "sandbox.callbacks": lambda: outbox.send_due(app),
        "sandbox.confirmations": lambda: operations.confirm_due(app),
        "sandbox.invoice_expiry": lambda: invoices.expire_due(app),
    }
