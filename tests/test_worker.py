"""The worker process: killed mid-delivery, nothing is lost; its tasks never crash the loop."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import IO

import pytest
from conftest import PATIENCE
from flask import Flask
from flask.testing import FlaskClient
from test_callbacks_kit import Clock, deposit_body, post, running_shop, use_shop

from checkout import ROOT, db, deliveries, worker
from checkout.clock import system_now
from checkout.models import Delivery, Merchant


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

    worker.register_task(app, "broken", broken)
    worker.register_task(app, "fine", fine)
    with caplog.at_level(logging.ERROR, logger="checkout.worker"):
        done = worker.run_once(app)
    assert ran == ["fine"] and done >= 1
    assert "worker task broken failed" in caplog.text


def test_the_worker_registers_deliveries_and_reconciliation(app: Flask) -> None:
    tasks = app.extensions[worker.EXTENSION]
    assert tasks["deliveries"] is deliveries.run_due
    assert "reconcile" in tasks
