"""Fidelity of the embedded sandbox and the processor client to coinspaid-api.md.

For every JSON example in the document, the sandbox's real answer (or callback) to the
equivalent request has the same keys at every level and the same JSON types (8-place amount
strings where the document shows them), and the client reads both the document's example
and the sandbox's output. Values may differ.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kit import coinspaid_doc
from kit.coinspaid_doc import wrapped
from kit.live import LiveServer
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from checkout import money
from checkout.processor import AuthenticationError, ProcessorClient, ValidationError
from checkout.sandbox import accounts

from .conftest import API, FROZEN_AT, Api, Receiver, advance, settle

D = Decimal
KEY, SECRET = "fidelity-key", "fidelity-secret"
ETH_TO = "0x" + "ab" * 20
BTC_TO = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"

# --- the document's examples (verbatim, in coinspaid_doc), under this file's names -----------

DOC_CURRENCY = coinspaid_doc.CURRENCY
DOC_FIAT = coinspaid_doc.CURRENCY_FIAT
DOC_PAIR = coinspaid_doc.PAIR
DOC_RATE = coinspaid_doc.RATE
DOC_BALANCE = coinspaid_doc.BALANCE
DOC_ADDRESS = coinspaid_doc.ADDRESS
DOC_WITHDRAWAL = coinspaid_doc.WITHDRAWAL
DOC_WITHDRAWAL_EXCHANGE = coinspaid_doc.WITHDRAWAL_EXCHANGE
DOC_QUOTE = coinspaid_doc.QUOTE
DOC_EXCHANGE = coinspaid_doc.EXCHANGE
DOC_INVOICE = coinspaid_doc.INVOICE
DOC_INVOICE_2020 = coinspaid_doc.INVOICE_2020
DOC_DEPOSIT = coinspaid_doc.DEPOSIT_CALLBACK
DOC_DEPOSIT_EXCHANGE = coinspaid_doc.DEPOSIT_EXCHANGE_CALLBACK
DOC_WITHDRAWAL_CALLBACK = coinspaid_doc.WITHDRAWAL_CALLBACK
DOC_WITHDRAWAL_CANCELLED = coinspaid_doc.WITHDRAWAL_CANCELLED_CALLBACK
DOC_EXCHANGE_CALLBACK = coinspaid_doc.EXCHANGE_CALLBACK
DOC_INVOICE_CALLBACK = coinspaid_doc.INVOICE_CALLBACK

# --- comparing shapes ---------------------------------------------------------------------

_AMOUNT_8 = re.compile(r"\A-?[0-9]+\.[0-9]{8}\Z")
_DECIMAL = re.compile(r"\A-?[0-9]+(\.[0-9]+)?\Z")
# Keys the document shows null in one example and a value in another (or says may be null).
NULLABLE = {"tag", "txid", "convert_to", "address", "sender_currency", "sender_amount",
            "fixed_at", "release_at", "seconds_left", "riskscore", "end_user_reference",
            "foreign_id", "error", "expires_at"}


def kind(value: Any) -> str:
    """The JSON type of a value, with decimal strings told apart by their places."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | Decimal):
        return "number"
    if isinstance(value, str):
        if _AMOUNT_8.match(value):
            return "amount8"
        return "decimal" if _DECIMAL.match(value) else "string"
    return type(value).__name__


def compatible(key: str, doc: Any, ours: Any) -> bool:
    expected, got = kind(doc), kind(ours)
    if expected == got:
        return True
    if "null" in (expected, got) and key in NULLABLE:
        return True
    if key == "confirmations":  # documented both as 3 and as "3"
        return got in ("number", "decimal")
    if key in ("id", "foreign_id", "end_user_reference", "tag"):
        return {expected, got} <= {"string", "decimal", "number"}
    if expected == "amount8":
        return False  # an 8-place amount string must stay one
    # A bare number or a shorter decimal string in the document: any decimal reads the same.
    return expected in ("decimal", "number") and got in ("amount8", "decimal", "number")


def mismatches(doc: Any, ours: Any, where: str = "$", *, extra: frozenset[str] = frozenset(),
               missing: frozenset[str] = frozenset()) -> list[str]:
    """Every difference in keys or types between the document's example and ours.

    `extra`/`missing` name paths (like "$.tag") the document itself allows to differ.
    """
    problems: list[str] = []
    if isinstance(doc, dict) and isinstance(ours, dict):
        for key in doc.keys() - ours.keys():
            if f"{where}.{key}" not in missing:
                problems.append(f"{where}.{key} missing")
        for key in ours.keys() - doc.keys():
            if f"{where}.{key}" not in extra:
                problems.append(f"{where}.{key} not in the document")
        for key in doc.keys() & ours.keys():
            d, o = doc[key], ours[key]
            if isinstance(d, dict | list) or isinstance(o, dict | list):
                problems += mismatches(d, o, f"{where}.{key}", extra=extra, missing=missing)
            elif not compatible(key, d, o):
                problems.append(f"{where}.{key}: {kind(o)} where the document has {kind(d)}")
        return problems
    if isinstance(doc, list) and isinstance(ours, list):
        if len(doc) != len(ours):
            return [f"{where}: {len(ours)} items where the document has {len(doc)}"]
        for i, (d, o) in enumerate(zip(doc, ours, strict=True)):
            problems += mismatches(d, o, f"{where}[{i}]", extra=extra, missing=missing)
        return problems
    if type(doc) is not type(ours):
        return [f"{where}: {kind(ours)} where the document has {kind(doc)}"]
    return problems


