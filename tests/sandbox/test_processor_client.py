"""The processor client against the embedded sandbox, over real HTTP: every endpoint, and
every error shape the sandbox produces (what a real CoinsPaid account would answer)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from kit.live import LiveServer
from kit.site import MERCHANT_KEY, MERCHANT_SECRET

from checkout import money
from checkout.models import Merchant
from checkout.processor import (
    SANDBOX_PATH,
    Address,
    AuthenticationError,
    ProcessorClient,
    RateLimited,
    ValidationError,
    client_for,
    parse_confirmations,
)
from checkout.sandbox import loopback
from checkout.wire import signing

D = Decimal


@pytest.fixture
def processor(live_server: LiveServer, merchant: Merchant) -> ProcessorClient:
    """Merchant 11's client, built the way the site builds it (client_for)."""
    with live_server.app.app_context():
        client = client_for(merchant)
    assert client.base_url == loopback.base_url(live_server.app) + SANDBOX_PATH
    return client


def fresh(processor: ProcessorClient, key: str = MERCHANT_KEY, secret: str = MERCHANT_SECRET,
          session: requests.Session | None = None) -> ProcessorClient:
    return ProcessorClient(processor.base_url, key, secret, timeout=5.0, session=session,
                           retry_delays=(0, 0))


class AlteringSession(requests.Session):
    """Changes a request after the client signed it, as a broken proxy or an attacker would."""

    def __init__(self, alter: Callable[[requests.PreparedRequest], None]) -> None:
        super().__init__()
        self.alter = alter

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.alter(request)
        return super().send(request, **kwargs)


@pytest.fixture
def altering() -> Iterator[Callable[[Callable[[requests.PreparedRequest], None]],
                                     AlteringSession]]:
    sessions: list[AlteringSession] = []

    def make(alter: Callable[[requests.PreparedRequest], None]) -> AlteringSession:
        sessions.append(AlteringSession(alter))
        return sessions[-1]

    yield make
    for s in sessions:
        s.close()


def _set_body(request: requests.PreparedRequest, body: bytes) -> None:
    request.body = body
    request.headers["Content-Length"] = str(len(body))


def tamper_amount(request: requests.PreparedRequest) -> None:
    assert isinstance(request.body, bytes)
    _set_body(request, request.body.replace(b'"0.001"', b'"0.002"'))


def drop_signature(request: requests.PreparedRequest) -> None:
    del request.headers["X-Processing-Signature"]


def drop_key(request: requests.PreparedRequest) -> None:
    del request.headers["X-Processing-Key"]


def not_json_but_signed(request: requests.PreparedRequest) -> None:
    _set_body(request, b"currency=BTC&foreign_id=1")
    request.headers["X-Processing-Signature"] = signing.sign(request.body, MERCHANT_SECRET)


def form_content_type(request: requests.PreparedRequest) -> None:
    request.headers["Content-Type"] = "application/x-www-form-urlencoded"


# ---------------------------------------------------------------- reads


def test_ping(processor: ProcessorClient) -> None:
    processor.ping()


def test_currencies_list(processor: ProcessorClient) -> None:
    listed = {c.currency: c for c in processor.currencies_list()}
    assert listed["BTC"].type == "crypto" and listed["EUR"].type == "fiat"
    assert isinstance(listed["BTC"].minimum_amount, Decimal) and listed["BTC"].minimum_amount > 0
    assert listed["BTC"].precision >= 8


def test_currencies_pairs_and_rates_agree(processor: ProcessorClient) -> None:
    pairs = processor.currencies_pairs(currency_from="BTC", currency_to="EUR")
    assert [(p.currency_from, p.currency_to) for p in pairs] == [("BTC", "EUR")]
    rate = processor.currencies_rates("BTC", "EUR")
    assert (rate.currency_from, rate.type_from, rate.currency_to, rate.type_to) == (
        "BTC", "crypto", "EUR", "fiat")
    assert rate.price > 1000
    all_pairs = processor.currencies_pairs()
    assert len(all_pairs) > 1 and ("EUR", "USD") not in {
        (p.currency_from, p.currency_to) for p in all_pairs}


def test_accounts_list_shows_every_balance(processor: ProcessorClient) -> None:
    balances = {b.currency: b for b in processor.accounts_list()}
    assert {"BTC", "EUR", "XRP"} <= set(balances)
    assert all(isinstance(b.balance, Decimal) and b.balance >= 0 for b in balances.values())


# ---------------------------------------------------------------- creates


def test_addresses_take(processor: ProcessorClient) -> None:
    address = processor.addresses_take("BTC", "user-id:2048", convert_to="EUR")
    assert isinstance(address, Address)
    assert (address.currency, address.convert_to, address.foreign_id, address.tag) == (
        "BTC", "EUR", "user-id:2048", None)
    assert address.address


