"""The skeleton: health, settings, merchants CLI, money and signing basics."""

from __future__ import annotations

import gc
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from kit.live import LiveServer

from checkout import config, money
from checkout.models import Merchant
from checkout.wire import signing


def test_healthz_reports_the_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_every_response_carries_security_headers(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_signing_matches_the_official_vector() -> None:
    body = b'{"currency":"BTC","foreign_id":"123456"}'
    expected = ("03c25fcf7cd35e7d995e402cd5d51edd72d48e1471e865907967809a0c189ba55b90815f"
                "20e2bb10f82c7a9e9d865546fda58989c2ae9e8e2ff7bc29195fa1ec")
    assert signing.sign(body, "AbCdEfG123456") == expected
    assert signing.verify(body, "AbCdEfG123456", expected)
    assert not signing.verify(body + b" ", "AbCdEfG123456", expected)
    assert not signing.verify(body, "AbCdEfG12345", expected)
    assert not signing.verify(body, "AbCdEfG123456", None)
    assert not signing.verify(body, "AbCdEfG123456", "é" * 128)


@pytest.mark.parametrize("value", [
    "NaN", "Infinity", "1e3", "1_000", "-1", "+1", "١٢", "0x10", "", " ", "1.", ".5",
    "1,5", "0", "0.000", 1.5, True, None, [], "1" * 21, "0." + "1" * 19,
])
def test_strict_amounts_refuse_anything_odd(value: object) -> None:
    with pytest.raises(money.AmountError):
        money.parse_amount(value)


@pytest.mark.parametrize(("value", "expected"), [
    ("0.00123", Decimal("0.00123")), ("20", Decimal(20)), (5, Decimal(5)),
    (Decimal("1.50"), Decimal("1.50")), (" 12.5 ", Decimal("12.5")),
])
def test_strict_amounts_accept_plain_decimals(value: object, expected: Decimal) -> None:
    assert money.parse_amount(value) == expected


def test_amount_places_are_bounded() -> None:
    assert money.parse_amount("1.50", places=2) == Decimal("1.5")
    with pytest.raises(money.AmountError):
        money.parse_amount("1.505", places=2)


def test_processor_amounts_are_read_leniently_but_never_as_floats() -> None:
    data = money.loads(b'{"a": 1, "b": "0.01000000", "c": 0.1}')
    assert money.from_processor(data["a"]) == Decimal(1)
    assert money.from_processor(data["b"]) == Decimal("0.01")
    assert isinstance(data["c"], Decimal) and data["c"] == Decimal("0.1")
    with pytest.raises(ValueError):
        money.loads(b'{"a": NaN}')
    with pytest.raises(money.AmountError):
        money.from_processor(0.1)


def test_amount_text_is_never_exponent_form() -> None:
    assert money.plain(Decimal("0.00000100")) == "0.000001"
    assert money.plain(Decimal("1E+2")) == "100"
    assert money.text(Decimal("1E-8"), 8) == "0.00000001"
    assert money.dumps({"a": Decimal("1E-8")}) == '{"a":"0.00000001"}'


def test_merchant_add_and_list_never_print_secrets(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=[
        "merchant", "add", "--client-id", "11", "--name", "Shop", "--key", "KEY-xyz",
        "--secret", "SECRET-xyz", "--return-host", "shop.example", "--return-host",
        "pay.shop.example", "--frame-origin", "https://shop.example/",
        "--webhook-url", "https://shop.example/coinspaid/callback"])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(args=["merchant", "list"])
    assert "11\tShop" in listed.output
    assert "https://shop.example" in listed.output and "pay.shop.example" in listed.output
    for output in (result.output, listed.output):
        assert "SECRET-xyz" not in output and "KEY-xyz" not in output
    with app.app_context():
        from checkout import db
        stored = db.session().get(Merchant, 11)
        assert stored is not None and stored.frame_origins == ["https://shop.example"]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--frame-origin", "https://*.shop.example", "'*'"),
    ("--frame-origin", "https://shop.example; script-src *", "';'"),
    ("--frame-origin", "https://shop.example https://evil.example", "spaces"),
    ("--frame-origin", "shop.example", "https://"),
    ("--frame-origin", "https://shop.example/path", "path"),
    ("--return-host", "shop.example/path", "without scheme or path"),
    ("--return-host", "https://shop.example", "without scheme or path"),
    ("--return-host", "bad host", "not a valid host"),
    ("--webhook-url", "ftp://shop.example/cb", "http(s)"),
])
def test_merchant_add_refuses_unsafe_settings(runner: FlaskCliRunner, option: str, value: str,
                                              message: str) -> None:
    result = runner.invoke(args=["merchant", "add", "--client-id", "12", "--name", "S",
                                 "--key", "k", "--secret", "s", option, value])
    assert result.exit_code != 0
    assert message in result.output
    assert "12\t" not in runner.invoke(args=["merchant", "list"]).output