def test_the_comparison_itself_catches_differences() -> None:
    doc = money.loads(DOC_WITHDRAWAL_CALLBACK)
    assert mismatches(doc, money.loads(DOC_WITHDRAWAL_CALLBACK)) == []
    changed = money.loads(DOC_WITHDRAWAL_CALLBACK)
    changed["currency_sent"]["amount"] = "0.02"
    del changed["fees"][0]["currency"]
    changed["transactions"][0]["memo"] = "x"
    changed["status"] = 1
    assert sorted(mismatches(doc, changed)) == [
        "$.currency_sent.amount: decimal where the document has amount8",
        "$.fees[0].currency missing",
        "$.status: number where the document has string",
        "$.transactions[0].memo not in the document",
    ]
    assert mismatches(doc, {**changed, "fees": []}) != []


# --- the sandbox, driven the way a merchant's server drives it ------------------------------


@pytest.fixture
def sandbox(live_server: LiveServer, app: Flask, receiver: Receiver) -> Iterator[Api]:
    live_server.app.config["SANDBOX_BASE_CLOCK"] = lambda: FROZEN_AT
    live_server.app.extensions["sandbox.open_account"](11, KEY, SECRET)
    accounts.set_callback_url(app, 11, receiver.url)
    client = Api(live_server.url, KEY, SECRET)
    yield client
    client.http.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def sandbox_client(api: Api) -> ProcessorClient:
    return ProcessorClient(api.base + API, KEY, SECRET, timeout=5.0, retry_delays=())


