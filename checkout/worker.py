"""The background worker: one loop over one list of small, idempotent tasks, safe to run
several times over.

The list is the app factory's (`worker_tasks` in `checkout/__init__.py`): no module adds
itself, so what the worker does is read in one place, and the worker imports none of the
modules whose work it runs. Each task is called inside an app context and returns how much
work it did, so the loop can sleep when idle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

log = logging.getLogger(__name__)
EXTENSION = "checkout.worker.tasks"
Task = Callable[[], int]


def the_app(app: Flask | None = None) -> Flask:
    """`app`, else the current one: a task keeps working once its context is gone."""
    return app or current_app._get_current_object()  # type: ignore[attr-defined]


def tasks(app: Flask) -> dict[str, Task]:
    return app.extensions.get(EXTENSION, {})


def run_once(app: Flask | None = None) -> int:
    """Run every task once; returns the total amount of work done. Errors are logged, not fatal."""
    app = the_app(app)
    done = 0
    for name, task in tasks(app).items():
        with app.app_context():
            try:
                done += task()
            except Exception:
                log.exception("worker task %s failed", name)
    return done


def run_forever(app: Flask, idle_sleep: float = 1.0, max_loops: int | None = None) -> None:
    loops = 0
    while max_loops is None or loops < max_loops:
        loops += 1
        if run_once(app) == 0:
            time.sleep(idle_sleep)


@click.command("worker")
@click.option("--once", is_flag=True, help="Run every task once and exit.")
@click.option("--idle-sleep", default=1.0, show_default=True, help="Seconds to wait when idle.")
@with_appcontext
def worker_command(once: bool, idle_sleep: float) -> None:
    """Deliver merchant callbacks, reconcile waiting pages, run sandbox jobs."""
    app = the_app()
    if once:
        click.echo(f"worker: {run_once(app)} items done")
        return
    click.echo("worker: running (Ctrl+C to stop)")
    run_forever(app, idle_sleep=idle_sleep)


def init_app(app: Flask, task_list: dict[str, Task]) -> None:
    """The worker of this app runs `task_list`, in its order, on every loop."""
    app.extensions[EXTENSION] = dict(task_list)
    app.cli.add_command(worker_command)