def test_addresses_take_for_xrp_has_a_tag(processor: ProcessorClient) -> None:
    address = processor.addresses_take("XRP", "user-7")
    assert address.tag is not None and address.tag.strip()
    assert address.convert_to is None


def test_withdrawal_debits_the_balance_and_is_found_by_transactions_info(
        processor: ProcessorClient) -> None:
    before = {b.currency: b.balance for b in processor.accounts_list()}["BTC"]
    target = processor.addresses_take("BTC", "payee").address
    withdrawal = processor.withdrawal_crypto(
        foreign_id="w-1", currency="BTC", address=target, amount=D("0.001"))
    assert (withdrawal.foreign_id, withdrawal.type, withdrawal.sender_currency) == (
        "w-1", "withdrawal", "BTC")
    assert withdrawal.amount == D("0.001")
    after = {b.currency: b.balance for b in processor.accounts_list()}["BTC"]
    assert after <= before - D("0.001")

    by_foreign_id = processor.transactions_info(foreign_id="w-1")
    by_id = processor.transactions_info(id=withdrawal.id)
    assert by_foreign_id == by_id
    assert (by_id["id"], by_id["foreign_id"], by_id["type"]) == (withdrawal.id, "w-1",
                                                                  "withdrawal")
    for tx in by_id["transactions"]:
        parse_confirmations(tx["confirmations"])
        assert money.from_processor(tx["amount"]) > 0


def test_withdrawal_with_conversion_by_amount_to(processor: ProcessorClient) -> None:
    target = processor.addresses_take("BTC", "payee").address
    withdrawal = processor.withdrawal_crypto(
        foreign_id="w-2", currency="EUR", convert_to="BTC", address=target,
        amount_to=D("0.005"))
    assert (withdrawal.type, withdrawal.sender_currency, withdrawal.receiver_currency) == (
        "withdrawal_exchange", "EUR", "BTC")
    assert withdrawal.receiver_amount == D("0.005")
    assert withdrawal.sender_amount > D("0.005")


def test_exchange_at_a_calculated_price_and_at_once(processor: ProcessorClient) -> None:
    quote = processor.exchange_calculate("BTC", "EUR", sender_amount=D("0.01"))
    assert (quote.sender_amount, quote.sender_currency, quote.receiver_currency) == (
        D("0.01"), "BTC", "EUR")
    assert quote.ts_release == quote.ts_fixed + quote.fix_period
    fixed = processor.exchange_fixed(
        foreign_id="x-1", sender_currency="BTC", receiver_currency="EUR",
        sender_amount=quote.sender_amount, price=quote.price)
    assert (fixed.foreign_id, fixed.type, fixed.sender_amount) == ("x-1", "exchange", D("0.01"))
    assert fixed.price == quote.price
    now = processor.exchange_now(foreign_id="x-2", sender_currency="EUR",
                                 receiver_currency="BTC", receiver_amount=D("0.004"))
    assert (now.foreign_id, now.receiver_amount) == ("x-2", D("0.004"))


def test_invoice_create_then_cancel_once(processor: ProcessorClient) -> None:
    invoice = processor.invoices_create(
        foreign_id="inv 1?#%", title="Order 1", currency="EUR", amount=D("60.00"),
        url_success="https://shop.example/ok", url_failed="https://shop.example/failed",
        timer=True, sender_currency="BTC", email_user="payer@example.com")
    assert (invoice.foreign_id, invoice.status, invoice.currency, invoice.amount) == (
        "inv 1?#%", "pending", "EUR", D("60"))
    assert invoice.address and invoice.sender_amount and invoice.sender_amount > 0
    assert invoice.url.startswith("http")
    processor.invoices_cancel("inv 1?#%")
    with pytest.raises(ValidationError) as again:
        processor.invoices_cancel("inv 1?#%")
    assert again.value.code == "invalid_invoice_state"
    assert "Invoice cannot be failed" in str(again.value)


def test_cancel_of_an_unknown_invoice(processor: ProcessorClient) -> None:
    with pytest.raises(ValidationError) as caught:
        processor.invoices_cancel("no-such-invoice")
    assert "foreign_id" in caught.value.errors


# ---------------------------------------------- refusals, as the processor words them


def test_validation_errors_name_each_field(processor: ProcessorClient) -> None:
    with pytest.raises(ValidationError) as caught:
        processor.addresses_take("NOPE", "f")
    assert caught.value.status == 400
    assert caught.value.errors == {"currency": "The selected currency is invalid."}