def take(api: Api, currency: str = "BTC", **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = api.data("addresses/take", {"currency": currency,
                                                       "foreign_id": "user-id:2048", **fields},
                                    201)
    return data


def callbacks_after(api: Api, app: Flask, receiver: Receiver, seconds: int = 0) -> list[Any]:
    if seconds:
        advance(app, seconds)
    settle(app)
    return receiver.bodies()


INVOICE = {"title": "Invoice Title", "currency": "EUR", "amount": "26",
           "url_success": "https://shop.example/ok", "url_failed": "https://shop.example/no",
           "email_user": "payer@example.com"}


def paid_invoice_callbacks(api: Api, app: Flask, receiver: Receiver,
                           confirm: bool) -> list[Any]:
    invoice = api.data("invoices/create", {**INVOICE, "timer": True, "sender_currency": "BTC",
                                           "foreign_id": "229-hdsa"})
    api.simulate(invoice["address"], invoice["sender_amount"])
    return callbacks_after(api, app, receiver, 10 if confirm else 0)


def cancelled_withdrawal(api: Api, app: Flask, receiver: Receiver) -> Any:
    api.data("withdrawal/crypto", {"foreign_id": "123", "currency": "ETH", "amount": "1",
                                   "address": "12345"}, 201)
    return callbacks_after(api, app, receiver, 10)[-1]


def exchange_callback(api: Api, app: Flask, receiver: Receiver) -> Any:
    api.data("exchange/now", {"sender_currency": "EUR", "receiver_currency": "BTC",
                              "receiver_amount": "0.003", "foreign_id": "x-1"}, 201)
    return callbacks_after(api, app, receiver, 10)[-1]


Scenario = Callable[[Api, Flask, Receiver], Any]

# (name, the document's example, what the sandbox answers to the equivalent request,
#  paths the document itself lets differ (extra, missing)).
API_CASES: list[tuple[str, str, Scenario, frozenset[str], frozenset[str]]] = [
    ("currencies/list crypto", DOC_CURRENCY,
     lambda a, _p, _r: a.data("currencies/list")[0], frozenset(), frozenset()),
    ("currencies/list fiat", DOC_FIAT,
     lambda a, _p, _r: next(c for c in a.data("currencies/list") if c["currency"] == "USD"),
     frozenset(), frozenset()),
    ("currencies/pairs", DOC_PAIR,
     lambda a, _p, _r: a.data("currencies/pairs", {"currency_from": "BTC",
                                                   "currency_to": "EUR"})[0],
     frozenset(), frozenset()),
    # "A fiat currency_from has min_amount but no min_amount_deposit_with_exchange."
    ("currencies/pairs fiat source", DOC_PAIR,
     lambda a, _p, _r: a.data("currencies/pairs", {"currency_from": "EUR",
                                                   "currency_to": "BTC"})[0],
     frozenset(), frozenset({"$.currency_from.min_amount_deposit_with_exchange"})),
    ("currencies/rates", DOC_RATE,
     lambda a, _p, _r: a.data("currencies/rates", {"currency_from": "BTC",
                                                   "currency_to": "EUR"})[0],
     frozenset(), frozenset()),
    ("accounts/list", DOC_BALANCE,
     lambda a, _p, _r: next(b for b in a.data("accounts/list") if b["currency"] == "DOGE"),
     frozenset(), frozenset()),
    ("addresses/take", DOC_ADDRESS,
     lambda a, _p, _r: take(a, convert_to="EUR"), frozenset(), frozenset()),
    # "NEW responses also carry end_user_reference."
    ("addresses/take MiCA", DOC_ADDRESS,
     lambda a, _p, _r: take(a, convert_to="EUR", end_user_reference="12345"),
     frozenset({"$.end_user_reference"}), frozenset()),
    ("withdrawal/crypto", DOC_WITHDRAWAL,
     lambda a, _p, _r: a.data("withdrawal/crypto", {"foreign_id": "122929", "currency": "ETH",
                                                    "amount": "0.01", "address": ETH_TO}, 201),
     frozenset(), frozenset()),
    ("withdrawal/crypto with conversion", DOC_WITHDRAWAL_EXCHANGE,
     lambda a, _p, _r: a.data("withdrawal/crypto", {
         "foreign_id": "test", "currency": "EUR", "convert_to": "BTC", "amount": "25",
         "address": BTC_TO}, 201), frozenset(), frozenset()),
    ("exchange/calculate", DOC_QUOTE,
     lambda a, _p, _r: a.data("exchange/calculate", {"sender_currency": "BTC",
                                                     "receiver_currency": "EUR",
                                                     "sender_amount": 1}),
     frozenset(), frozenset()),
    ("exchange/now", DOC_EXCHANGE,
     lambda a, _p, _r: a.data("exchange/now", {"sender_currency": "BTC", "receiver_currency":
                                               "EUR", "sender_amount": "0.01",
                                               "foreign_id": "knwi24op9"}, 201),
     frozenset(), frozenset()),
    # The sandbox adds the invoice address's `tag` (XRP payments are lost without it).
    ("invoices/create", DOC_INVOICE,
     lambda a, _p, _r: a.data("invoices/create", {**INVOICE, "timer": False,
                                                  "foreign_id": "test_foreign_id_0344",
                                                  "end_user_reference": "12345"}),
     frozenset({"$.tag"}), frozenset()),
]


def _fixed_exchange(api: Api, _app: Flask, _r: Receiver) -> Any:
    pair = {"sender_currency": "BTC", "receiver_currency": "EUR", "sender_amount": "0.01"}
    quote = api.data("exchange/calculate", pair)
    return api.data("exchange/fixed", {**pair, "price": quote["price"],
                                       "foreign_id": "knwi24op9"}, 201)


API_CASES.append(("exchange/fixed", DOC_EXCHANGE, _fixed_exchange, frozenset(), frozenset()))

CALLBACK_CASES: list[tuple[str, str, Scenario, frozenset[str], frozenset[str]]] = [
    ("deposit confirmed", DOC_DEPOSIT,
     lambda a, p, r: (a.simulate(take(a)["address"], "0.01", "confirmed"),
                      callbacks_after(a, p, r))[1][-1], frozenset(), frozenset()),
    ("deposit_exchange", DOC_DEPOSIT_EXCHANGE,
     lambda a, p, r: (a.simulate(take(a, convert_to="EUR")["address"], "0.01", "confirmed"),
                      callbacks_after(a, p, r))[1][-1], frozenset(), frozenset()),
    ("withdrawal", DOC_WITHDRAWAL_CALLBACK,
     lambda a, p, r: (a.data("withdrawal/crypto", {"foreign_id": "10", "currency": "BTC",
                                                   "amount": "0.02", "address": BTC_TO}, 201),
                      callbacks_after(a, p, r, 10))[1][-1], frozenset(), frozenset()),
    ("withdrawal cancelled", DOC_WITHDRAWAL_CANCELLED, cancelled_withdrawal,
     frozenset(), frozenset()),
    # §3: the root foreign_id is "present for ... exchange (when set)"; exchange/now sets it.
    ("exchange", DOC_EXCHANGE_CALLBACK, exchange_callback, frozenset({"$.foreign_id"}),
     frozenset()),
    ("invoice processing", DOC_INVOICE_CALLBACK,
     lambda a, p, r: paid_invoice_callbacks(a, p, r, confirm=False)[-1],
     frozenset(), frozenset()),
]


@pytest.mark.parametrize(("name", "doc", "scenario", "extra", "missing"),
                         API_CASES + CALLBACK_CASES, ids=[c[0] for c in API_CASES + CALLBACK_CASES])
def test_sandbox_answers_with_the_documented_shape(
        sandbox: Api, app: Flask, receiver: Receiver, name: str, doc: str, scenario: Scenario,
        extra: frozenset[str], missing: frozenset[str]) -> None:
    ours = scenario(sandbox, app, receiver)
    assert mismatches(money.loads(doc), ours, extra=extra, missing=missing) == [], name


def _doc_variant(doc: str, **changes: Any) -> Any:
    obj = money.loads(doc)
    obj.update(changes)
    return obj


def test_deposit_not_confirmed_has_the_confirmed_shape_without_fees(
        sandbox: Api, app: Flask, receiver: Receiver) -> None:
    """§3: "same shape, "confirmations":"0", "fees":[], "status":"not_confirmed"."""
    sandbox.simulate(take(sandbox)["address"], "0.01")
    [callback] = callbacks_after(sandbox, app, receiver)
    doc = _doc_variant(DOC_DEPOSIT, fees=[], status="not_confirmed")
    assert mismatches(doc, callback) == []
    assert callback["transactions"][0]["confirmations"] == "0"


def test_invoice_callbacks_paid_and_failed_keep_the_shape(
        sandbox: Api, app: Flask, receiver: Receiver) -> None:
    processing, confirmed = paid_invoice_callbacks(sandbox, app, receiver, confirm=True)
    assert (processing["status"], confirmed["status"]) == ("processing", "confirmed")
    doc = _doc_variant(DOC_INVOICE_CALLBACK, status="confirmed", fees=[
        {"type": "fee_crypto_deposit", "currency": "BTC", "amount": "0.0008"}])
    assert mismatches(doc, confirmed) == []
    assert confirmed["currency_sent"]["remaining_amount"] == "0.00000000"

    unpaid = sandbox.data("invoices/create", {**INVOICE, "timer": True, "foreign_id": "late",
                                              "sender_currency": "BTC"})
    [*_, failed] = callbacks_after(sandbox, app, receiver, 15 * 60)
    assert (failed["status"], failed["error"]) == ("failed", "Timer expired. User not paid.")
    doc = _doc_variant(DOC_INVOICE_CALLBACK, status="failed", transactions=[])
    assert mismatches(doc, failed) == []
    assert failed["currency_sent"]["remaining_amount"] == unpaid["sender_amount"]


def test_transactions_info_is_the_callback_object_without_a_data_wrapper(
        sandbox: Api, app: Flask, receiver: Receiver) -> None:
    sandbox.simulate(take(sandbox)["address"], "0.01", "confirmed")
    [callback] = callbacks_after(sandbox, app, receiver)
    response = sandbox.call("transactions/info", {"id": callback["id"]}, method="GET")
    assert response.status_code == 200
    info = money.loads(response.content)
    assert "data" not in info
    assert mismatches(money.loads(DOC_DEPOSIT), info) == []
    assert info == callback
    assert sandbox_client(sandbox).transactions_info(id=callback["id"])["id"] == callback["id"]


def test_withdrawal_exchange_callback_has_exchange_and_mining_fees(
        sandbox: Api, app: Flask, receiver: Receiver) -> None:
    """§3: two legs, the exchange first, then the chain; the processor's withdrawal fee
    (`fee_crypto_withdrawal`, issue 11) in the debited currency and `mining` in the coin."""
    before = sandbox.balance("EUR")
    done = sandbox.data("withdrawal/crypto", {"foreign_id": "wx", "currency": "EUR",
                                              "convert_to": "BTC", "amount": "381",
                                              "address": BTC_TO}, 201)
    [callback] = callbacks_after(sandbox, app, receiver, 10)
    exchange_leg, chain_leg = callback["transactions"]
    doc = money.loads(DOC_WITHDRAWAL_CALLBACK)
    assert mismatches({**doc, "transactions": [], "fees": []},
                      {**callback, "transactions": [], "fees": []},
                      extra=frozenset({"$.crypto_address.convert_to"})) == []
    assert mismatches(money.loads(DOC_EXCHANGE_CALLBACK)["transactions"][0], exchange_leg) == []
    assert mismatches(doc["transactions"][0], chain_leg) == []
    assert [leg["transaction_type"] for leg in callback["transactions"]] == [
        "exchange", "blockchain"]
    fees = {f["type"]: f for f in callback["fees"]}
    assert set(fees) == {"fee_crypto_withdrawal", "mining"}
    assert fees["fee_crypto_withdrawal"]["currency"] == "EUR"
    assert fees["mining"]["currency"] == "BTC" and D(fees["mining"]["amount"]) > 0
    # What left the EUR balance is the amount and every fee, the mining one at the
    # withdrawal's own rate.
    mining_eur = (D(fees["mining"]["amount"]) * D(done["sender_amount"])
                  / D(done["receiver_amount"])).quantize(D("0.00000001"), "ROUND_CEILING")
    assert before - sandbox.balance("EUR") == (
        D("381") + D(fees["fee_crypto_withdrawal"]["amount"]) + mining_eur)


@pytest.mark.parametrize(("kind_", "fee_types"), [
    # §3 lists them among the types seen; issue 11 says which the processor sends for what.
    ("deposit", {"fee_crypto_deposit"}), ("deposit_exchange", {"fee_crypto_deposit_to_fiat"}),
    ("withdrawal", {"mining", "fee_crypto_withdrawal"}), ("invoice", {"fee_crypto_deposit"}),
])
def test_fee_types_are_the_documented_ones(sandbox: Api, app: Flask, receiver: Receiver,
                                           kind_: str, fee_types: set[str]) -> None:
    if kind_ == "invoice":
        body = paid_invoice_callbacks(sandbox, app, receiver, confirm=True)[-1]
    elif kind_ == "withdrawal":
        sandbox.data("withdrawal/crypto", {"foreign_id": "w", "currency": "BTC",
                                           "amount": "0.02", "address": BTC_TO}, 201)
        body = callbacks_after(sandbox, app, receiver, 10)[-1]
    else:
        fields = {"convert_to": "EUR"} if kind_ == "deposit_exchange" else {}
        sandbox.simulate(take(sandbox, **fields)["address"], "0.01", "confirmed")
        body = callbacks_after(sandbox, app, receiver)[-1]
    assert body["type"] == kind_ and body["status"] == "confirmed"
    assert {f["type"] for f in body["fees"]} == fee_types


def test_callbacks_are_compact_json_with_a_json_content_type(
        sandbox: Api, app: Flask, receiver: Receiver) -> None:
    sandbox.simulate(take(sandbox)["address"], "0.01", "confirmed")
    exchange_callback(sandbox, app, receiver)
    cancelled_withdrawal(sandbox, app, receiver)
    assert len(receiver.calls) == 3
    for call in receiver.calls:
        assert call.headers["Content-Type"] == "application/json"
        assert call.body == money.dumps(money.loads(call.body)).encode()


def test_ping_is_a_get_answering_plain_ok(sandbox: Api) -> None:
    response = requests.get(sandbox.base + API + "/ping", timeout=30)
    assert (response.status_code, response.text) == (200, "OK")
    sandbox_client(sandbox).ping()


@pytest.mark.parametrize("foreign_id", [
    "order/7", "/order-7", "order-7/", "a//b", "//", "x/cancel", ".", "..", "../x", "a/./b",
    "%2F", "ä ö?#&", "cancel",
])
def test_cancel_any_foreign_id_end_to_end(sandbox: Api, app: Flask, receiver: Receiver,
                                          foreign_id: str) -> None:
    """The client quotes the foreign_id into the path; the sandbox finds exactly that invoice."""
    client = sandbox_client(sandbox)
    for other in ("a", "b", "x", "order-7", "order", "7", "-"):
        if other != foreign_id:
            sandbox.data("invoices/create", {**INVOICE, "timer": True, "foreign_id": other})
    created = client.invoices_create(foreign_id=foreign_id, timer=True, **{
        k: v for k, v in INVOICE.items() if k != "amount"}, amount=D("26"))
    assert created.foreign_id == foreign_id
    client.invoices_cancel(foreign_id)
    with pytest.raises(ValidationError) as again:
        client.invoices_cancel(foreign_id)
    assert again.value.code == "invalid_invoice_state"
    failed = callbacks_after(sandbox, app, receiver)
    assert [(c["foreign_id"], c["status"]) for c in failed] == [(foreign_id, "failed")]


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "invoices/creat"), ("POST", "nothing"), ("POST", "currencies/list/extra"),
    ("POST", "invoices/x/cancel/more"), ("GET", "invoices//cancel/"), ("DELETE", ""),
])
def test_an_invalid_url_is_the_documented_403(sandbox: Api, method: str, path: str) -> None:
    """§1: `required_header_key` is answered when "the request URL is invalid"."""
    response = sandbox.call(path, {}, method=method)
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"error": "No key header", "code": "required_header_key"}
    with pytest.raises(AuthenticationError) as caught:
        sandbox_client(sandbox)._call(method, path, {}, create=False)
    assert caught.value.code == "required_header_key"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "invoices/create"), ("POST", "ping"), ("POST", "transactions/info"),
    ("GET", "invoices/x/cancel/"),
])
def test_a_known_url_with_the_wrong_method_stays_405(sandbox: Api, method: str,
                                                     path: str) -> None:
    assert sandbox.call(path, {}, method=method).status_code == 405


