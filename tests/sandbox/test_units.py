"""Properties of the sandbox's parsers, addresses, rates, and the invoice state machine."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from checkout.sandbox import (
    accounts,
    addresses,
    clock,
    currencies,
    invoices,
    operations,
    payloads,
    store,
)
from checkout.sandbox.protocol import Fields
from checkout.wire import jsontext

from .conftest import run_task

amount_like = st.one_of(
    st.text(max_size=30), st.integers(), st.booleans(), st.none(),
    st.decimals(allow_nan=True, allow_infinity=True), st.lists(st.integers(), max_size=2),
    st.from_regex(r"\A-?[0-9]{0,6}(\.[0-9]{0,10})?\Z"))


@given(amount_like)
def test_amount_fields_either_refuse_or_give_a_positive_8_place_decimal(value: Any) -> None:
    fields = Fields({"amount": value})
    amount = fields.amount("amount")
    if amount is None:
        assert set(fields.errors) == {"amount"}
    else:
        assert fields.errors == {}
        assert amount.is_finite() and amount > 0
        assert amount == amount.quantize(Decimal("0.00000001"))


@given(st.integers(min_value=1, max_value=10**9))
def test_derived_addresses_have_valid_checksums(number: int) -> None:
    bech32, base58 = addresses.bech32_checksum_ok, addresses.base58check_ok
    for code, check in (("BTC", bech32), ("LTC", bech32), ("DOGE", base58), ("TRX", base58)):
        address, tag = addresses.derive(currencies.BY_CODE[code], number)
        assert check(address) and tag is None
    _, tag = addresses.derive(currencies.BY_CODE["XRP"], number)
    assert tag == str(addresses.TAG_BASE + number)


@given(st.integers(min_value=0, max_value=2**40))
def test_rates_stay_within_the_swing_and_never_need_floats(at: int) -> None:
    for c in currencies.CURRENCIES:
        price = currencies.usd_price(c, at)
        assert isinstance(price, Decimal)
        assert abs(price / c.usd - 1) <= Decimal("0.01")
        assert currencies.usd_price(c, at) == price  # a pure function of the clock
    btc, eur = currencies.BY_CODE["BTC"], currencies.BY_CODE["EUR"]
    assert "E" not in currencies.amount_text(currencies.rate(eur, btc, at))


FINAL = ("confirmed", "failed")


def _invoice_machine(app: Flask) -> type[RuleBasedStateMachine]:
    client_ids = itertools.count(1000)

    class InvoiceMachine(RuleBasedStateMachine):
        """Payments, time and cancellation in any order: a final state never changes,
        money is credited at most once and only for a confirmed invoice."""

        def __init__(self) -> None:
            super().__init__()
            self.client_id = next(client_ids)
            accounts.open_account(app, self.client_id, f"k{self.client_id}", "s")
            self.final: str | None = None
            with app.app_context(), store.transaction(app) as session:
                now = clock.now(session, app)
                request = invoices.InvoiceRequest(
                    "inv", "T", None, currencies.BY_CODE["EUR"], Decimal(50), True,
                    currencies.BY_CODE["BTC"], "good_until_expired", "https://a.example",
                    "https://b.example", None, None)
                op = invoices.create(session, self.client_id, request, now, "http://127.0.0.1:9")
                self.invoice_id = op.id
                self.due = Decimal(op.amount_sent)
                self.address_id = op.address_id

        def _status(self) -> str:
            with store.transaction(app) as session:
                op = session.get(store.Operation, self.invoice_id)
                assert op is not None
                return op.status

        @rule(part=st.sampled_from(["0.3", "0.5", "1", "1.2"]),
              status=st.sampled_from(["not_confirmed", "confirmed", "cancelled"]))
        def pay(self, part: str, status: str) -> None:
            with app.app_context(), store.transaction(app) as session:
                address = session.get(store.Address, self.address_id)
                assert address is not None
                amount = (self.due * Decimal(part)).quantize(Decimal("0.00000001"))
                operations.receive(session, address, amount, status, clock.now(session, app),
                                   None)

        @rule(seconds=st.sampled_from([5, 60, 900, 24 * 3600]))
        def time_passes(self, seconds: int) -> None:
            clock.advance(app, seconds)
            run_task(app, "confirmations")
            run_task(app, "invoice_expiry")

        @rule()
        def cancel(self) -> None:
            refused: invoices.ApiError | None = None
            try:
                with app.app_context(), store.transaction(app) as session:
                    invoices.cancel(session, self.client_id, "inv", clock.now(session, app))
            except invoices.ApiError as exc:
                refused = exc
            if refused is not None:
                assert refused.status == 400 and self._status() in FINAL

        @invariant()
        def final_states_never_change(self) -> None:
            status = self._status()
            if self.final is not None:
                assert status == self.final
            if status in FINAL:
                self.final = status

        @invariant()
        def money_only_for_a_confirmed_invoice(self) -> None:
            """The invoice's own credit comes only with `confirmed`; money reaching its
            address after it failed is a deposit of its own (credited, and only then)."""
            with store.transaction(app) as session:
                eur = accounts.balance(session, self.client_id, "EUR")
                sent = session.scalars(select(store.Callback.status).where(
                    store.Callback.operation_id == self.invoice_id)
                    .order_by(store.Callback.id)).all()
                late = session.scalars(select(store.Operation).where(
                    store.Operation.address_id == self.address_id,
                    store.Operation.id != self.invoice_id,
                    store.Operation.type.in_(("deposit", "deposit_exchange")))).all()
            status = self._status()
            assert status == "failed" or late == []
            credited = sum((Decimal(op.amount_received) - payloads.fee_total(op, "EUR")
                            for op in late
                            if op.status == "confirmed" and op.currency_received == "EUR"),
                           Decimal(0))
            own = eur - credited
            if status == "confirmed":
                assert Decimal(10000) < own <= Decimal(10050)
            else:
                assert own == Decimal(10000)
            finals = [s for s in sent if s in FINAL]
            assert len(finals) <= 1 and (not finals or sent[-1] == finals[0])

    return InvoiceMachine


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_invoice_state_machine(app: Flask) -> None:
    app.config["PUBLIC_URL"] = "http://127.0.0.1:9"
    run_state_machine_as_test(_invoice_machine(app), settings=settings(
        max_examples=25, stateful_step_count=8, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))


def test_money_text_never_uses_exponents() -> None:
    assert currencies.amount_text(Decimal("1E-8")) == "0.00000001"
    assert jsontext.dumps({"a": Decimal("1E+3")}) == '{"a":"1000"}'