REFUSED: list[tuple[str, Callable[[ProcessorClient], Any], set[str]]] = [
    ("unknown pair currencies", lambda c: c.currencies_pairs("NOPE", "NADA"),
        {"currency_from", "currency_to"}),
    ("fiat to fiat exchange", lambda c: c.exchange_calculate("EUR", "USD",
                                                             sender_amount=D(100)),
        {"sender_currency"}),
    ("exchange below the minimum", lambda c: c.exchange_now(
        foreign_id="tiny", sender_currency="BTC", receiver_currency="EUR",
        sender_amount=D("0.00000001")), {"sender_amount"}),
    ("foreign id too long", lambda c: c.addresses_take("BTC", "f" * 256), {"foreign_id"}),
    ("transaction that does not exist", lambda c: c.transactions_info(id=987654), {"id"}),
    ("transaction by unknown foreign id", lambda c: c.transactions_info(foreign_id="nope"),
        {"foreign_id"}),
    ("url_success not a URL", lambda c: c.invoices_create(
        foreign_id="u", title="t", currency="EUR", amount=D(20), url_success="javascript:x",
        url_failed="https://shop.example/f"), {"url_success"}),
]


@pytest.mark.parametrize(("call", "fields"), [case[1:] for case in REFUSED],
                         ids=[case[0] for case in REFUSED])
def test_refusals_keep_the_processors_field_messages(
        processor: ProcessorClient, call: Callable[[ProcessorClient], Any],
        fields: set[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        call(processor)
    assert set(caught.value.errors) == fields
    assert all(message.strip() for message in caught.value.errors.values())
    for message in caught.value.errors.values():
        assert message in str(caught.value)


@pytest.mark.parametrize("create", [
    lambda c, target: c.withdrawal_crypto(foreign_id="dup", currency="BTC", address=target,
                                          amount=D("0.001")),
    lambda c, target: c.invoices_create(foreign_id="dup", title="t", currency="EUR",
                                        amount=D(20), url_success="https://shop.example/s",
                                        url_failed="https://shop.example/f"),
    lambda c, target: c.exchange_now(foreign_id="dup", sender_currency="BTC",
                                     receiver_currency="EUR", sender_amount=D("0.01")),
], ids=["withdrawal", "invoice", "exchange"])
def test_a_repeated_foreign_id_creates_nothing_twice(
        processor: ProcessorClient, create: Callable[[ProcessorClient, str], Any]) -> None:
    target = processor.addresses_take("BTC", "payee").address
    create(processor, target)
    balances = processor.accounts_list()
    with pytest.raises(ValidationError) as caught:
        create(processor, target)
    assert caught.value.errors == {"foreign_id": "The foreign id has already been taken."}
    assert processor.accounts_list() == balances


def test_an_invoice_below_the_minimum(processor: ProcessorClient) -> None:
    with pytest.raises(ValidationError) as caught:
        processor.invoices_create(foreign_id="small", title="t", currency="EUR", amount=D("1"),
                                  url_success="https://shop.example/s",
                                  url_failed="https://shop.example/f")
    assert caught.value.errors["amount"].startswith("The amount is too small.")


@pytest.mark.parametrize("alter", [not_json_but_signed, form_content_type],
                         ids=["body not JSON", "content type not JSON"])
def test_bad_content_format(processor: ProcessorClient, altering: Any,
                            alter: Callable[[requests.PreparedRequest], None]) -> None:
    client = fresh(processor, session=altering(alter))
    with pytest.raises(ValidationError) as caught:
        client.addresses_take("BTC", "f")
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        400, "bad_content_format", "Bad content format")


@pytest.mark.parametrize(("key", "secret", "alter", "code"), [
    ("wrong-key", MERCHANT_SECRET, None, "bad_header_key"),
    (MERCHANT_KEY, "wrong-secret", None, "bad_header_signature"),
    (MERCHANT_KEY, MERCHANT_SECRET, tamper_amount, "bad_header_signature"),
    (MERCHANT_KEY, MERCHANT_SECRET, drop_signature, "required_header_signature"),
    (MERCHANT_KEY, MERCHANT_SECRET, drop_key, "required_header_key"),
], ids=["wrong key", "wrong secret", "body changed after signing", "no signature", "no key"])
def test_authentication_errors(processor: ProcessorClient, altering: Any, key: str, secret: str,
                               alter: Callable[[requests.PreparedRequest], None] | None,
                               code: str) -> None:
    before = processor.accounts_list()
    target = processor.addresses_take("BTC", "payee").address
    client = fresh(processor, key, secret, session=altering(alter) if alter else None)
    with pytest.raises(AuthenticationError) as caught:
        client.withdrawal_crypto(foreign_id="w-auth", currency="BTC", address=target,
                                 amount=D("0.001"))
    assert (caught.value.status, caught.value.code) == (403, code)
    assert processor.accounts_list() == before


def test_exchange_calculate_is_rate_limited(processor: ProcessorClient) -> None:
    answered = 0
    with pytest.raises(RateLimited) as caught:
        for _ in range(40):
            processor.exchange_calculate("BTC", "EUR", sender_amount=D("0.01"))
            answered += 1
    assert answered <= 30
    assert caught.value.status == 429
    processor.currencies_rates("BTC", "EUR")  # other reads are not limited