# --- the client reads the document's examples (served over real HTTP) ----------------------


class DocServer:
    """A processor that answers every call with one documented body."""

    def __init__(self) -> None:
        self.status, self.body, self.mimetype = 200, "", "application/json"
        self.seen: list[tuple[str, str]] = []
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/v2"
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()

    @Request.application  # type: ignore[misc]
    def _wsgi(self, request: Request) -> Response:
        # The path as sent, before any percent-decoding.
        self.seen.append((request.method, request.environ["RAW_URI"]))
        return Response(self.body, status=self.status, mimetype=self.mimetype)

    def answer(self, body: str, status: int = 200, mimetype: str = "application/json") -> None:
        self.status, self.body, self.mimetype = status, body, mimetype


@pytest.fixture
def doc_server() -> Iterator[DocServer]:
    server = DocServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


def wrapped_list(*items: str) -> str:
    return '{"data":[' + ",".join(items) + "]}"


TWO = {"sender_currency": "BTC", "receiver_currency": "EUR"}
INVOICE_ARGS = {"foreign_id": "f", "title": "t", "currency": "EUR", "amount": D("100"),
                "url_success": "https://a.example", "url_failed": "https://a.example"}

# (name, documented body, HTTP status, the client call, what it must read from the body)
CLIENT_CASES: list[tuple[str, str, int, Callable[[ProcessorClient], Any], dict[str, Any]]] = [
    ("currencies/list", wrapped_list(DOC_CURRENCY, DOC_FIAT), 200,
     lambda c: c.currencies_list()[1],
     {"id": 20, "type": "fiat", "currency": "USD", "minimum_amount": D(0), "precision": 8}),
    ("currencies/pairs", wrapped_list(DOC_PAIR), 200, lambda c: c.currencies_pairs()[0],
     {"currency_from": "BTC", "rate_to": D("8795.8"), "min_amount": D("0.003"),
      "min_amount_deposit_with_exchange": D("0.0001"), "type_to": "fiat"}),
    ("currencies/rates", wrapped_list(DOC_RATE), 200, lambda c: c.currencies_rates("BTC", "EUR"),
     {"price": D("48715.6168"), "min_amount": D("0.0001")}),
    ("accounts/list", wrapped_list(DOC_BALANCE), 200, lambda c: c.accounts_list()[0],
     {"currency": "DOGE", "balance": D("13234.91276375")}),
    ("addresses/take", wrapped(DOC_ADDRESS), 201,
     lambda c: c.addresses_take("BTC", "user-id:2048", convert_to="EUR"),
     {"id": 1, "convert_to": "EUR", "tag": "tag-123", "foreign_id": "user-id:2048"}),
    ("withdrawal/crypto", wrapped(DOC_WITHDRAWAL), 201,
     lambda c: c.withdrawal_crypto(foreign_id="122929", currency="ETH", address="0x",
                                   amount=D("0.01")),
     {"status": "processing", "amount": D("0.01"), "receiver_currency": "ETH"}),
    ("withdrawal/crypto exchange", wrapped(DOC_WITHDRAWAL_EXCHANGE), 201,
     lambda c: c.withdrawal_crypto(foreign_id="test", currency="EUR", convert_to="BTC",
                                   address="x", amount_to=D("0.0026185")),
     {"type": "withdrawal_exchange", "receiver_amount": D("0.0026185")}),
    ("exchange/calculate", wrapped(DOC_QUOTE), 200,
     lambda c: c.exchange_calculate("BTC", "EUR", sender_amount=D(1)),
     {"sender_amount": D(1), "fee_amount": D("85.498168"), "ts_release": 1564293219,
      "fix_period": 60}),
    ("exchange/fixed", wrapped(DOC_EXCHANGE), 201,
     lambda c: c.exchange_fixed(foreign_id="knwi24op9", price=D("6352.0690152"),
                                sender_amount=D("0.01"), **TWO),
     {"id": 2687667, "sender_amount": D("0.01"), "fee_currency": "EUR", "status": "processing"}),
    ("exchange/now", wrapped(DOC_EXCHANGE), 201,
     lambda c: c.exchange_now(foreign_id="knwi24op9", sender_amount=D("0.01"), **TWO),
     {"price": D("6352.0690152")}),
    ("invoices/create", wrapped(DOC_INVOICE), 200,
     lambda c: c.invoices_create(**INVOICE_ARGS),
     {"id": 826900, "status": "created", "amount": D(100), "end_user_reference": "12345",
      "address": None, "seconds_left": None, "title": "Invoice Title"}),
    ("invoices/create 2020", wrapped(DOC_INVOICE_2020), 200,
     lambda c: c.invoices_create(**INVOICE_ARGS),
     {"foreign_id": "164", "title": "TEST NAME", "release_at": 1581930789,
      "sender_currency": "BTC", "sender_amount": None}),
    ("invoices/cancel", "[]", 200, lambda c: c.invoices_cancel("a/b"), {}),
    ("ping", "OK", 200, lambda c: c.ping(), {}),
] + [
    (f"transactions/info {name}", body, 200, lambda c: c.transactions_info(id=1),
     {"type": money.loads(body)["type"], "status": money.loads(body)["status"]})
    for name, body in [("deposit", DOC_DEPOSIT), ("deposit_exchange", DOC_DEPOSIT_EXCHANGE),
                       ("withdrawal", DOC_WITHDRAWAL_CALLBACK),
                       ("withdrawal cancelled", DOC_WITHDRAWAL_CANCELLED),
                       ("exchange", DOC_EXCHANGE_CALLBACK), ("invoice", DOC_INVOICE_CALLBACK)]
]


