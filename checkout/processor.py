"""HTTP client for the CoinsPaid merchant API v2 (production or the embedded sandbox).

Every request is signed over the exact bytes sent; every call has a timeout. Reads are
retried on `Unavailable`; creates are sent once, and resent (same bytes, same
`foreign_id`) only when the connection failed before a single byte left, so a retry
can never make a second address, withdrawal, exchange or invoice. A create that may
have reached the processor raises `Unavailable(maybe_created=True)`: reconcile, do not
create again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import quote

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from . import money
from .wire import signing

if TYPE_CHECKING:
    from .models import Merchant

log = logging.getLogger(__name__)

SANDBOX_PATH = "/sandbox/api/v2"
# Reads are retried after these pauses (seconds); short, because a customer may be waiting.
RETRY_DELAYS = (0.2, 0.5)


# ---------------------------------------------------------------- errors


class ProcessorError(Exception):
    """The processor refused or failed a call; `message` keeps what it said."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ValidationError(ProcessorError):
    """400: `errors` maps field -> message; `code` is set for `{"error","code"}` bodies
    (e.g. "bad_content_format") and for coded errors such as "invalid_invoice_state"."""

    def __init__(self, message: str, *, status: int | None = 400,
                 errors: Mapping[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(message, status=status)
        self.errors: dict[str, str] = dict(errors or {})
        self.code = code


def is_foreign_id_taken(exc: BaseException) -> bool:
    """The processor refused a create because its foreign_id was used before ("The foreign
    id has already been taken."): the first call got through, so wait for its callback or
    look it up (`withdrawal_info`), never send it under a new foreign_id."""
    if not isinstance(exc, ValidationError):
        return False
    message = exc.errors.get("foreign_id", "")
    return "taken" in message.lower()


class AuthenticationError(ProcessorError):
    """403: wrong or missing key or signature; `code` as the processor gave it."""

    def __init__(self, message: str, *, status: int | None = 403,
                 code: str | None = None) -> None:
        super().__init__(message, status=status)
        self.code = code


class RateLimited(ProcessorError):
    """429 (exchange/calculate: 30 a minute per IP); its body is not even valid JSON."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class Unavailable(ProcessorError):
    """5xx, connection error or timeout. `maybe_created` is true when a create may have
    reached the processor: find out what happened before creating anything again."""

    def __init__(self, message: str, *, status: int | None = None,
                 maybe_created: bool = False) -> None:
        super().__init__(message, status=status)
        self.maybe_created = maybe_created


class BadResponse(ProcessorError):
    """A success status whose body we cannot read as the documented shape."""


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Currency:
    id: int
    type: str  # "crypto" | "fiat"
    currency: str
    minimum_amount: Decimal
    deposit_fee_percent: Decimal
    withdrawal_fee_percent: Decimal
    precision: int


@dataclass(frozen=True)
class Pair:
    """A currency pair; `rate_to` of `currency_to` is worth `rate_from` of `currency_from`."""

    currency_from: str
    type_from: str
    currency_to: str
    type_to: str
    rate_from: Decimal
    rate_to: Decimal
    min_amount: Decimal | None
    min_amount_deposit_with_exchange: Decimal | None

    @property
    def price(self) -> Decimal:
        """Units of `currency_to` for one unit of `currency_from`."""
        return self.rate_to / self.rate_from


# currencies/rates answers with exactly the shape of currencies/pairs.
Rate: TypeAlias = Pair


@dataclass(frozen=True)
class Balance:
    currency: str
    type: str
    balance: Decimal


@dataclass(frozen=True)
class Address:
    id: int
    currency: str
    convert_to: str | None
    address: str
    tag: str | None
    foreign_id: str
    end_user_reference: str | None = None


@dataclass(frozen=True)
class Withdrawal:
    id: int
    foreign_id: str
    type: str  # "withdrawal" | "withdrawal_exchange"
    status: str
    amount: Decimal
    sender_amount: Decimal
    sender_currency: str
    receiver_amount: Decimal
    receiver_currency: str


# A withdrawal's statuses that never change again (callbacks: confirmed, cancelled;
# transactions/info also declined). `pending` waits for a person at the processor (its
# withdrawal limits); `processing` (answer) and `not_confirmed` (transactions/info) are on
# their way.
WITHDRAWAL_FINAL = frozenset({"confirmed", "cancelled", "declined"})


@dataclass(frozen=True)
class WithdrawalInfo:
    """A withdrawal as its callback or transactions/info tells it (the same object).

    A cancelled one carries no `currency_sent`/`currency_received` (so None here) and says
    why in `error`; `txid` comes with the chain leg once confirmed; `amount` is that leg's
    (what the address receives), always present."""

    id: int
    foreign_id: str
    type: str  # "withdrawal" | "withdrawal_exchange"
    status: str
    error: str | None  # None when the processor sent "" or null
    address: str | None
    tag: str | None
    currency: str  # the coin that goes on chain
    amount: Decimal
    txid: str | None
    confirmations: int
    currency_sent: str | None
    amount_sent: Decimal | None
    currency_received: str | None
    amount_received: Decimal | None

    @property
    def final(self) -> bool:
        return self.status in WITHDRAWAL_FINAL


@dataclass(frozen=True)
class Quote:
    """exchange/calculate: a price held for `fix_period` seconds (until `ts_release`)."""

    sender_amount: Decimal
    sender_currency: str
    receiver_amount: Decimal
    receiver_currency: str
    fee_amount: Decimal
    fee_currency: str
    price: Decimal
    ts_fixed: int
    ts_release: int
    fix_period: int


@dataclass(frozen=True)
class ExchangeResult:
    id: int
    foreign_id: str | None
    type: str
    sender_amount: Decimal
    sender_currency: str
    receiver_amount: Decimal
    receiver_currency: str
    fee_amount: Decimal | None
    fee_currency: str | None
    price: Decimal | None
    status: str


@dataclass(frozen=True)
class Invoice:
    id: int
    url: str
    foreign_id: str
    title: str | None
    status: str
    currency: str
    amount: Decimal
    sender_currency: str | None
    sender_amount: Decimal | None
    address: str | None
    fixed_at: int | None
    release_at: int | None
    seconds_left: int | None
    end_user_reference: str | None = None
    # Not in the documented shape, but a type 3 XRP/BNB invoice is unpayable without it.
    tag: str | None = None


# ---------------------------------------------------------------- lenient field readers


def parse_tag(value: Any) -> str | None:
    """A destination tag or memo: string or JSON number (UNCONFIRMED which), "" is none."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    raise BadResponse(f"tag is neither a string nor a whole number: {value!r}")


def parse_confirmations(value: Any) -> int:
    """Confirmations arrive as 3 or "3"."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    raise BadResponse(f"confirmations is not a whole number: {value!r}")


class _Fields:
    """Reads one JSON object of a response; any surprise becomes a BadResponse."""

    def __init__(self, obj: Any, where: str) -> None:
        if not isinstance(obj, dict):
            raise BadResponse(f"{where}: expected an object, got {type(obj).__name__}")
        self.obj: dict[str, Any] = obj
        self.where = where

    def _fail(self, key: str, why: str) -> BadResponse:
        return BadResponse(f"{self.where}: {key} {why}: {self.obj.get(key)!r}")

    def opt_text(self, key: str) -> str | None:
        value = self.obj.get(key)
        if value is None:
            return None
        # Ids such as foreign_id were numbers in some documented examples.
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise self._fail(key, "is not a string")

    def text(self, key: str) -> str:
        value = self.opt_text(key)
        if value is None:
            raise self._fail(key, "is missing")
        return value

    def opt_integer(self, key: str) -> int | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
            return int(value)
        raise self._fail(key, "is not a whole number")

    def integer(self, key: str) -> int:
        value = self.opt_integer(key)
        if value is None:
            raise self._fail(key, "is missing")
        return value

    def opt_amount(self, key: str) -> Decimal | None:
        value = self.obj.get(key)
        if value is None:
            return None
        try:
            return money.from_processor(value)
        except money.AmountError:
            raise self._fail(key, "is not an amount") from None

    def amount(self, key: str) -> Decimal:
        value = self.opt_amount(key)
        if value is None:
            raise self._fail(key, "is missing")
        return value

    def tag(self, key: str) -> str | None:
        try:
            return parse_tag(self.obj.get(key))
        except BadResponse:
            raise self._fail(key, "is not a tag") from None

    def nested(self, key: str) -> _Fields:
        return _Fields(self.obj.get(key), f"{self.where}.{key}")


def _currency(obj: Any) -> Currency:
    f = _Fields(obj, "currencies/list")
    return Currency(
        id=f.integer("id"), type=f.text("type"), currency=f.text("currency"),
        minimum_amount=f.amount("minimum_amount"),
        deposit_fee_percent=f.amount("deposit_fee_percent"),
        withdrawal_fee_percent=f.amount("withdrawal_fee_percent"),
        precision=f.integer("precision"),
    )


def _pair(obj: Any) -> Pair:
    f = _Fields(obj, "currency pair")
    side_from, side_to = f.nested("currency_from"), f.nested("currency_to")
    return Pair(
        currency_from=side_from.text("currency"), type_from=side_from.text("type"),
        currency_to=side_to.text("currency"), type_to=side_to.text("type"),
        rate_from=f.amount("rate_from"), rate_to=f.amount("rate_to"),
        min_amount=side_from.opt_amount("min_amount"),
        min_amount_deposit_with_exchange=side_from.opt_amount(
            "min_amount_deposit_with_exchange"),
    )


def _balance(obj: Any) -> Balance:
    f = _Fields(obj, "accounts/list")
    return Balance(currency=f.text("currency"), type=f.text("type"), balance=f.amount("balance"))


# What we store and show of an address (the columns of `DepositAddress`); a longer value is
# no address a payer could use, and would only fail later, in the database.
ADDRESS_MAX, TAG_MAX = 255, 64


def _address(obj: Any) -> Address:
    f = _Fields(obj, "addresses/take")
    address, tag = f.text("address"), f.tag("tag")
    if not address.strip() or len(address) > ADDRESS_MAX:
        raise f._fail("address", f"is empty or longer than {ADDRESS_MAX} characters")
    if tag is not None and (not tag.strip() or len(tag) > TAG_MAX):
        raise f._fail("tag", f"is empty or longer than {TAG_MAX} characters")
    return Address(
        id=f.integer("id"), currency=f.text("currency"), convert_to=f.opt_text("convert_to"),
        address=address, tag=tag, foreign_id=f.text("foreign_id"),
        end_user_reference=f.opt_text("end_user_reference"),
    )


def _withdrawal(obj: Any) -> Withdrawal:
    f = _Fields(obj, "withdrawal/crypto")
    return Withdrawal(
        id=f.integer("id"), foreign_id=f.text("foreign_id"), type=f.text("type"),
        status=f.text("status"), amount=f.amount("amount"),
        sender_amount=f.amount("sender_amount"), sender_currency=f.text("sender_currency"),
        receiver_amount=f.amount("receiver_amount"),
        receiver_currency=f.text("receiver_currency"),
    )


WITHDRAWAL_TYPES = frozenset({"withdrawal", "withdrawal_exchange"})


def parse_withdrawal(obj: Any, where: str = "withdrawal") -> WithdrawalInfo:
    """Read a withdrawal callback body or a transactions/info answer (parsed with
    `money.loads`); BadResponse when it is no withdrawal of the documented shape."""
    f = _Fields(obj, where)
    kind = f.text("type")
    if kind not in WITHDRAWAL_TYPES:
        raise f._fail("type", "is not a withdrawal")
    leg = _chain_leg(f)
    sent, received = _optional_side(f, "currency_sent"), _optional_side(f, "currency_received")
    return WithdrawalInfo(
        id=f.integer("id"), foreign_id=f.text("foreign_id"), type=kind,
        status=f.text("status"), error=f.opt_text("error") or None,
        address=leg.opt_text("address"), tag=leg.tag("tag"),
        currency=leg.text("currency"), amount=leg.amount("amount"),
        txid=leg.opt_text("txid") or None, confirmations=_leg_confirmations(leg),
        currency_sent=sent.text("currency") if sent else None,
        amount_sent=sent.amount("amount") if sent else None,
        currency_received=received.text("currency") if received else None,
        amount_received=received.amount("amount") if received else None,
    )


def _chain_leg(f: _Fields) -> _Fields:
    """The withdrawal's own leg (a conversion has an exchange leg before it)."""
    legs = f.obj.get("transactions")
    chain = [leg for leg in legs if isinstance(leg, dict) and leg.get("type") == "withdrawal"
             ] if isinstance(legs, list) else []
    if len(chain) != 1:
        raise BadResponse(f"{f.where}: expected one withdrawal leg in transactions")
    return _Fields(chain[0], f"{f.where}.transactions")


def _optional_side(f: _Fields, key: str) -> _Fields | None:
    # A cancelled withdrawal has neither side (coinspaid-api.md §3).
    return f.nested(key) if f.obj.get(key) is not None else None


def _leg_confirmations(leg: _Fields) -> int:
    try:
        return parse_confirmations(leg.obj.get("confirmations", 0))
    except BadResponse:
        raise leg._fail("confirmations", "is not a whole number") from None


def _quote(obj: Any) -> Quote:
    f = _Fields(obj, "exchange/calculate")
    return Quote(
        sender_amount=f.amount("sender_amount"), sender_currency=f.text("sender_currency"),
        receiver_amount=f.amount("receiver_amount"),
        receiver_currency=f.text("receiver_currency"),
        fee_amount=f.amount("fee_amount"), fee_currency=f.text("fee_currency"),
        price=f.amount("price"), ts_fixed=f.integer("ts_fixed"),
        ts_release=f.integer("ts_release"), fix_period=f.integer("fix_period"),
    )


def _exchange(obj: Any) -> ExchangeResult:
    f = _Fields(obj, "exchange")
    return ExchangeResult(
        id=f.integer("id"), foreign_id=f.opt_text("foreign_id"), type=f.text("type"),
        sender_amount=f.amount("sender_amount"), sender_currency=f.text("sender_currency"),
        receiver_amount=f.amount("receiver_amount"),
        receiver_currency=f.text("receiver_currency"),
        fee_amount=f.opt_amount("fee_amount"), fee_currency=f.opt_text("fee_currency"),
        price=f.opt_amount("price"), status=f.text("status"),
    )


def _invoice(obj: Any) -> Invoice:
    f = _Fields(obj, "invoices/create")
    return Invoice(
        id=f.integer("id"), url=f.text("url"), foreign_id=f.text("foreign_id"),
        # 2020-era responses called the title `name`.
        title=f.opt_text("title") if "title" in f.obj else f.opt_text("name"),
        status=f.text("status"), currency=f.text("currency"), amount=f.amount("amount"),
        sender_currency=f.opt_text("sender_currency"),
        sender_amount=f.opt_amount("sender_amount"), address=f.opt_text("address"),
        fixed_at=f.opt_integer("fixed_at"), release_at=f.opt_integer("release_at"),
        seconds_left=f.opt_integer("seconds_left"),
        end_user_reference=f.opt_text("end_user_reference"), tag=f.tag("tag"),
    )


def _list_of(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise BadResponse(f"{where}: expected a list, got {type(data).__name__}")
    return data


# ---------------------------------------------------------------- error responses


def _join_messages(value: Any) -> str:
    # Laravel-style lists of messages per field are joined; anything else is shown as text.
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def _error_from(status: int, raw: bytes, maybe_created: bool,
                retry_after: float | None) -> ProcessorError:
    """Turn a non-2xx response into a typed error that keeps the processor's words."""
    if status == 429:
        return RateLimited("rate limited by the processor", retry_after=retry_after)
    if status >= 500:
        return Unavailable(f"processor answered HTTP {status}", status=status,
                           maybe_created=maybe_created)
    try:
        body = money.loads(raw)
    except ValueError:
        body = None
    if status in (401, 403):
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            code = body.get("code")
            return AuthenticationError(body["error"], status=status,
                                       code=code if isinstance(code, str) else None)
        return AuthenticationError(f"processor answered HTTP {status}", status=status)
    if isinstance(body, dict) and isinstance(body.get("errors"), dict):
        errors = {str(k): _join_messages(v) for k, v in body["errors"].items()}
        code = errors.pop("code", None)  # {"errors":{"error":"…","code":"invalid_…"}}
        message = "; ".join(f"{k}: {v}" for k, v in errors.items()) or f"HTTP {status}"
        return ValidationError(message, status=status, errors=errors, code=code)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = body.get("code")
        return ValidationError(body["error"], status=status,
                               code=code if isinstance(code, str) else None)
    return ProcessorError(f"processor answered HTTP {status}", status=status)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isascii() and value.isdigit() else None


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection failed before any byte of the request left."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", None)
        return isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return False


# ---------------------------------------------------------------- the client


def _require_amount(name: str, value: Decimal) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ValueError(f"{name} must be a positive, finite Decimal")
    return value


def _one_amount(first: tuple[str, Decimal | None],
                second: tuple[str, Decimal | None]) -> dict[str, Decimal]:
    given = {name: value for name, value in (first, second) if value is not None}
    if len(given) != 1:
        raise ValueError(f"give exactly one of {first[0]} and {second[0]}")
    return {name: _require_amount(name, value) for name, value in given.items()}


def _compact(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Optional fields are left out rather than sent as null."""
    return {k: v for k, v in payload.items() if v is not None}


def _with_extra(payload: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    # MiCA fields (sender_type, sender_data, ...) pass through; they never override ours.
    if extra:
        clash = set(extra) & set(payload)
        if clash:
            raise ValueError(f"extra fields repeat named arguments: {sorted(clash)}")
        payload = {**payload, **extra}
    return payload


class ProcessorClient:
    """One merchant's API key and secret against one processor base URL.

    `timeout` bounds connecting and each wait for bytes (requests' semantics), not the
    whole call. Reads are tried 1 + len(retry_delays) times; creates see the module doc.
    """

    def __init__(self, base_url: str, key: str, secret: str, timeout: float = 10.0,
                 session: requests.Session | None = None, *,
                 retry_delays: Sequence[float] = RETRY_DELAYS,
                 sleep: Callable[[float], None] = time.sleep,
                 headers: Mapping[str, str] | None = None) -> None:
        if not key or not secret:
            raise ValueError("processor key and secret must not be empty")
        if timeout <= 0:
            raise ValueError("processor timeout must be positive")
        self.base_url = base_url.rstrip("/")
        self._key = key
        self._secret = secret
        self.timeout = timeout
        self._session = session
        self._retry_delays = tuple(retry_delays)
        self._sleep = sleep
        # Sent with every call, unsigned, and never over the processor's own headers.
        self._extra_headers = dict(headers or {})

    def __repr__(self) -> str:  # never shows key or secret
        return f"<ProcessorClient {self.base_url}>"

    # -- transport

    def _headers(self, body: bytes) -> dict[str, str]:
        return {
            **self._extra_headers,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-Processing-Key": self._key,
            "X-Processing-Signature": signing.sign(body, self._secret),
        }

    def _send_once(self, method: str, path: str, body: bytes,
                   headers: dict[str, str]) -> requests.Response:
        url = f"{self.base_url}/{path}"
        if self._session is not None:
            return self._session.request(method, url, data=body, headers=headers,
                                         timeout=self.timeout, allow_redirects=False)
        # A session per call: nothing kept per process, no socket left to leak.
        with requests.Session() as session:
            return session.request(method, url, data=body, headers=headers,
                                   timeout=self.timeout, allow_redirects=False)

    def _call(self, method: str, path: str, payload: Any, *, create: bool) -> requests.Response:
        """Send signed bytes; retry reads on Unavailable, creates only if never sent."""
        body = money.dumps(payload).encode("utf-8")
        headers = self._headers(body)  # signed once: a resend is byte-for-byte the same
        delays = iter(self._retry_delays)
        while True:
            try:
                return self._attempt(method, path, body, headers, create=create)
            except Unavailable as exc:
                delay = None if exc.maybe_created else next(delays, None)
                if delay is None:
                    raise
                log.info("processor %s %s retried after %.1fs", method, path, delay)
                self._sleep(delay)

    def _attempt(self, method: str, path: str, body: bytes, headers: dict[str, str], *,
                 create: bool) -> requests.Response:
        started = time.monotonic()
        try:
            response = self._send_once(method, path, body, headers)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as exc:
            raise ProcessorError(f"bad processor URL {self.base_url!r}") from exc
        except requests.RequestException as exc:
            sent = not _never_sent(exc)
            what = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
            log.warning("processor %s %s %s after %.0f ms", method, path, what,
                        (time.monotonic() - started) * 1000)
            raise Unavailable(f"processor {what} ({type(exc).__name__})",
                              maybe_created=create and sent) from None
        log.info("processor %s %s -> %s in %.0f ms", method, path, response.status_code,
                 (time.monotonic() - started) * 1000)
        if not 200 <= response.status_code < 300:
            raise _error_from(response.status_code, response.content, create,
                              _retry_after(response))
        return response

    def _data(self, method: str, path: str, payload: Any, *, create: bool = False) -> Any:
        """Call and unwrap the documented `{"data": ...}` success envelope."""
        response = self._call(method, path, payload, create=create)
        body = _parse(response, path)
        if not isinstance(body, dict) or "data" not in body:
            raise BadResponse(f"{path}: success body has no data")
        return body["data"]

    # -- endpoints: reads

    def ping(self) -> None:
        """GET /ping; returns when the processor answers OK, raises otherwise."""
        response = self._call("GET", "ping", {}, create=False)
        if response.content.strip() not in (b"OK", b'"OK"'):
            raise BadResponse("ping: processor did not answer OK")

    def currencies_list(self, visible: bool | None = None, *,
                        skip_unreadable: bool = False) -> list[Currency]:
        """With `skip_unreadable`, an entry we cannot read is logged and left out instead of
        failing the whole list: one odd currency must not hide every other one's limits."""
        data = self._data("POST", "currencies/list", _compact({"visible": visible}))
        listed: list[Currency] = []
        skipped: list[str] = []
        for item in _list_of(data, "currencies/list"):
            try:
                listed.append(_currency(item))
            except BadResponse as exc:
                if not skip_unreadable:
                    raise
                skipped.append(str(exc)[:200])
        if skipped:  # one line, however many: a hostile list must not flood the log
            log.warning("currencies/list: %d entries skipped, first: %s", len(skipped),
                        skipped[0])
        return listed

    def currencies_pairs(self, currency_from: str | None = None,
                         currency_to: str | None = None) -> list[Pair]:
        payload = _compact({"currency_from": currency_from, "currency_to": currency_to})
        data = self._data("POST", "currencies/pairs", payload)
        return [_pair(item) for item in _list_of(data, "currencies/pairs")]

    def currencies_rates(self, currency_from: str, currency_to: str) -> Rate:
        """The rate of one pair (the processor answers with a list; we pick that pair)."""
        payload = {"currency_from": currency_from, "currency_to": currency_to}
        data = self._data("POST", "currencies/rates", payload)
        rates = [_pair(item) for item in _list_of(data, "currencies/rates")]
        for rate in rates:
            if (rate.currency_from.upper(), rate.currency_to.upper()) == (
                    currency_from.upper(), currency_to.upper()):
                return rate
        raise BadResponse(f"currencies/rates: no {currency_from}/{currency_to} rate in answer")

    def accounts_list(self) -> list[Balance]:
        data = self._data("POST", "accounts/list", {})
        return [_balance(item) for item in _list_of(data, "accounts/list")]

    def exchange_calculate(self, sender_currency: str, receiver_currency: str, *,
                           sender_amount: Decimal | None = None,
                           receiver_amount: Decimal | None = None,
                           price_precision: int | None = None) -> Quote:
        """A price quote (30 calls a minute per IP: `RateLimited` beyond)."""
        payload = {"sender_currency": sender_currency, "receiver_currency": receiver_currency,
                   **_one_amount(("sender_amount", sender_amount),
                                 ("receiver_amount", receiver_amount))}
        payload = _compact({**payload, "price_precision": price_precision})
        return _quote(self._data("POST", "exchange/calculate", payload))

    def transactions_info(self, *, id: int | None = None, foreign_id: str | None = None,
                          txid: str | None = None) -> dict[str, Any]:
        """The callback-shaped transaction (amounts as Decimal); give exactly one key."""
        given = _compact({"id": id, "foreign_id": foreign_id, "txid": txid})
        if len(given) != 1:
            raise ValueError("give exactly one of id, foreign_id and txid")
        response = self._call("GET", "transactions/info", given, create=False)
        body = _parse(response, "transactions/info")
        # Documented without the data wrapper; a wrapped answer is accepted too.
        if isinstance(body, dict) and set(body) == {"data"} and isinstance(body["data"], dict):
            body = body["data"]
        if not isinstance(body, dict):
            raise BadResponse("transactions/info: expected an object")
        return body

    def withdrawal_info(self, foreign_id: str) -> WithdrawalInfo | None:
        """Our withdrawal `foreign_id` as the processor has it now, or None when it has none
        (the call never reached it: sending it again, same foreign_id, is safe, since a
        second one is refused as taken)."""
        if not foreign_id:
            raise ValueError("foreign_id must not be empty")
        try:
            found = self.transactions_info(foreign_id=foreign_id)
        except ValidationError as exc:
            # Not found: {"errors":{"foreign_id":"The selected foreign id is invalid."}}.
            if exc.status in (400, 404) and "foreign_id" in exc.errors:
                return None
            raise
        return parse_withdrawal(found, "transactions/info")

    # -- endpoints: creates (never retried under a new foreign_id)

    def addresses_take(self, currency: str, foreign_id: str, *, convert_to: str | None = None,
                       end_user_reference: str | None = None,
                       extra: Mapping[str, Any] | None = None) -> Address:
        payload = _compact({"currency": currency, "foreign_id": foreign_id,
                            "convert_to": convert_to, "end_user_reference": end_user_reference})
        data = self._data("POST", "addresses/take", _with_extra(payload, extra), create=True)
        return _address(data)

    def withdrawal_crypto(self, *, foreign_id: str, currency: str, address: str,
                          amount: Decimal | None = None, amount_to: Decimal | None = None,
                          convert_to: str | None = None, tag: str | None = None,
                          end_user_reference: str | None = None,
                          extra: Mapping[str, Any] | None = None) -> Withdrawal:
        """Send `amount` of `currency`, or `amount_to` of `convert_to` (exactly one).

        The answer's status is `processing` (a withdrawal the processor's limits hold is then
        told `pending` by callback). A refusal raises ValidationError with the field messages
        (`errors`); `is_foreign_id_taken(exc)` says the foreign_id was used before."""
        if amount_to is not None and convert_to is None:
            raise ValueError("amount_to needs convert_to")
        payload = _compact({"foreign_id": foreign_id, "currency": currency,
                            "convert_to": convert_to, "address": address,
                            # Only a coin that needs one gets a tag; an empty one is none.
                            "tag": tag or None,
                            **_one_amount(("amount", amount), ("amount_to", amount_to)),
                            "end_user_reference": end_user_reference})
        data = self._data("POST", "withdrawal/crypto", _with_extra(payload, extra), create=True)
        return _withdrawal(data)

    def exchange_fixed(self, *, foreign_id: str, sender_currency: str, receiver_currency: str,
                       price: Decimal, sender_amount: Decimal | None = None,
                       receiver_amount: Decimal | None = None) -> ExchangeResult:
        """Exchange at the `price` of an exchange/calculate quote (same amount as quoted)."""
        payload = {"sender_currency": sender_currency, "receiver_currency": receiver_currency,
                   **_one_amount(("sender_amount", sender_amount),
                                 ("receiver_amount", receiver_amount)),
                   "foreign_id": foreign_id, "price": _require_amount("price", price)}
        return _exchange(self._data("POST", "exchange/fixed", payload, create=True))

    def exchange_now(self, *, foreign_id: str, sender_currency: str, receiver_currency: str,
                     sender_amount: Decimal | None = None,
                     receiver_amount: Decimal | None = None) -> ExchangeResult:
        payload = {"sender_currency": sender_currency, "receiver_currency": receiver_currency,
                   **_one_amount(("sender_amount", sender_amount),
                                 ("receiver_amount", receiver_amount)),
                   "foreign_id": foreign_id}
        return _exchange(self._data("POST", "exchange/now", payload, create=True))

    def invoices_create(self, *, foreign_id: str, title: str, currency: str, amount: Decimal,
                        url_success: str, url_failed: str, timer: bool = False,
                        email_user: str | None = None, description: str | None = None,
                        sender_currency: str | None = None, type: str | None = None,
                        end_user_reference: str | None = None,
                        extra: Mapping[str, Any] | None = None) -> Invoice:
        payload = _compact({
            "timer": timer, "title": title, "description": description, "currency": currency,
            "amount": _require_amount("amount", amount), "foreign_id": foreign_id,
            "url_success": url_success, "url_failed": url_failed, "email_user": email_user,
            "sender_currency": sender_currency, "type": type,
            "end_user_reference": end_user_reference,
        })
        data = self._data("POST", "invoices/create", _with_extra(payload, extra), create=True)
        return _invoice(data)

    def invoices_cancel(self, foreign_id: str) -> None:
        """Cancel an invoice still created, pending or processing."""
        if not foreign_id:
            raise ValueError("foreign_id must not be empty")
        path = f"invoices/{_path_segment(foreign_id)}/cancel/"
        response = self._call("POST", path, {}, create=True)
        # The documented success body is `[]`; an empty or wrapped body is accepted too.
        if response.content.strip():
            _parse(response, "invoices/cancel")


def _path_segment(text: str) -> str:
    """`text` as one URL path segment; "." and ".." are spelt %2E, or the URL would lose them
    to dot-segment removal and name another resource."""
    segment = quote(text, safe="")
    return segment.replace(".", "%2E") if set(segment) == {"."} else segment


def _parse(response: requests.Response, where: str) -> Any:
    try:
        return money.loads(response.content)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadResponse(f"{where}: success body is not JSON",
                          status=response.status_code) from None


def client_for(merchant: Merchant, *, retry_delays: Sequence[float] = RETRY_DELAYS,
               max_timeout: float | None = None) -> ProcessorClient:
    """The client for a `checkout.models.Merchant`, inside an app context.

    `PROCESSOR_URL` when configured, else the embedded sandbox over real HTTP, on the
    loopback port this process serves it on (`checkout.sandbox.loopback`), not at the
    site's public address: a call there would wait for one of the site's own workers. A
    customer-facing request may pass `retry_delays=()` and a `max_timeout` to fail fast
    rather than keep a customer waiting through retries and the usual timeout.
    """
    from flask import current_app

    from .urls import public_base

    base: str | None = current_app.config.get("PROCESSOR_URL")
    headers: dict[str, str] = {}
    if not base:
        sandbox: Callable[[str], tuple[str, dict[str, str]]] | None = (
            current_app.extensions.get("sandbox.endpoint"))
        if sandbox is None:  # no processor configured and none mounted: calls will fail
            base = public_base() + SANDBOX_PATH
        else:
            base, headers = sandbox(public_base())
    timeout = float(current_app.config.get("PROCESSOR_TIMEOUT", 10.0))
    if max_timeout is not None:
        timeout = min(timeout, max_timeout)
    return ProcessorClient(base, merchant.api_key, merchant.api_secret, timeout=timeout,
                           retry_delays=retry_delays, headers=headers)
