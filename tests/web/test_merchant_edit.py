"""`merchant edit`, and a url_back on a host the merchant never registered (issue 11).

A shop whose merchant was added without `--return-host` gets its terminal links refused;
the customer is told plainly why, the operator's log says which host and how to fix it,
and `merchant edit` fixes it at once, without re-adding the merchant or a restart.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskCliRunner
from kit.live import LiveServer
from kit.site import MERCHANT_KEY, MERCHANT_SECRET

from checkout import db, terminal
from checkout.models import Merchant

ADD = ["merchant", "add", "--client-id", "21", "--name", "Kiosk", "--key", "KEY-21",
       "--secret", "SECRET-21"]
README = Path(__file__).resolve().parents[2] / "README.md"


def stored(app: Flask, client_id: int = 21) -> Merchant:
    with app.app_context():
        merchant = db.session().get(Merchant, client_id)
        assert merchant is not None
        db.session().expunge(merchant)
        return merchant


def edit(runner: FlaskCliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(args=["merchant", "edit", "--client-id", "21", *args])
    return result.exit_code, result.output


@pytest.fixture
def kiosk(runner: FlaskCliRunner) -> str:
    """Merchant 21, added without return hosts, frame origins or webhook: the output of add."""
    result = runner.invoke(args=ADD)
    assert result.exit_code == 0, result.output
    return result.output


def test_add_without_return_hosts_says_they_must_be_registered(kiosk: str) -> None:
    assert "Return hosts must be registered" in kiosk
    assert "merchant edit --client-id 21 --return-host" in kiosk
    assert "SECRET-21" not in kiosk and "KEY-21" not in kiosk


def test_the_readme_says_return_hosts_must_be_registered_and_shows_edit() -> None:
    text = README.read_text()
    assert "return hosts must be registered" in text.lower()
    assert "merchant edit --client-id" in text


def test_a_link_back_to_an_unregistered_host_is_explained_then_fixed_by_edit(
        app: Flask, live_server: LiveServer, runner: FlaskCliRunner, kiosk: str,
        caplog: pytest.LogCaptureFixture) -> None:
    link = terminal.encode_link({"client_id": 21, "currency": "BTC", "foreign_id": "o-1",
                                 "url_back": "https://kiosk.example/order/1"}, "SECRET-21")
    with caplog.at_level(logging.WARNING):
        refused = requests.get(f"{live_server.url}/terminal", params=link, timeout=30,
                               allow_redirects=False)
    assert refused.status_code == 400
    assert "return address is not registered with this checkout" in refused.text
    logged = [r.getMessage() for r in caplog.records if "kiosk.example" in r.getMessage()]
    assert logged and "merchant 21" in logged[0]
    assert "merchant edit --client-id 21 --return-host kiosk.example" in logged[0]
    assert "SECRET-21" not in caplog.text

    assert edit(runner, "--return-host", "kiosk.example")[0] == 0
    opened = requests.get(f"{live_server.url}/terminal", params=link, timeout=30,
                          allow_redirects=False)
    assert opened.status_code == 303, opened.text  # served at once, no restart


def test_a_malformed_url_back_keeps_the_general_message(
        app: Flask, live_server: LiveServer, kiosk: str) -> None:
    link = terminal.encode_link({"client_id": 21, "currency": "BTC", "foreign_id": "o-1",
                                 "url_back": "javascript:alert(1)"}, "SECRET-21")
    refused = requests.get(f"{live_server.url}/terminal", params=link, timeout=30)
    assert refused.status_code == 400
    assert "not registered" not in refused.text
    assert "not the shop" in refused.text


def test_edit_adds_and_removes_hosts_and_origins_and_changes_name_and_webhook(
        app: Flask, runner: FlaskCliRunner, kiosk: str) -> None:
    code, output = edit(runner, "--name", "Kiosk Two", "--return-host", "A.kiosk.example",
                        "--return-host", "b.kiosk.example:8443", "--frame-origin",
                        "https://kiosk.example/", "--webhook-url", "https://kiosk.example/cb")
    assert code == 0, output
    merchant = stored(app)
    assert merchant.name == "Kiosk Two"
    assert merchant.return_hosts == ["a.kiosk.example", "b.kiosk.example:8443"]
    assert merchant.frame_origins == ["https://kiosk.example"]
    assert merchant.webhook_url == "https://kiosk.example/cb"
    assert "a.kiosk.example" in output and "https://kiosk.example/cb" in output

    code, output = edit(runner, "--remove-return-host", "a.kiosk.example",
                        "--remove-frame-origin", "https://kiosk.example", "--no-webhook")
    assert code == 0, output
    merchant = stored(app)
    assert merchant.return_hosts == ["b.kiosk.example:8443"]
    assert (merchant.frame_origins, merchant.webhook_url) == ([], None)
    # Key and secret are untouched, and never printed.
    assert (merchant.api_key, merchant.api_secret) == ("KEY-21", "SECRET-21")
    assert "SECRET-21" not in output and "KEY-21" not in output


def test_adding_what_is_there_already_changes_nothing_and_says_so(
        app: Flask, runner: FlaskCliRunner, kiosk: str) -> None:
    assert edit(runner, "--return-host", "kiosk.example")[0] == 0
    code, output = edit(runner, "--return-host", "KIOSK.example")
    assert code == 0 and "nothing changed" in output
    assert stored(app).return_hosts == ["kiosk.example"]


@pytest.mark.parametrize(("args", "message"), [
    ((), "nothing to change"),
    (("--remove-return-host", "never.example"), "not registered"),
    (("--return-host", "ok.example", "--remove-return-host", "never.example"), "not registered"),
    (("--return-host", "ok.example", "--remove-return-host", "ok.example"), "both added"),
    (("--return-host", "https://ok.example/path"), "without scheme or path"),
    (("--return-host", "ok.example", "--frame-origin", "https://*.ok.example"), "'*'"),
    (("--remove-frame-origin", "https://never.example"), "not registered"),
    (("--webhook-url", "ftp://ok.example/cb"), "http(s)"),
    (("--webhook-url", "https://ok.example/cb", "--no-webhook"), "not both"),
    (("--name", "  "), "name must not be empty"),
])
def test_a_bad_edit_is_refused_whole_and_changes_nothing(
        app: Flask, runner: FlaskCliRunner, kiosk: str, args: tuple[str, ...],
        message: str) -> None:
    before = stored(app)
    code, output = edit(runner, *args)
    assert code != 0 and message in output
    after = stored(app)
    assert (after.name, after.return_hosts, after.frame_origins, after.webhook_url) == (
        before.name, before.return_hosts, before.frame_origins, before.webhook_url)


def test_editing_an_unknown_merchant_is_refused(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["merchant", "edit", "--client-id", "999", "--name", "X"])
    assert result.exit_code != 0 and "no merchant with client id 999" in result.output


def test_the_demo_style_merchant_keeps_its_sandbox_account_after_an_edit(
        app: Flask, live_server: LiveServer, runner: FlaskCliRunner, merchant: Merchant) -> None:
    """The key and secret do not change, so the embedded processor still knows the merchant."""
    result = runner.invoke(args=["merchant", "edit", "--client-id", "11", "--name", "Renamed"])
    assert result.exit_code == 0, result.output
    assert MERCHANT_SECRET not in result.output and MERCHANT_KEY not in result.output
    link = terminal.encode_link({"client_id": 11, "currency": "BTC", "foreign_id": "o-2"},
                                MERCHANT_SECRET)
    opened = requests.get(f"{live_server.url}/terminal", params=link, timeout=30,
                          allow_redirects=False)
    assert opened.status_code == 303, opened.text