@pytest.mark.parametrize(("name", "body", "status", "call", "expected"), CLIENT_CASES,
                         ids=[c[0] for c in CLIENT_CASES])
def test_client_reads_the_documented_examples(
        doc_server: DocServer, name: str, body: str, status: int,
        call: Callable[[ProcessorClient], Any], expected: dict[str, Any]) -> None:
    doc_server.answer(body, status, "text/plain" if name == "ping" else "application/json")
    client = ProcessorClient(doc_server.url, "k", "s", timeout=5.0, retry_delays=())
    result = call(client)
    for key, value in expected.items():
        got = result[key] if isinstance(result, dict) else getattr(result, key)
        assert got == value and type(got) is type(value), (name, key, got)
    if name.startswith("transactions/info"):
        # Amounts stay exact: bare numbers become Decimal, never float.
        assert result == money.loads(body)
    if name == "ping":
        assert doc_server.seen == [("GET", "/api/v2/ping")]
    if name == "invoices/cancel":
        assert doc_server.seen == [("POST", "/api/v2/invoices/a%2Fb/cancel/")]


@pytest.mark.parametrize(("status", "body", "error", "fields"), [
    (400, '{"errors":{"foreign_id":"The foreign id field is required."}}', ValidationError,
     {"errors": {"foreign_id": "The foreign id field is required."}}),
    (400, '{"errors":{"currency_from":"The selected currency from is invalid.","currency_to":'
          '"The selected currency to is invalid."}}', ValidationError,
     {"errors": {"currency_from": "The selected currency from is invalid.",
                 "currency_to": "The selected currency to is invalid."}}),
    (400, '{"error":"Bad content format","code":"bad_content_format"}', ValidationError,
     {"code": "bad_content_format", "message": "Bad content format"}),
    (400, '{"errors":{"error":"Invoice cannot be failed in its current state.","code":'
          '"invalid_invoice_state"}}', ValidationError,
     {"code": "invalid_invoice_state",
      "errors": {"error": "Invoice cannot be failed in its current state."}}),
    (403, '{"error":"Bad signature header","code":"bad_header_signature"}',
     AuthenticationError, {"code": "bad_header_signature", "message": "Bad signature header"}),
    (403, '{"error":"No signature header","code":"required_header_signature"}',
     AuthenticationError, {"code": "required_header_signature"}),
    (403, '{"error":"Bad key header","code":"bad_header_key"}', AuthenticationError,
     {"code": "bad_header_key"}),
    (403, '{"error":"No key header","code":"required_header_key"}', AuthenticationError,
     {"code": "required_header_key"}),
])
def test_client_keeps_the_documented_error_messages(
        doc_server: DocServer, status: int, body: str, error: type[Exception],
        fields: dict[str, Any]) -> None:
    doc_server.answer(body, status)
    client = ProcessorClient(doc_server.url, "k", "s", timeout=5.0, retry_delays=())
    with pytest.raises(error) as caught:
        client.addresses_take("BTC", "f")
    for key, value in fields.items():
        assert getattr(caught.value, key) == value


