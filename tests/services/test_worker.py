"""The worker process: killed mid-delivery, nothing is lost; its tasks never crash the loop."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import IO

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import Clock, deposit_body, post, running_shop, use_shop
from kit.live import PATIENCE, start_live_server
from kit.site import MERCHANT_SECRET

from checkout import ROOT, create_app, db, terminal, worker
from checkout.clock import system_now
from checkout.models import Delivery, Merchant, Page
from checkout.services import deliveries


def only_delivery(app: Flask) -> Delivery:
    with app.app_context():
        [row] = db.session().query(Delivery).all()
        return row


def start_worker_process(database_url: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CHECKOUT_DATABASE_URL": database_url,
        "CHECKOUT_SECRET_KEY": "worker-test-key",
        "CHECKOUT_DELIVERY_TIMEOUT": "20",
    }
    env.pop("CHECKOUT_PROCESSOR_URL", None)
    flask = Path(sys.executable).parent / "flask"
    return subprocess.Popen(
        [str(flask), "--app", "checkout", "worker", "--idle-sleep", "0.05"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)


def test_a_worker_killed_mid_delivery_leaves_it_to_the_next_worker(
        app: Flask, client: FlaskClient, merchant: Merchant, database_url: str,
        tmp_path: Path) -> None:
    with running_shop(script=[200, 200]) as shop:
        use_shop(app, shop)
        shop.gate = gate = threading.Event()
        body = deposit_body(1, "confirmed")
        assert post(client, body).status_code == 200
        with open(tmp_path / "worker.log", "wb") as log:
            process = start_worker_process(database_url, log)
            try:
                arrived = shop.arrived.wait(PATIENCE)
            finally:
                process.kill()  # SIGKILL: no cleanup, no result written
                process.wait()
        assert arrived, (tmp_path / "worker.log").read_text()
        gate.set()
        held = only_delivery(app)
        assert (held.state, held.attempts) == ("pending", 0)
        assert held.lease_until is not None and held.lease_until > system_now()

        # A new worker (this process) finds it held until the dead worker's lease runs out.
        shop.gate = None
        with app.app_context():
            assert deliveries.run_due() == 0
        app.config["CLOCK"] = Clock(held.lease_until + timedelta(seconds=1))
        with app.app_context():
            assert deliveries.run_due() == 1
    done = only_delivery(app)
    assert (done.state, done.attempts, done.last_status) == ("delivered", 1, 200)
    assert [r.body for r in shop.received] == [body, body]
    assert shop.verifies(shop.received[-1])


def test_a_failing_task_is_logged_and_the_others_still_run(
        app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    def broken() -> int:
        raise RuntimeError("boom")

    def fine() -> int:
        ran.append("fine")
        return 1

    worker.init_app(app, {"broken": broken, "fine": fine})
    with caplog.at_level(logging.ERROR, logger="checkout.worker"):
        done = worker.run_once(app)
    assert ran == ["fine"] and done == 1
    assert "worker task broken failed" in caplog.text


SITE_TASKS = ["invoices.expiry", "reconcile", "refunds", "limits", "rates", "deliveries",
              "renderings"]
SANDBOX_TASKS = ["sandbox.callbacks", "sandbox.confirmations", "sandbox.invoice_expiry"]


def test_the_worker_runs_the_factory_s_one_list(make_app: Callable[..., Flask]) -> None:
    site = make_app(SANDBOX=False, PROCESSOR_URL="https://app.cryptoprocessing.com/api/v2")
    assert list(worker.tasks(site)) == SITE_TASKS
    assert worker.tasks(site)["deliveries"] is deliveries.run_due
    with_sandbox = make_app(SANDBOX=True)
    assert sorted(worker.tasks(with_sandbox)) == sorted(SITE_TASKS + SANDBOX_TASKS)


def test_the_sandbox_s_tasks_run_on_the_app_they_were_made_for(
        make_app: Callable[..., Flask]) -> None:
    app = make_app(SANDBOX=True)
    tasks = worker.tasks(app)
    # No app context is pushed: each sandbox task reaches its own app's engine and clock.
    assert [tasks[name]() for name in SANDBOX_TASKS] == [0, 0, 0]


def test_the_worker_s_rate_refresh_writes_the_open_pages_models_anew(
        make_app: Callable[..., Flask], merchant: Merchant) -> None:
    app = make_app()
    live = start_live_server(app)  # the site's processor: its embedded sandbox, over HTTP
    try:
        link = {"client_id": 11, "currency": "BTC", "foreign_id": "rates-1",
                "amount": "0.00123", "convert_to": "EUR"}
        opened = app.test_client().get("/terminal",
                                       query_string=terminal.encode_link(link, MERCHANT_SECRET))
        assert opened.status_code == 303
        page_id = str(opened.headers["Location"]).split("?")[0].rsplit("/", 1)[-1]
        with app.app_context():
            before = db.session().get(Page, page_id)
            assert before is not None
            version = before.model_version
        app.config["RATES_MAX_AGE"] = 0  # every stored rate is due now
        with app.app_context():
            assert worker.tasks(app)["rates"]() > 1
        with app.app_context():
            after = db.session().get(Page, page_id)
            assert after is not None and after.model_version == version + 1
    finally:
        live.server.shutdown()
        live.server.server_close()


def test_the_worker_loop_keeps_going_while_the_database_is_unreachable(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app({
        "TESTING": True, "SECRET_KEY": "test", "SANDBOX": True, "PROCESSOR_URL": None,
        "PUBLIC_URL": "http://127.0.0.1:9", "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "postgresql+psycopg://nobody:nothing@127.0.0.1:9/none",
    })
    try:
        with caplog.at_level(logging.ERROR, logger="checkout.worker"):
            worker.run_forever(app, idle_sleep=0.01, max_loops=3)
    finally:
        app.extensions[db.EXTENSION + ".engine"].dispose()
    failed = [r.getMessage() for r in caplog.records]
    assert failed.count("worker task deliveries failed") == 3
    assert failed.count("worker task reconcile failed") == 3