def test_merchant_add_refuses_an_existing_client_id(runner: FlaskCliRunner) -> None:
    args = ["merchant", "add", "--client-id", "13", "--name", "S", "--key", "k", "--secret", "s"]
    assert runner.invoke(args=args).exit_code == 0
    again = runner.invoke(args=args[:-4] + ["--key", "k2", "--secret", "s"])
    assert again.exit_code != 0
    assert "exists already" in again.output


def test_plain_text_keeps_every_digit() -> None:
    many = Decimal("123456789012345678901234567890.123456789012345678")
    assert money.plain(many) == "123456789012345678901234567890.123456789012345678"
    assert money.plain(Decimal("0.000")) == "0"
    assert money.plain(Decimal("10.500")) == "10.5"


def test_the_demo_merchant_and_its_link_work_and_survive_a_rerun(live_server: LiveServer) -> None:
    runner = live_server.app.test_cli_runner()
    first = runner.invoke(args=["demo", "--base-url", live_server.url])
    assert first.exit_code == 0, first.output
    again = runner.invoke(args=["demo", "--base-url", live_server.url])
    assert again.exit_code == 0, again.output
    link = re.search(r"Terminal link: (\S+)", again.output)
    assert link is not None
    opened = requests.get(link.group(1), allow_redirects=False, timeout=30)
    assert opened.status_code == 303
    assert requests.get(live_server.url + opened.headers["Location"], timeout=30).ok
    with live_server.app.app_context():
        from checkout import db
        demo = db.session().get(Merchant, 1000)
        assert demo is not None
        assert demo.api_secret not in first.output + again.output