# --- the client reads the sandbox's own answers ---------------------------------------------


def test_client_reads_every_sandbox_answer(sandbox: Api, app: Flask,
                                           receiver: Receiver) -> None:
    client = sandbox_client(sandbox)
    client.ping()
    assert {c.currency for c in client.currencies_list()} >= {"BTC", "XRP", "EUR"}
    assert client.currencies_pairs("BTC", "EUR")[0].min_amount_deposit_with_exchange
    assert client.currencies_pairs("EUR", "BTC")[0].min_amount_deposit_with_exchange is None
    assert client.currencies_rates("BTC", "EUR").price > 0
    assert any(b.currency == "DOGE" for b in client.accounts_list())
    xrp = client.addresses_take("XRP", "user-id:2048", end_user_reference="12345")
    assert xrp.tag and xrp.tag.isdigit() and xrp.end_user_reference == "12345"
    plain = client.withdrawal_crypto(foreign_id="w1", currency="ETH", address=ETH_TO,
                                     amount=D("0.01"))
    assert (plain.type, plain.amount) == ("withdrawal", D("0.01"))
    converted = client.withdrawal_crypto(foreign_id="w2", currency="EUR", convert_to="BTC",
                                         address=BTC_TO, amount_to=D("0.0005"))
    assert (converted.type, converted.receiver_amount) == ("withdrawal_exchange", D("0.0005"))
    quote = client.exchange_calculate("BTC", "EUR", sender_amount=D("0.01"))
    assert quote.ts_release == quote.ts_fixed + quote.fix_period == quote.ts_fixed + 60
    fixed = client.exchange_fixed(foreign_id="x1", sender_amount=D("0.01"), price=quote.price,
                                  **TWO)
    assert (fixed.price, fixed.status) == (quote.price, "processing")
    assert client.exchange_now(foreign_id="x2", sender_amount=D("0.01"), **TWO).id > fixed.id
    invoice = client.invoices_create(**{**INVOICE_ARGS, "foreign_id": "i/1"}, timer=True,
                                     sender_currency="BTC", end_user_reference="12345")
    assert invoice.seconds_left == 900 and invoice.address and invoice.sender_amount
    client.invoices_cancel("i/1")
    for kind_ in ("withdrawal", "exchange", "invoice"):
        assert client.transactions_info(foreign_id={"withdrawal": "w1", "exchange": "x1",
                                                    "invoice": "i/1"}[kind_])["type"] == kind_


