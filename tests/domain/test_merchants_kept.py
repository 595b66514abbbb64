"""Merchants kept in each process, under the version every change raises: each way a merchant
changes (the `merchant` command, the back office's settings, policies, secret and paused
deliveries, a new merchant) is seen by another process at its very next lookup; and a signed
request reads no merchant row once its process keeps the merchant."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from kit import budgets
from kit.callbacks import deposit_body, post
from kit.console import add_person
from kit.deposits import BTC_ADDRESS, LINK
from kit.invoices import ORDER
from kit.site import MERCHANT_KEY, MERCHANT_SECRET
from PIL import Image
from sqlalchemy.orm import Session

from checkout import clock, db, merchants, totp
from checkout.models import DepositAddress, Merchant
from checkout.services import delivery_health
from checkout.services import merchant_settings as ms
from checkout.wire import signing

Check = Callable[[Merchant], bool]


@pytest.fixture
def kept(app: Flask, merchant: Merchant) -> Flask:
    """A process that keeps merchant 11, looked up by client id and by key."""
    seen(app)
    return app


@pytest.fixture
def other(make_app: Callable[..., Flask], kept: Flask) -> Flask:
    """Another process on the same database."""
    return make_app()


def seen(app: Flask) -> list[Merchant]:
    """Merchant 11 as the process finds it now: by client id (a link), by key (an API call
    or a callback)."""
    with app.app_context():
        by_id = merchants.by_client_id(11)
        by_key = merchants.by_key(MERCHANT_KEY)
    assert by_id is not None and by_key is not None
    return [by_id, by_key]


def version(app: Flask) -> int:
    with app.app_context():
        return merchants.read_version(db.session())


def edit(app: Flask, *args: str) -> None:
    result = app.test_cli_runner().invoke(args=["merchant", "edit", "--client-id", "11",
                                                *args])
    assert result.exit_code == 0, result.output


COMMAND_EDITS: list[tuple[list[str], Check]] = [
    (["--name", "Renamed"], lambda m: m.name == "Renamed"),
    (["--return-host", "new.example"], lambda m: "new.example" in m.return_hosts),
    (["--remove-return-host", "shop.example"], lambda m: m.return_hosts == []),
    (["--frame-origin", "https://new.example"],
     lambda m: "https://new.example" in m.frame_origins),
    (["--remove-frame-origin", "https://shop.example"], lambda m: m.frame_origins == []),
    (["--webhook-url", "https://hooks.example/in"],
     lambda m: m.webhook_url == "https://hooks.example/in"),
    (["--no-webhook"], lambda m: m.webhook_url is None),
    (["--language", "de"], lambda m: m.language == "de"),
    (["--display-name", "Brand"], lambda m: m.shown_name == "Brand"),
    (["--accent", "#0b5cad"], lambda m: m.accent is not None),
    (["--instructions", "Pay soon"], lambda m: m.instructions.get("default") == "Pay soon"),
    (["--underpaid-percent", "2"], lambda m: m.underpaid_percent == "2"),
    (["--underpaid-fiat", "1.5"], lambda m: m.underpaid_fiat == "1.5"),
    (["--policy-currency", "USD"], lambda m: m.policy_currency == "USD"),
    (["--no-late-accept"], lambda m: m.late_accept is False),
    (["--refund-auto-below", "10"], lambda m: m.refund_auto_below == "10"),
]


@pytest.mark.parametrize(("args", "check"), COMMAND_EDITS,
                         ids=[" ".join(args) for args, _ in COMMAND_EDITS])
def test_a_merchant_edit_is_seen_by_another_process_at_once(
        kept: Flask, other: Flask, args: list[str], check: Check) -> None:
    assert not any(check(m) for m in seen(kept))
    edit(other, *args)
    assert all(check(m) for m in seen(kept))


def logo_file(tmp_path: Path) -> Path:
    path = tmp_path / "logo.png"
    Image.new("RGB", (300, 100), "#0b5cad").save(path, "PNG")
    return path


def test_a_logo_added_or_removed_raises_the_version_every_process_reads(
        kept: Flask, other: Flask, tmp_path: Path) -> None:
    before = version(kept)
    edit(other, "--logo", str(logo_file(tmp_path)))
    added = version(kept)
    assert added > before
    edit(other, "--no-logo")
    assert version(kept) > added


def test_an_edit_that_changes_nothing_or_fails_leaves_the_version(
        kept: Flask, other: Flask) -> None:
    before = version(kept)
    edit(other, "--name", "Shop")  # already so
    failed = other.test_cli_runner().invoke(args=[
        "merchant", "edit", "--client-id", "11", "--name", "New", "--return-host", "x/y"])
    assert failed.exit_code != 0
    assert version(kept) == before
    assert [m.name for m in seen(kept)] == ["Shop", "Shop"]


# ---------------------------------------------------------------- the back office


@pytest.fixture
def person(other: Flask) -> Any:
    return add_person(other, "admin@shop.example", roles={11: "owner"})


def in_back_office(app: Flask, act: Callable[[Session, ms.Actor, str], object],
                   person: Any) -> None:
    actor = ms.Actor(person.id, person.email, "192.0.2.1")
    with app.app_context(), db.transaction() as session:
        act(session, actor, totp.code_at(person.secret, clock.now()))


BACK_OFFICE: list[tuple[str, Callable[[Session, ms.Actor, str], object], Check]] = [
    ("brand", lambda s, a, _c: ms.save_brand(
        s, 11, ms.BrandForm(name="Shop", display_name="Brand", accent="#0b5cad"), actor=a),
     lambda m: m.shown_name == "Brand" and m.accent is not None),
    ("developer", lambda s, a, c: ms.save_developer(
        s, 11, ms.DeveloperForm(webhook_url="https://hooks.example/in",
                                return_hosts="new.example", frame_origins=""),
        c, actor=a, now=clock.now()),
     lambda m: m.return_hosts == ["new.example"] and m.frame_origins == []),
    ("policies", lambda s, a, c: ms.save_policies(
        s, 11, ms.PolicyForm(underpaid_percent="3", late_accept=False), c, actor=a,
        now=clock.now()),
     lambda m: m.underpaid_percent == "3" and m.late_accept is False),
    ("secret", lambda s, a, c: ms.replace_secret(s, 11, c, actor=a, now=clock.now(),
                                                 issued="a-new-secret"),
     lambda m: m.api_secret == "a-new-secret"),
    ("paused deliveries", lambda s, a, _c: delivery_health.set_paused(
        s, None, 11, True, delivery_health.Actor(a.user_id, a.email, a.address)),
     lambda m: m.deliveries_paused_at is not None),
]


@pytest.mark.parametrize(("act", "check"), [(act, check) for _, act, check in BACK_OFFICE],
                         ids=[name for name, _, _ in BACK_OFFICE])
def test_a_back_office_change_is_seen_by_another_process_at_once(
        kept: Flask, other: Flask, person: Any,
        act: Callable[[Session, ms.Actor, str], object], check: Check) -> None:
    assert not any(check(m) for m in seen(kept))
    in_back_office(other, act, person)
    assert all(check(m) for m in seen(kept))


def test_a_back_office_logo_raises_the_version(kept: Flask, other: Flask, person: Any,
                                               tmp_path: Path) -> None:
    before = version(kept)
    png = logo_file(tmp_path).read_bytes()
    in_back_office(other, lambda s, a, _c: ms.save_brand(
        s, 11, ms.BrandForm(name="Shop", logo=png), actor=a), person)
    assert version(kept) > before


def test_a_new_merchant_is_found_by_another_process_at_once(kept: Flask, other: Flask) -> None:
    with kept.app_context():
        assert merchants.by_client_id(12) is None and merchants.by_key("k-12") is None
    with other.app_context():
        merchants.add(merchants.NewMerchant(12, "Second", "k-12", "s-12"))
    with kept.app_context():
        found = [merchants.by_client_id(12), merchants.by_key("k-12")]
    assert [m.name if m else None for m in found] == ["Second", "Second"]


def test_a_replaced_secret_signs_the_next_callback_and_the_old_one_no_longer(
        kept: Flask, other: Flask, person: Any) -> None:
    body = deposit_body(1, "not_confirmed")
    client = kept.test_client()
    assert post(client, body).status_code == 200
    in_back_office(other, lambda s, a, c: ms.replace_secret(
        s, 11, c, actor=a, now=clock.now(), issued="a-new-secret"), person)
    assert post(client, body).status_code == 403
    headers = {"Content-Type": "application/json", "X-Processing-Key": MERCHANT_KEY,
               "X-Processing-Signature": signing.sign(body, "a-new-secret")}
    assert post(client, body, headers).status_code == 200


def test_a_kept_merchant_is_a_copy_of_the_callers_own(kept: Flask) -> None:
    """Shared between threads, a kept merchant is never handed out itself: what a caller
    writes to its copy reaches neither the next caller nor the database."""
    first, _ = seen(kept)
    first.name = "Scribbled"
    with kept.app_context(), db.transaction():
        pass
    assert [m.name for m in seen(kept)] == ["Shop", "Shop"]
    with kept.app_context():
        assert db.session().get(Merchant, 11).name == "Shop"  # type: ignore[union-attr]


# ---------------------------------------------------------------- signed requests


MERCHANT_ROW = re.compile(r"\bmerchants\b", re.IGNORECASE)


def merchant_reads(spent: budgets.Spent) -> list[str]:
    return [s for s in spent.queries if MERCHANT_ROW.search(s)]


def test_a_callback_reads_no_merchant_row_once_kept(kept: Flask) -> None:
    with kept.app_context(), db.transaction() as s:
        s.add(DepositAddress(merchant_id=11, foreign_id=str(LINK["foreign_id"]),
                             currency="BTC", convert_to="", address=BTC_ADDRESS))
    client = kept.test_client()
    for processor_id in (1, 2):  # the first may find it kept already; the second must
        body = deposit_body(processor_id, "not_confirmed", address=BTC_ADDRESS,
                            foreign_id=str(LINK["foreign_id"]), txid=f"{processor_id:064x}")
        with budgets.spent(kept) as spent:
            assert post(client, body).status_code == 200
    assert merchant_reads(spent) == [], str(spent)


def test_an_invoice_create_reads_no_merchant_row_once_kept(kept: Flask) -> None:
    client = kept.test_client()
    for foreign_id in ("kept-1", "kept-2"):
        raw = json.dumps({**ORDER, "foreign_id": foreign_id}).encode()
        headers = {"Content-Type": "application/json", "X-Processing-Key": MERCHANT_KEY,
                   "X-Processing-Signature": signing.sign(raw, MERCHANT_SECRET)}
        with budgets.spent(kept) as spent:
            answer = client.post("/api/v2/invoices/create", data=raw, headers=headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
    assert merchant_reads(spent) == [], str(spent)


def test_threads_looking_merchants_up_while_another_process_edits_see_the_last_edit(
        kept: Flask, other: Flask) -> None:
    """Many threads of one process look the merchant up while edits land: none fails, and
    once the last edit is in, every lookup finds it."""
    names = [f"Shop {n}" for n in range(5)]
    errors: list[BaseException] = []
    done = threading.Event()

    def look_up() -> None:
        try:
            while not done.is_set():
                seen(kept)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=look_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for name in names:
            edit(other, "--name", name)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert [m.name for m in seen(kept)] == [names[-1]] * 2


def test_a_request_that_changes_its_merchant_reads_it_afresh_afterwards(kept: Flask) -> None:
    """The version a request read stands for the merchants it saw; once the same session
    changes one, code later in it reads the row, not the copy kept before the change."""
    with kept.app_context():
        session = db.session()
        assert merchants.by_key(MERCHANT_KEY) is not None  # the request's authentication
        assert merchants.in_transaction(session, 11).name == "Shop"  # type: ignore[union-attr]
        merchants.edit_in(session, 11, merchants.MerchantEdit(name="Renamed"))
        session.flush()
        assert merchants.in_transaction(session, 11).name == "Renamed"  # type: ignore[union-attr]
        session.rollback()


def test_a_session_that_raised_the_version_reads_its_own_and_finds_its_change(
        kept: Flask) -> None:
    """Before a transaction the version is read beside the session, as committed; inside
    one, in it: a lookup after the session's own uncommitted change finds that change, not
    the copy kept under the committed version."""
    committed = version(kept)
    with kept.app_context():
        session = db.session()
        merchants.edit_in(session, 11, merchants.MerchantEdit(name="Renamed"))
        session.flush()
        assert merchants.read_version(session) == committed + 1
        found = merchants.snapshot_by_client_id(session, 11)
        assert found is not None and dict(found.values)["name"] == "Renamed"
        session.rollback()
    assert version(kept) == committed
    assert [m.name for m in seen(kept)] == ["Shop"] * 2
