"""The processor client over real HTTP against small local servers: wire format, parsing of
every documented response (verbatim from coinspaid-api.md), error shapes, timeouts and
retries. The embedded sandbox is driven in test_processor_sandbox.py."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import coinspaid_doc
from kit.coinspaid_doc import wrapped
from kit.live import PATIENCE
from kit.processor import Reply, ScriptedServer

from checkout import money
from checkout.models import Merchant
from checkout.processor import (
    RETRY_DELAYS,
    Address,
    AuthenticationError,
    BadResponse,
    Balance,
    Currency,
    ExchangeResult,
    Invoice,
    Pair,
    ProcessorClient,
    ProcessorError,
    Quote,
    RateLimited,
    Unavailable,
    ValidationError,
    Withdrawal,
    client_for,
    parse_confirmations,
    parse_tag,
)
from checkout.sandbox import loopback
from checkout.wire import signing

KEY = "key-for-tests"
SECRET = "AbCdEfG123456"  # the secret of the official signing example (coinspaid-api.md §8)


# ---------------------------------------------------------------- local HTTP servers








class SilentServer:
    """Accepts connections and reads, but never answers: the client must time out.

    With `hang_up`, it reads the request and closes the connection without a word.
    """

    def __init__(self, hang_up: bool = False) -> None:
        self.hang_up = hang_up
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/api/v2"
        self.connections: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections.append(conn)
            if self.hang_up:
                conn.settimeout(30)  # only a bound: the client sends at once
                conn.recv(65536)
                conn.close()

    def count(self, expected: int) -> int:
        """Connections accepted, once the accept thread caught up (a busy machine lags)."""
        deadline = time.monotonic() + PATIENCE
        while len(self.connections) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.connections)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for conn in self.connections:
            conn.close()
        self.sock.close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    s = SilentServer()
    yield s
    s.close()


@pytest.fixture
def hangs_up() -> Iterator[SilentServer]:
    s = SilentServer(hang_up=True)
    yield s
    s.close()


def client_of(url: str, **options: Any) -> ProcessorClient:
    options.setdefault("timeout", 30.0)  # scripted servers answer at once; a loaded machine lags
    options.setdefault("retry_delays", (0, 0))
    return ProcessorClient(url, KEY, SECRET, **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# ---------------------------------------------------------------- signing and wire format

V1_BODY = b'{"currency":"BTC","foreign_id":"123456"}'
V1_SIGNATURE = ("03c25fcf7cd35e7d995e402cd5d51edd72d48e1471e865907967809a0c189ba55b90815f"
                "20e2bb10f82c7a9e9d865546fda58989c2ae9e8e2ff7bc29195fa1ec")
EMPTY_SIGNATURE = ("89ff570683bfcd9e2c8911332e07e3ff196ca50f91faef98126fb0eb76df90d7ccddc437"
                   "2a99ba67ec072fd3aac5d0b7eac44652e2b29ce36dbcf5ee50b6fa05")
ADDRESS_201 = wrapped(coinspaid_doc.ADDRESS)


def test_the_official_signing_example_is_what_the_client_sends(server: ScriptedServer) -> None:
    """§8 V1: body + secret -> signature, byte for byte on the wire."""
    server.script((201, ADDRESS_201))
    client_of(server.url).addresses_take("BTC", "123456")
    (request,) = server.seen
    assert request.body == V1_BODY
    assert request.headers["X-Processing-Signature"] == V1_SIGNATURE
    assert request.headers["X-Processing-Key"] == KEY
    assert request.headers["Content-Type"] == "application/json"
    assert (request.method, request.path) == ("POST", "/api/v2/addresses/take")


def test_calls_without_parameters_send_a_signed_empty_object(server: ScriptedServer) -> None:
    client_of(server.url).accounts_list()
    (request,) = server.seen
    assert request.body == b"{}"
    assert request.headers["X-Processing-Signature"] == EMPTY_SIGNATURE


def test_amounts_go_out_as_decimal_strings_and_text_as_utf8(server: ScriptedServer) -> None:
    server.script((200, INVOICE_NOW))
    client_of(server.url).invoices_create(
        foreign_id="order-1", title="Café ☕", currency="EUR", amount=Decimal("1E+2"),
        url_success="https://shop.example/ok", url_failed="https://shop.example/no",
        timer=True, email_user="payer@example.com")
    (request,) = server.seen
    assert request.body == (
        '{"timer":true,"title":"Café ☕","currency":"EUR","amount":"100",'
        '"foreign_id":"order-1","url_success":"https://shop.example/ok",'
        '"url_failed":"https://shop.example/no","email_user":"payer@example.com"}'
    ).encode()
    assert signing.verify(request.body, SECRET, request.headers["X-Processing-Signature"])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(amount=st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("10") ** 12,
                          places=8, allow_nan=False, allow_infinity=False))
def test_any_amount_is_sent_as_plain_text_and_read_back_exactly(
        server: ScriptedServer, amount: Decimal) -> None:
    """Whatever Decimal we send goes out without exponent and is parsed back unchanged,
    as a string or as a bare JSON number."""
    server.seen.clear()
    reply = ('{"data":{"id":1,"foreign_id":"w","type":"withdrawal","status":"processing",'
             f'"amount":"{amount:f}","sender_amount":{amount:f},"sender_currency":"BTC",'
             f'"receiver_amount":"{amount:f}","receiver_currency":"BTC"}}}}')
    server.script((201, reply))
    result = client_of(server.url).withdrawal_crypto(
        foreign_id="w", currency="BTC", address="addr", amount=amount)
    sent = money.loads(server.seen[0].body)["amount"]
    assert isinstance(sent, str) and "E" not in sent.upper() and Decimal(sent) == amount
    assert result.amount == result.sender_amount == amount


# ---------------------------------------------------------------- documented responses


# The document's examples (verbatim, in coinspaid_doc) as the bodies these tests answer with.
CURRENCIES = wrapped("[" + coinspaid_doc.CURRENCY + "," + coinspaid_doc.CURRENCY_FIAT + "]")
PAIRS = wrapped("[" + coinspaid_doc.PAIR + "]")
RATES = wrapped("[" + coinspaid_doc.RATE + "]")
ACCOUNTS = wrapped(coinspaid_doc.ACCOUNTS)
ADDRESS_GO = wrapped(coinspaid_doc.ADDRESS_GO)
WITHDRAWAL = wrapped(coinspaid_doc.WITHDRAWAL)
WITHDRAWAL_EXCHANGE = wrapped(coinspaid_doc.WITHDRAWAL_EXCHANGE)
CALCULATE = wrapped(coinspaid_doc.QUOTE)
EXCHANGE = wrapped(coinspaid_doc.EXCHANGE)
INVOICE_2020 = wrapped(coinspaid_doc.INVOICE_2020)
INVOICE_NOW = wrapped(coinspaid_doc.INVOICE)
DEPOSIT_CALLBACK = coinspaid_doc.DEPOSIT_CALLBACK
# Not in the document: an XRP address whose tag comes back as a JSON number.
ADDRESS_XRP_NUMBER_TAG = ('{"data":{"id":7,"currency":"XRP","convert_to":null,"address":'
                          '"rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh","tag":123456789,'
                          '"foreign_id":"u-7","end_user_reference":"12345"}}')

D = Decimal
Call = Callable[[ProcessorClient], Any]

DOCUMENTED: list[tuple[str, Call, int, str, Any]] = [
    ("currencies/list", lambda c: c.currencies_list(), 200, CURRENCIES, [
        Currency(1, "crypto", "BTC", D("0.001"), D("0.99"), D("0"), 8),
        Currency(20, "fiat", "USD", D("0"), D("0"), D("0"), 8)]),
    ("currencies/pairs", lambda c: c.currencies_pairs("BTC"), 200, PAIRS, [
        Pair("BTC", "crypto", "EUR", "fiat", D(1), D("8795.8"), D("0.003"), D("0.0001"))]),
    ("currencies/rates", lambda c: c.currencies_rates("BTC", "EUR"), 200, RATES,
        Pair("BTC", "crypto", "EUR", "fiat", D(1), D("48715.6168"), D("0.0001"), D("0.0001"))),
    ("accounts/list", lambda c: c.accounts_list(), 200, ACCOUNTS, [
        Balance("DOGE", "crypto", D("13234.91276375")), Balance("EUR", "fiat", D("5973.9756892"))]),
    ("addresses/take", lambda c: c.addresses_take("BTC", "user-id:2048", convert_to="EUR"), 201,
        ADDRESS_201,
        Address(1, "BTC", "EUR", "12983h13ro1hrt24it432t", "tag-123", "user-id:2048")),
    ("addresses/take 200 (NEW)", lambda c: c.addresses_take("BTC", "test", convert_to="USD"),
        200, ADDRESS_GO,
        Address(387552, "BTC", "USD", "2MwToDP2jFAwQxFuUSFzTH9FM8kMDWQCpRt", None, "test")),
    ("addresses/take XRP tag as number", lambda c: c.addresses_take("XRP", "u-7"), 201,
        ADDRESS_XRP_NUMBER_TAG,
        Address(7, "XRP", None, "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh", "123456789", "u-7",
                "12345")),
    ("withdrawal/crypto", lambda c: c.withdrawal_crypto(
        foreign_id="122929", currency="ETH", address="0xabc", amount=D("0.01")), 201, WITHDRAWAL,
        Withdrawal(1, "122929", "withdrawal", "processing", D("0.01"), D("0.01"), "ETH",
                   D("0.01"), "ETH")),
    ("withdrawal/crypto with convert_to", lambda c: c.withdrawal_crypto(
        foreign_id="test", currency="EUR", convert_to="BTC", address="2N...",
        amount=D(25)), 200, WITHDRAWAL_EXCHANGE,
        Withdrawal(2964068, "test", "withdrawal_exchange", "processing", D(25), D(25), "EUR",
                   D("0.0026185"), "BTC")),
    ("exchange/calculate, bare number", lambda c: c.exchange_calculate(
        "BTC", "EUR", sender_amount=D(1)), 200, CALCULATE,
        Quote(D(1), "BTC", D("8549.8168"), "EUR", D("85.498168"), "BTC", D("8549.8168"),
              1564293159, 1564293219, 60)),
    ("exchange/fixed", lambda c: c.exchange_fixed(
        foreign_id="knwi24op9", sender_currency="BTC", receiver_currency="EUR",
        sender_amount=D("0.01"), price=D("6352.06901520")), 201, EXCHANGE,
        ExchangeResult(2687667, "knwi24op9", "exchange", D("0.01"), "BTC", D("63.52069015"),
                       "EUR", D("6.98727592"), "EUR", D("6352.0690152"), "processing")),
    ("exchange/now", lambda c: c.exchange_now(
        foreign_id="knwi24op9", sender_currency="BTC", receiver_currency="EUR",
        sender_amount=D("0.01")), 201, EXCHANGE,
        ExchangeResult(2687667, "knwi24op9", "exchange", D("0.01"), "BTC", D("63.52069015"),
                       "EUR", D("6.98727592"), "EUR", D("6352.0690152"), "processing")),
    ("invoices/create, 2020 shape", lambda c: c.invoices_create(
        foreign_id="164", title="TEST NAME", currency="EUR", amount=D("106.75"),
        url_success="http://success.test", url_failed="http://failed.test"), 200, INVOICE_2020,
        Invoice(79, "https://app.coinspaid.com/invoice/RB9NZv", "164", "TEST NAME", "created",
                "EUR", D("106.75"), "BTC", None, None, 1581929889, 1581930789, None)),
    ("invoices/create, current shape, 201", lambda c: c.invoices_create(
        foreign_id="test_foreign_id_0344", title="Invoice Title", currency="EUR",
        amount=D(100), url_success="https://s.test", url_failed="https://f.test"), 201,
        INVOICE_NOW,
        Invoice(826900, "https://invoices.sandbox.cryptoprocessing.com/invoice/Jyf1cQ",
                "test_foreign_id_0344", "Invoice Title", "created", "EUR", D(100), None, None,
                None, None, None, None, "12345")),
    ("transactions/info", lambda c: c.transactions_info(id=1), 200, DEPOSIT_CALLBACK,
        money.loads(DEPOSIT_CALLBACK)),
    ("transactions/info, wrapped in data", lambda c: c.transactions_info(id=1), 200,
        wrapped(DEPOSIT_CALLBACK), money.loads(DEPOSIT_CALLBACK)),
    ("invoices/cancel, []", lambda c: c.invoices_cancel("196"), 200, "[]", None),
    ("invoices/cancel, empty 204", lambda c: c.invoices_cancel("196"), 204, "", None),
    ("ping", lambda c: c.ping(), 200, "OK", None),
]


@pytest.mark.parametrize(("call", "status", "body", "expected"),
                         [case[1:] for case in DOCUMENTED], ids=[case[0] for case in DOCUMENTED])
def test_documented_responses_parse_exactly(server: ScriptedServer, call: Call, status: int,
                                            body: str, expected: Any) -> None:
    server.script((status, body))
    assert call(client_of(server.url)) == expected
    assert len(server.seen) == 1


def test_transactions_info_keeps_exact_amounts_and_both_confirmation_types(
        server: ScriptedServer) -> None:
    server.script((200, DEPOSIT_CALLBACK))
    info = client_of(server.url).transactions_info(txid="3950ad81")
    (request,) = server.seen
    assert (request.method, request.path, request.body) == (
        "GET", "/api/v2/transactions/info", b'{"txid":"3950ad81"}')
    assert signing.verify(request.body, SECRET, request.headers["X-Processing-Signature"])
    assert info["currency_received"]["amount_minus_fee"] == "6.5119800"
    assert parse_confirmations(info["transactions"][0]["confirmations"]) == 3


def test_transactions_info_reads_bare_numbers_as_decimal_never_float(
        server: ScriptedServer) -> None:
    server.script((200, DEPOSIT_CALLBACK.replace('"amount":"6.53157512"', '"amount":6.53157512')
                   .replace('"confirmations":3', '"confirmations":"3"')))
    info = client_of(server.url).transactions_info(id=1)
    amount = info["currency_sent"]["amount"]
    assert type(amount) is Decimal and amount == Decimal("6.53157512")
    assert parse_confirmations(info["transactions"][0]["confirmations"]) == 3


def test_rate_price_is_units_of_target_per_source() -> None:
    rate = Pair("EUR", "fiat", "BTC", "crypto", D("48715.6168"), D(1), None, None)
    assert rate.price * D("48715.6168") == D(1)


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), ("tag-123", "tag-123"), (123456789, "123456789"),
    (Decimal("42"), "42"), ("0", "0"), (0, "0"),
])
def test_tags_are_strings_or_numbers(value: Any, expected: str | None) -> None:
    assert parse_tag(value) == expected


@pytest.mark.parametrize("value", [True, Decimal("1.5"), [], {}, 1.5])
def test_odd_tags_are_bad_responses(value: Any) -> None:
    with pytest.raises(BadResponse):
        parse_tag(value)


@pytest.mark.parametrize(("value", "expected"), [(3, 3), ("3", 3), ("0", 0), (" 12 ", 12)])
def test_confirmations_are_ints_or_strings(value: Any, expected: int) -> None:
    assert parse_confirmations(value) == expected


@pytest.mark.parametrize("value", [None, True, -1, "-1", "1.0", "", "three", "١", 1.0])
def test_odd_confirmations_are_bad_responses(value: Any) -> None:
    with pytest.raises(BadResponse):
        parse_confirmations(value)


@given(st.one_of(st.integers(min_value=0, max_value=10**9),
                 st.integers(min_value=0, max_value=10**9).map(str)))
def test_confirmations_read_back_any_count(value: int | str) -> None:
    assert parse_confirmations(value) == int(value)


@settings(max_examples=60)
@given(st.one_of(st.none(), st.text(), st.integers(), st.booleans(), st.floats(),
                 st.decimals(), st.lists(st.integers())))
def test_a_tag_is_a_string_or_none_or_refused(value: Any) -> None:
    try:
        tag = parse_tag(value)
    except BadResponse:
        return
    assert tag is None or (isinstance(tag, str) and tag != "")


# ---------------------------------------------------------------- bad success bodies

BAD_SUCCESS: list[tuple[str, Call, str | bytes]] = [
    ("not JSON", lambda c: c.accounts_list(), "<html>oops</html>"),
    ("not UTF-8", lambda c: c.accounts_list(), b"\xff\xfe{"),
    ("no data", lambda c: c.accounts_list(), '{"result":[]}'),
    ("data not a list", lambda c: c.accounts_list(), '{"data":{"currency":"BTC"}}'),
    ("entry not an object", lambda c: c.accounts_list(), '{"data":["BTC"]}'),
    ("NaN amount", lambda c: c.accounts_list(),
        '{"data":[{"currency":"BTC","type":"crypto","balance":NaN}]}'),
    ("NaN string amount", lambda c: c.accounts_list(),
        '{"data":[{"currency":"BTC","type":"crypto","balance":"NaN"}]}'),
    ("boolean amount", lambda c: c.accounts_list(),
        '{"data":[{"currency":"BTC","type":"crypto","balance":true}]}'),
    ("missing amount", lambda c: c.accounts_list(), '{"data":[{"currency":"BTC","type":"x"}]}'),
    ("address missing", lambda c: c.addresses_take("BTC", "f"),
        '{"data":{"id":1,"currency":"BTC","tag":null,"foreign_id":"f"}}'),
    ("id not a number", lambda c: c.addresses_take("BTC", "f"),
        '{"data":{"id":"one","currency":"BTC","address":"a","tag":null,"foreign_id":"f"}}'),
    ("tag an object", lambda c: c.addresses_take("BTC", "f"),
        '{"data":{"id":1,"currency":"BTC","address":"a","tag":{},"foreign_id":"f"}}'),
    ("rate for another pair", lambda c: c.currencies_rates("BTC", "USD"), RATES),
    ("info not an object", lambda c: c.transactions_info(id=1), "[]"),
    ("ping not OK", lambda c: c.ping(), "NOT OK"),
    ("cancel not JSON", lambda c: c.invoices_cancel("1"), "cancelled!"),
]


@pytest.mark.parametrize(("call", "body"), [case[1:] for case in BAD_SUCCESS],
                         ids=[case[0] for case in BAD_SUCCESS])
def test_unreadable_success_bodies_raise_bad_response(server: ScriptedServer, call: Call,
                                                      body: str | bytes) -> None:
    server.script((200, body))
    with pytest.raises(BadResponse):
        call(client_of(server.url))


# ---------------------------------------------------------------- error responses

ERRORS: list[tuple[str, int, str, type[ProcessorError], dict[str, Any]]] = [
    ("required field", 400, '{"errors":{"foreign_id":"The foreign id field is required."}}',
        ValidationError, {"errors": {"foreign_id": "The foreign id field is required."},
                          "code": None}),
    ("taken", 400, '{"errors":{"foreign_id":"The foreign id has already been taken."}}',
        ValidationError, {"errors": {"foreign_id": "The foreign id has already been taken."}}),
    ("two fields", 400, '{"errors":{"currency_from":"The selected currency from is invalid.",'
        '"currency_to":"The selected currency to is invalid."}}', ValidationError,
        {"errors": {"currency_from": "The selected currency from is invalid.",
                    "currency_to": "The selected currency to is invalid."}}),
    ("list of messages", 400, '{"errors":{"amount":["Too small.","Too many places."]}}',
        ValidationError, {"errors": {"amount": "Too small. Too many places."}}),
    ("bad content", 400, '{"error":"Bad content format","code":"bad_content_format"}',
        ValidationError, {"errors": {}, "code": "bad_content_format",
                          "message": "Bad content format"}),
    ("invoice state", 400, '{"errors":{"error":"Invoice cannot be failed in its current '
        'state.","code":"invalid_invoice_state"}}', ValidationError,
        {"errors": {"error": "Invoice cannot be failed in its current state."},
         "code": "invalid_invoice_state"}),
    ("bad signature", 403, '{"error":"Bad signature header","code":"bad_header_signature"}',
        AuthenticationError, {"code": "bad_header_signature", "message": "Bad signature header"}),
    ("no signature", 403, '{"error":"No signature header","code":"required_header_signature"}',
        AuthenticationError, {"code": "required_header_signature"}),
    ("bad key", 403, '{"error":"Bad key header","code":"bad_header_key"}',
        AuthenticationError, {"code": "bad_header_key", "message": "Bad key header"}),
    ("no key", 403, '{"error":"No key header","code":"required_header_key"}',
        AuthenticationError, {"code": "required_header_key"}),
    ("403 HTML", 403, "<h1>Forbidden</h1>", AuthenticationError, {"code": None}),
    ("401", 401, '{"error":"Unauthorized","code":"unauthorized"}', AuthenticationError,
        {"status": 401, "code": "unauthorized"}),
    ("429 documented body", 429, '{"errors": {"error code: 1015"}}', RateLimited,
        {"retry_after": None}),
    ("429 empty", 429, "", RateLimited, {"status": 429}),
    ("404 HTML", 404, "<h1>Not Found</h1>", ProcessorError, {"status": 404}),
    ("500", 500, "Internal Server Error", Unavailable, {"status": 500, "maybe_created": False}),
    ("502", 502, "", Unavailable, {"status": 502}),
]


@pytest.mark.parametrize(("status", "body", "error", "attributes"),
                         [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS])
def test_error_responses_become_typed_errors_that_keep_the_processors_words(
        server: ScriptedServer, status: int, body: str, error: type[ProcessorError],
        attributes: dict[str, Any]) -> None:
    server.script((status, body))
    with pytest.raises(error) as caught:
        client_of(server.url).currencies_list()
    assert type(caught.value) is error
    for name, value in {"status": status, **attributes}.items():
        assert getattr(caught.value, name) == value
    for message in attributes.get("errors", {}).values():
        assert message in str(caught.value)


def test_rate_limits_tell_when_to_come_back(server: ScriptedServer) -> None:
    server.script(Reply(429, b"error code: 1015", {"Retry-After": "17"}))
    with pytest.raises(RateLimited) as caught:
        client_of(server.url).exchange_calculate("BTC", "EUR", sender_amount=D(1))
    assert caught.value.retry_after == 17.0
    assert len(server.seen) == 1  # a rate limit is not hammered with retries


JSON_ISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
).map(lambda value: money.dumps(value).encode())


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(status=st.sampled_from([200, 201, 400, 401, 403, 404, 409, 422, 429, 500, 503]),
       body=st.one_of(st.binary(max_size=60), JSON_ISH,
                      st.builds(lambda e: money.dumps({"errors": e}).encode(), JSON_ISH.map(
                          money.loads))))
def test_whatever_the_processor_answers_the_caller_gets_a_result_or_a_typed_error(
        server: ScriptedServer, status: int, body: bytes) -> None:
    server.script((status, body))
    try:
        client_of(server.url, retry_delays=()).addresses_take("BTC", "f")
    except ProcessorError as exc:
        assert SECRET not in str(exc) and KEY not in str(exc)
        if isinstance(exc, BadResponse):
            assert status in (200, 201) and exc.status in (status, None)
        else:
            assert exc.status == status
    else:
        assert status in (200, 201)


# ---------------------------------------------------------------- arguments checked before sending

BAD_ARGUMENTS: list[tuple[str, Call]] = [
    ("both amounts", lambda c: c.exchange_calculate(
        "BTC", "EUR", sender_amount=D(1), receiver_amount=D(2))),
    ("no amount", lambda c: c.exchange_now(
        foreign_id="f", sender_currency="BTC", receiver_currency="EUR")),
    ("float amount", lambda c: c.withdrawal_crypto(
        foreign_id="f", currency="BTC", address="a", amount=0.1)),  # type: ignore[arg-type]
    ("string amount", lambda c: c.withdrawal_crypto(
        foreign_id="f", currency="BTC", address="a", amount="0.1")),  # type: ignore[arg-type]
    ("negative amount", lambda c: c.withdrawal_crypto(
        foreign_id="f", currency="BTC", address="a", amount=D("-1"))),
    ("zero amount", lambda c: c.invoices_create(
        foreign_id="f", title="t", currency="EUR", amount=D(0), url_success="https://s",
        url_failed="https://f")),
    ("NaN amount", lambda c: c.invoices_create(
        foreign_id="f", title="t", currency="EUR", amount=D("NaN"), url_success="https://s",
        url_failed="https://f")),
    ("infinite price", lambda c: c.exchange_fixed(
        foreign_id="f", sender_currency="BTC", receiver_currency="EUR", sender_amount=D(1),
        price=D("Infinity"))),
    ("amount and amount_to", lambda c: c.withdrawal_crypto(
        foreign_id="f", currency="EUR", convert_to="BTC", address="a", amount=D(1),
        amount_to=D(1))),
    ("amount_to without convert_to", lambda c: c.withdrawal_crypto(
        foreign_id="f", currency="EUR", address="a", amount_to=D(1))),
    ("extra repeats a field", lambda c: c.addresses_take(
        "BTC", "f", extra={"foreign_id": "other"})),
    ("info by nothing", lambda c: c.transactions_info()),
    ("info by two keys", lambda c: c.transactions_info(id=1, txid="t")),
    ("cancel without id", lambda c: c.invoices_cancel("")),
]


@pytest.mark.parametrize("call", [case[1] for case in BAD_ARGUMENTS],
                         ids=[case[0] for case in BAD_ARGUMENTS])
def test_impossible_requests_are_refused_before_anything_is_sent(
        server: ScriptedServer, call: Call) -> None:
    with pytest.raises(ValueError):
        call(client_of(server.url))
    assert server.seen == []


@pytest.mark.parametrize(("key", "secret", "timeout"), [
    ("", "s", 1.0), ("k", "", 1.0), ("k", "s", 0), ("k", "s", -1)])
def test_a_client_needs_credentials_and_a_timeout(key: str, secret: str, timeout: float) -> None:
    with pytest.raises(ValueError):
        ProcessorClient("http://127.0.0.1:1", key, secret, timeout)


def test_optional_fields_are_left_out_and_extra_fields_pass_through(
        server: ScriptedServer) -> None:
    server.script((201, WITHDRAWAL))
    client_of(server.url).withdrawal_crypto(
        foreign_id="w-1", currency="XRP", address="rEb8", tag="99", amount=D("1.50"),
        extra={"sender_type": "legal", "sender_data": {"legal_name": "Shop"}})
    assert money.loads(server.seen[0].body) == {
        "foreign_id": "w-1", "currency": "XRP", "address": "rEb8", "tag": "99",
        "amount": "1.50", "sender_type": "legal", "sender_data": {"legal_name": "Shop"}}


def test_withdrawal_by_amount_to(server: ScriptedServer) -> None:
    server.script((201, WITHDRAWAL_EXCHANGE))
    client_of(server.url).withdrawal_crypto(
        foreign_id="test", currency="EUR", convert_to="BTC", address="2N", amount_to=D("0.001"))
    assert money.loads(server.seen[0].body) == {
        "foreign_id": "test", "currency": "EUR", "convert_to": "BTC", "address": "2N",
        "amount_to": "0.001"}


@pytest.mark.parametrize(("foreign_id", "path"), [
    ("196", "/api/v2/invoices/196/cancel/"),
    ("a/b c?d#e%f", "/api/v2/invoices/a%2Fb%20c%3Fd%23e%25f/cancel/"),
    ("../../accounts/list", "/api/v2/invoices/..%2F..%2Faccounts%2Flist/cancel/"),
    ("заказ-1", "/api/v2/invoices/%D0%B7%D0%B0%D0%BA%D0%B0%D0%B7-1/cancel/"),
])
def test_cancel_quotes_the_foreign_id_into_one_path_segment(
        server: ScriptedServer, foreign_id: str, path: str) -> None:
    server.script((200, "[]"))
    client_of(server.url).invoices_cancel(foreign_id)
    (request,) = server.seen
    assert (request.method, request.path, request.body) == ("POST", path, b"{}")
    assert request.headers["X-Processing-Signature"] == EMPTY_SIGNATURE


# ---------------------------------------------------------------- retries, timeouts, outages

READS: list[tuple[str, Call]] = [
    ("ping", lambda c: c.ping()),
    ("currencies/list", lambda c: c.currencies_list()),
    ("currencies/pairs", lambda c: c.currencies_pairs()),
    ("currencies/rates", lambda c: c.currencies_rates("BTC", "EUR")),
    ("accounts/list", lambda c: c.accounts_list()),
    ("exchange/calculate", lambda c: c.exchange_calculate("BTC", "EUR", sender_amount=D(1))),
    ("transactions/info", lambda c: c.transactions_info(foreign_id="f")),
]
CREATES: list[tuple[str, Call]] = [
    ("addresses/take", lambda c: c.addresses_take("BTC", "f-1")),
    ("withdrawal/crypto", lambda c: c.withdrawal_crypto(
        foreign_id="f-1", currency="BTC", address="a", amount=D(1))),
    ("exchange/fixed", lambda c: c.exchange_fixed(
        foreign_id="f-1", sender_currency="BTC", receiver_currency="EUR", sender_amount=D(1),
        price=D(2))),
    ("exchange/now", lambda c: c.exchange_now(
        foreign_id="f-1", sender_currency="BTC", receiver_currency="EUR", sender_amount=D(1))),
    ("invoices/create", lambda c: c.invoices_create(
        foreign_id="f-1", title="t", currency="EUR", amount=D(10), url_success="https://s",
        url_failed="https://f")),
    ("invoices/cancel", lambda c: c.invoices_cancel("f-1")),
]


def names(cases: list[tuple[str, Call]]) -> list[str]:
    return [case[0] for case in cases]


def calls(cases: list[tuple[str, Call]]) -> list[Call]:
    return [case[1] for case in cases]


@pytest.mark.parametrize("call", calls(READS), ids=names(READS))
def test_reads_are_retried_on_5xx_with_the_same_bytes(server: ScriptedServer, call: Call) -> None:
    server.script((503, "down"))
    pauses: list[float] = []
    with pytest.raises(Unavailable) as caught:
        call(client_of(server.url, retry_delays=RETRY_DELAYS, sleep=pauses.append))
    assert caught.value.maybe_created is False
    assert len(server.seen) == 3
    assert pauses == list(RETRY_DELAYS)
    assert len({(s.body, s.headers["X-Processing-Signature"]) for s in server.seen}) == 1


def test_a_read_succeeds_when_the_processor_comes_back(server: ScriptedServer) -> None:
    server.script((502, ""), (200, ACCOUNTS))
    assert len(client_of(server.url).accounts_list()) == 2
    assert len(server.seen) == 2


@pytest.mark.parametrize("call", calls(CREATES), ids=names(CREATES))
def test_creates_are_never_resent_after_a_5xx(server: ScriptedServer, call: Call) -> None:
    server.script((500, "boom"))
    with pytest.raises(Unavailable) as caught:
        call(client_of(server.url))
    assert caught.value.maybe_created is True
    assert len(server.seen) == 1


@pytest.mark.parametrize("call", calls(READS), ids=names(READS))
def test_reads_time_out_and_are_retried(silent: SilentServer, call: Call) -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        call(client_of(silent.url, timeout=0.1))
    assert time.monotonic() - started < PATIENCE / 4  # three 0.1 s tries, never a default
    assert caught.value.maybe_created is False
    assert "timed out" in str(caught.value)
    assert silent.count(3) == 3


@pytest.mark.parametrize("call", calls(CREATES), ids=names(CREATES))
def test_a_create_that_timed_out_may_exist_and_is_not_resent(silent: SilentServer,
                                                             call: Call) -> None:
    with pytest.raises(Unavailable) as caught:
        call(client_of(silent.url, timeout=0.1))
    assert caught.value.maybe_created is True
    assert silent.count(1) == 1


@pytest.mark.parametrize("call", calls(CREATES), ids=names(CREATES))
def test_a_create_cut_off_after_sending_may_exist_and_is_not_resent(hangs_up: SilentServer,
                                                                   call: Call) -> None:
    with pytest.raises(Unavailable) as caught:
        call(client_of(hangs_up.url))
    assert caught.value.maybe_created is True
    assert "connection failed" in str(caught.value)
    assert len(hangs_up.connections) == 1


def test_a_read_cut_off_after_sending_is_retried(hangs_up: SilentServer) -> None:
    with pytest.raises(Unavailable) as caught:
        client_of(hangs_up.url).accounts_list()
    assert caught.value.maybe_created is False
    assert len(hangs_up.connections) == 3


@pytest.mark.parametrize("call", calls(CREATES), ids=names(CREATES))
def test_a_refused_create_was_not_created(call: Call) -> None:
    """Nothing listens: the connection fails before a byte is sent."""
    with pytest.raises(Unavailable) as caught:
        call(client_of(f"http://127.0.0.1:{free_port()}/api/v2"))
    assert caught.value.maybe_created is False


def test_a_create_refused_at_connect_is_resent_byte_for_byte_once_the_processor_is_up() -> None:
    port = free_port()
    started: list[ScriptedServer] = []

    def pause_while_the_processor_starts(_seconds: float) -> None:
        if not started:
            started.append(ScriptedServer(port))
            started[0].script((201, ADDRESS_201))

    client = client_of(f"http://127.0.0.1:{port}/api/v2", sleep=pause_while_the_processor_starts)
    try:
        address = client.addresses_take("BTC", "123456")
        (request,) = started[0].seen
    finally:
        for s in started:
            s.close()
    assert address.address == "12983h13ro1hrt24it432t"
    assert (request.body, request.headers["X-Processing-Signature"]) == (V1_BODY, V1_SIGNATURE)


def test_a_bad_base_url_is_a_processor_error_not_an_outage() -> None:
    with pytest.raises(ProcessorError) as caught:
        ProcessorClient("not a url", KEY, SECRET).accounts_list()
    assert not isinstance(caught.value, Unavailable)


# ---------------------------------------------------------------- secrets and logs


def test_no_key_secret_or_signature_in_logs_errors_or_repr(
        server: ScriptedServer, silent: SilentServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_of(server.url)
    errors: list[ProcessorError] = []
    server.script((201, ADDRESS_201), (400, '{"errors":{"foreign_id":"taken"}}'),
                  (403, '{"error":"Bad signature header","code":"bad_header_signature"}'),
                  (429, "x"), (500, "x"), (200, "junk"))
    client.addresses_take("BTC", "123456")
    for _ in range(5):
        try:
            client.addresses_take("BTC", "123456")
        except ProcessorError as exc:
            errors.append(exc)
    try:
        client_of(silent.url, timeout=0.1).currencies_list()
    except ProcessorError as exc:
        errors.append(exc)
    assert [type(e) for e in errors] == [ValidationError, AuthenticationError, RateLimited,
                                         Unavailable, BadResponse, Unavailable]
    assert any("POST addresses/take -> 201" in r.getMessage() for r in caplog.records)
    visible = " ".join([caplog.text, repr(client), *(f"{e!s} {e!r}" for e in errors)])
    for hidden in (SECRET, KEY, V1_SIGNATURE):
        assert hidden not in visible


# ---------------------------------------------------------------- client_for


@pytest.mark.parametrize(("config", "expected_base"), [
    ({"PROCESSOR_URL": "https://app.cryptoprocessing.com/api/v2", "PROCESSOR_TIMEOUT": 4.5},
     "https://app.cryptoprocessing.com/api/v2"),
    # The embedded sandbox: on this process's loopback port, not at the public URL.
    ({"PUBLIC_URL": "http://127.0.0.1:8000", "PROCESSOR_TIMEOUT": 3.0}, None),
])
def test_client_for_a_merchant(make_app: Callable[..., Flask], config: dict[str, Any],
                               expected_base: str | None) -> None:
    app = make_app(**config)
    merchant = Merchant(client_id=5, name="m", api_key="k5", api_secret="s5")
    with app.app_context():
        client = client_for(merchant)
    assert client.base_url == (expected_base or loopback.base_url(app) + "/sandbox/api/v2")
    assert client.timeout == config["PROCESSOR_TIMEOUT"]
    assert "s5" not in repr(client)


def test_a_customer_facing_caller_can_fail_fast(make_app: Callable[..., Flask],
                                                server: ScriptedServer) -> None:
    server.script((503, "down"))
    app = make_app(PROCESSOR_URL=server.url, PROCESSOR_TIMEOUT=1.0)
    merchant = Merchant(client_id=5, name="m", api_key=KEY, api_secret=SECRET)
    with app.app_context():
        client = client_for(merchant, retry_delays=())
    with pytest.raises(Unavailable):
        client.currencies_rates("BTC", "EUR")
    assert len(server.seen) == 1