# --- request validation and figures the document states ------------------------------------


@pytest.mark.parametrize(("payload", "errors"), [
    ({}, {"currency_from": "The currency from field is required.",
          "currency_to": "The currency to field is required."}),
    ({"currency_from": "BTC"}, {"currency_to": "The currency to field is required."}),
    ({"currency_from": "BTC", "currency_to": "EURO"},
     {"currency_to": "The selected currency to is invalid."}),
])
def test_rates_require_both_currencies(sandbox: Api, payload: dict[str, str],
                                       errors: dict[str, str]) -> None:
    """§2.3 lists currency_from and currency_to as the request (pairs has them optional)."""
    assert sandbox.errors("currencies/rates", payload) == errors
    assert len(sandbox.data("currencies/pairs", {})) > 1


@pytest.mark.parametrize(("currency", "amount", "needed"), [
    ("BTC", "0.01", 1), ("ETH", "0.1", 10), ("LTC", "1", 6), ("BCH", "0.1", 6),
    ("DOGE", "10", 6), ("USDTE", "10", 10), ("USDTT", "10", 19), ("USDC", "10", 10),
    ("TRX", "20", 19), ("XRP", "1", 1),
])
def test_a_confirmed_deposit_has_the_currencys_confirmations(
        sandbox: Api, app: Flask, receiver: Receiver, currency: str, amount: str,
        needed: int) -> None:
    """§7: a deposit is credited after the currency's number of confirmations, never fewer."""
    address = take(sandbox, currency)
    sandbox.simulate(address["address"], amount, "confirmed", tag=address["tag"])
    [callback] = callbacks_after(sandbox, app, receiver)
    assert callback["status"] == "confirmed"
    assert int(callback["transactions"][0]["confirmations"]) >= needed


@pytest.mark.parametrize(("path", "payload", "method"), [
    ("withdrawal/crypto", {"foreign_id": "a", "currency": "BTC", "address": BTC_TO,
                           "amount_to": "0.01"}, "POST"),
    ("transactions/info", {"id": 10 ** 30}, "GET"),
    ("transactions/info", {"id": "9" * 40}, "GET"),
])
def test_hostile_requests_get_a_400_not_a_crash(sandbox: Api, path: str,
                                                payload: dict[str, Any], method: str) -> None:
    response = sandbox.call(path, payload, method=method)
    assert response.status_code in (400, 404), response.text
    assert set(response.json()) == {"errors"}
    assert sandbox.balance("BTC") == D(1)


ENDPOINTS = {
    "currencies/list": ["visible"], "currencies/pairs": ["currency_from", "currency_to"],
    "currencies/rates": ["currency_from", "currency_to"], "accounts/list": [],
    "addresses/take": ["foreign_id", "currency", "convert_to", "end_user_reference"],
    "withdrawal/crypto": ["foreign_id", "amount", "currency", "convert_to", "address", "tag",
                          "amount_to"],
    "exchange/calculate": ["sender_currency", "receiver_currency", "sender_amount",
                           "receiver_amount", "price_precision"],
    "exchange/fixed": ["sender_currency", "receiver_currency", "sender_amount",
                       "receiver_amount", "foreign_id", "price"],
    "exchange/now": ["sender_currency", "receiver_currency", "sender_amount",
                     "receiver_amount", "foreign_id"],
    "invoices/create": ["timer", "title", "description", "currency", "amount", "foreign_id",
                        "url_success", "url_failed", "email_user", "sender_currency", "type"],
    "transactions/info": ["id", "foreign_id", "txid"],
}
_HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(-(10 ** 30), 10 ** 30),
    st.decimals(allow_nan=False, allow_infinity=False, places=12),
    st.sampled_from(["BTC", "EUR", "XRP", "USDTT", "", " ", "0", "-1", "1e3", "NaN", "0.00000001",
                     "1.000000001", "99999999999999999999", "https://a.example", "a@b.co",
                     "fill_or_kill", "\u0000", "١٢", "x" * 300, BTC_TO, ETH_TO]),
    st.text(max_size=20), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    path = draw(st.sampled_from(sorted(ENDPOINTS)))
    names = draw(st.lists(st.sampled_from(ENDPOINTS[path] or ["x"]), unique=True))
    return path, {name: draw(_HOSTILE) for name in names}