def test_outside_sandbox_mode_a_secret_key_is_required(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHECKOUT_PROCESSOR_URL", "https://app.cryptoprocessing.com/api/v2/")
    monkeypatch.delenv("CHECKOUT_SECRET_KEY", raising=False)
    with pytest.raises(config.ConfigError, match="CHECKOUT_SECRET_KEY"):
        config.from_environment(tmp_path)
    monkeypatch.setenv("CHECKOUT_SECRET_KEY", "s" * 64)
    settings = config.from_environment(tmp_path)
    assert settings["SANDBOX"] is False
    assert settings["PROCESSOR_URL"] == "https://app.cryptoprocessing.com/api/v2"


def test_sandbox_mode_keeps_one_random_secret_key_per_install(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CHECKOUT_PROCESSOR_URL", raising=False)
    monkeypatch.delenv("CHECKOUT_SECRET_KEY", raising=False)
    first = config.from_environment(tmp_path)["SECRET_KEY"]
    assert len(first) == 64 and first == config.from_environment(tmp_path)["SECRET_KEY"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert config.from_environment(tmp_path / "other")["SECRET_KEY"] != first


def test_processes_starting_at_once_on_a_fresh_install_agree_on_the_sandbox_key(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """gunicorn's workers and `flask worker` all create the app at once: a second process
    that makes the key while the first is still making its own must not end up with
    another key (its page-bound form tokens would fail on every other process)."""
    monkeypatch.delenv("CHECKOUT_PROCESSOR_URL", raising=False)
    monkeypatch.delenv("CHECKOUT_SECRET_KEY", raising=False)
    real_token_hex = config.secrets.token_hex
    others: list[str] = []

    def another_process_gets_there_first(size: int) -> str:
        # This process has seen no key file and is making one: the other one makes its own
        # in between, whole (the interleaving a simultaneous start produces).
        if not others:
            monkeypatch.setattr(config.secrets, "token_hex", real_token_hex)
            others.append(config.from_environment(tmp_path)["SECRET_KEY"])
        return real_token_hex(size)

    monkeypatch.setattr(config.secrets, "token_hex", another_process_gets_there_first)
    ours = config.from_environment(tmp_path)["SECRET_KEY"]
    assert others and ours == others[0] == (tmp_path / "secret_key").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_the_sandbox_is_not_mounted_outside_sandbox_mode(make_app: Any) -> None:
    app = make_app(SANDBOX=False, PROCESSOR_URL="http://127.0.0.1:9/api/v2")
    client = app.test_client()
    assert client.post("/sandbox/api/v2/accounts/list", data="{}").status_code == 404
    assert client.post("/sandbox/simulate/payment", json={}).status_code == 404
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("value", [Decimal("1E+999999999"), Decimal("1E-999999999"),
                                   Decimal("1E+20"), Decimal("-0")])
def test_strict_amounts_refuse_absurd_exponents_without_spelling_them_out(value: Decimal) -> None:
    with pytest.raises(money.AmountError):
        money.parse_amount(value)


def test_strict_amounts_accept_exponent_decimals_within_bounds() -> None:
    assert money.parse_amount(money.loads(b"1.0e-5")) == Decimal("0.00001")


def test_deeply_nested_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested"):
        money.loads(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize("text", [b"[" * 100_000 + b"]" * 100_000, "[" * 3000 + "]" * 3000,
                                  b'{"a":' * 1200 + b"1" + b"}" * 1200])
def test_reading_nested_json_leaves_the_stack_to_the_garbage_collector(
        text: bytes | str) -> None:
    """The nesting is refused before the parser recurses. It used to recurse to the
    interpreter's limit and catch the RecursionError; a collection that struck there ran
    some object's `weakref.finalize` without a frame to spare (a flaky RecursionError under
    warnings-as-errors). Here a collection strikes at every allocation."""
    starved: list[int] = []

    def room(frames: int) -> int:
        return 0 if frames == 0 else room(frames - 1)

    def collecting(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            try:
                room(100)  # what a finalizer may need
            except RecursionError:
                starved.append(info["generation"])

    threshold = gc.get_threshold()
    gc.callbacks.append(collecting)
    gc.set_threshold(1, 10**6, 10**6)  # young collections only: the old ones are slow
    try:
        with pytest.raises(ValueError, match="nested"):
            money.loads(text)
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(collecting)
    assert starved == []


def test_json_nesting_is_bounded_by_structure_not_by_brackets_in_strings() -> None:
    deep = money.MAX_JSON_DEPTH
    assert money.loads("[" * deep + "]" * deep) is not None
    with pytest.raises(ValueError, match="nested"):
        money.loads("[" * (deep + 1) + "]" * (deep + 1))
    text = '{"a":"' + "[{" * 5000 + r'\\","b":["\"[["]}'
    assert money.loads(text) == {"a": "[{" * 5000 + "\\", "b": ['"[[']}
    assert money.loads(b'{"x":[{"y":[1.5]}]}') == {"x": [{"y": [Decimal("1.5")]}]}
    with pytest.raises(ValueError):
        money.loads(b'"[[[[')  # not JSON at all: still a ValueError, never a RecursionError