@settings(max_examples=150, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(request=_requests())
def test_no_request_body_makes_the_sandbox_fail(sandbox: Api,
                                                request: tuple[str, dict[str, Any]]) -> None:
    """Whatever the fields hold, the answer is a documented success or error shape."""
    path, payload = request
    method = "GET" if path == "transactions/info" else "POST"
    response = sandbox.call(path, payload, method=method)
    assert response.status_code in (200, 201, 400, 404, 429), (payload, response.text)
    body = money.loads(response.content) if response.status_code != 429 else None
    if response.status_code in (200, 201) and path != "transactions/info":
        assert set(body) == {"data"}
    elif response.status_code in (400, 404):
        assert set(body) == {"errors"} and body["errors"], body


@pytest.mark.parametrize(("path", "body", "signature"), [
    ("addresses/take", b'{"currency":"BTC","foreign_id":"123456"}',
     "03c25fcf7cd35e7d995e402cd5d51edd72d48e1471e865907967809a0c189ba55b90815f20e2bb10f82c7a9e9d"
     "865546fda58989c2ae9e8e2ff7bc29195fa1ec"),
    ("accounts/list", b"{}",
     "89ff570683bfcd9e2c8911332e07e3ff196ca50f91faef98126fb0eb76df90d7ccddc4372a99ba67ec072fd3aa"
     "c5d0b7eac44652e2b29ce36dbcf5ee50b6fa05"),
    ("accounts/list", b"[]",
     "2da807ab86f47091ca3f7f45aba4c2bd3072fff6f2ef4f88c1ebece372be14ff9800d1e8ffca4b2733f837bcb2"
     "ee8dfb23f56c09e4dc7a0143127820bcba88a8"),
])
def test_the_documented_signature_vectors_are_accepted(live_server: LiveServer, path: str,
                                                       body: bytes, signature: str) -> None:
    """§8: the sandbox accepts exactly the document's signatures for the document's bodies."""
    live_server.app.extensions["sandbox.open_account"](12, "vector-key", "AbCdEfG123456")
    api = Api(live_server.url, "vector-key", "AbCdEfG123456")
    response = api.call(path, raw=body, headers={"X-Processing-Signature": signature})
    assert response.status_code in (200, 201), response.text
    tampered = api.call(path, raw=body, headers={"X-Processing-Signature": signature[:-1] + "0"})
    assert tampered.json() == {"error": "Bad signature header", "code": "bad_header_signature"}
    api.http.close()


def test_a_cancelled_conversion_withdrawal_refunds_every_fee(
        sandbox: Api, app: Flask, receiver: Receiver) -> None:
    before = sandbox.balance("EUR")
    sandbox.data("withdrawal/crypto", {"foreign_id": "bad", "currency": "EUR",
                                       "convert_to": "ETH", "amount": "100",
                                       "address": "12345"}, 201)
    assert sandbox.balance("EUR") < before - D(101)  # amount, exchange and mining fees
    [callback] = callbacks_after(sandbox, app, receiver, 10)
    assert (callback["status"], callback["fees"]) == ("cancelled", [])
    assert "currency_sent" not in callback and "currency_received" not in callback
    assert sandbox.balance("EUR") == before


def test_transactions_info_shows_processing_as_not_confirmed(
        sandbox: Api, app: Flask, receiver: Receiver) -> None:
    """§2.13: internal `processing` reads `not_confirmed`; invoices keep their own statuses."""
    client = sandbox_client(sandbox)
    client.withdrawal_crypto(foreign_id="w", currency="BTC", address=BTC_TO, amount=D("0.01"))
    client.exchange_now(foreign_id="x", sender_amount=D("0.01"), **TWO)
    sandbox.data("invoices/create", {**INVOICE, "timer": True, "foreign_id": "i"})
    seen = {f: client.transactions_info(foreign_id=f)["status"] for f in ("w", "x", "i")}
    assert seen == {"w": "not_confirmed", "x": "not_confirmed", "i": "pending"}
    callbacks_after(sandbox, app, receiver, 10)
    assert {f: client.transactions_info(foreign_id=f)["status"] for f in ("w", "x")} == {
        "w": "confirmed", "x": "confirmed"}


@pytest.mark.parametrize(("sender", "tagged"), [("XRP", True), ("BTC", False)])
def test_client_keeps_the_invoice_address_tag(sandbox: Api, sender: str, tagged: bool) -> None:
    """The sandbox names the tag of a type 3 invoice's shared address; the client keeps it."""
    invoice = sandbox_client(sandbox).invoices_create(
        **{**INVOICE_ARGS, "amount": D(50)}, timer=True, sender_currency=sender)
    assert invoice.address
    if tagged:
        assert invoice.tag is not None and invoice.tag.isdigit()
    else:
        assert invoice.tag is None


def test_every_transaction_leg_has_an_id_of_its_own(sandbox: Api, app: Flask,
                                                    receiver: Receiver) -> None:
    """As in the document's examples (714576, 714577), legs are told apart by their ids."""
    sandbox.simulate(take(sandbox, convert_to="EUR")["address"], "0.01")
    sandbox.simulate(take(sandbox)["address"], "0.01")
    sandbox.data("withdrawal/crypto", {"foreign_id": "w", "currency": "EUR",
                                       "convert_to": "BTC", "amount": "50",
                                       "address": BTC_TO}, 201)
    exchange_callback(sandbox, app, receiver)
    paid_invoice_callbacks(sandbox, app, receiver, confirm=True)
    legs: dict[int, tuple[int, str, str]] = {}
    for body in receiver.bodies():
        ids = [leg["id"] for leg in body["transactions"]]
        assert len(ids) == len(set(ids)), body
        for leg in body["transactions"]:
            # One id per leg: the same leg in a later callback keeps it, no other leg takes it.
            what = (body["id"], leg["transaction_type"], leg["currency"])
            assert legs.setdefault(leg["id"], what) == what
    assert len(legs) >= 7
