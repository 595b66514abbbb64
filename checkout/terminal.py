"""Payment Terminal links: `?data=<base64 JSON>&signature=<hex HMAC-SHA512 of the JSON>`.

Links built for CoinsPaid's former terminal must keep working once the host is ours, so
decoding is liberal where their builders differed (base64 alphabet and padding, ids as
numbers or strings, `is_iframe` as a string) and strict everywhere else.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from flask_babel import gettext as _

from . import money, returns
from .models import Merchant
from .text import NotText
from .wire.signing import sign, verify

log = logging.getLogger(__name__)

MAX_DATA = 8192
_CODE = re.compile(r"\A[A-Z0-9][A-Z0-9_-]{0,15}\Z")
_BASE64 = re.compile(r"\A[A-Za-z0-9+/_-]+={0,2}\Z")
_TRUE_TEXT = frozenset({"1", "true", "yes", "on"})
_FALSE_TEXT = frozenset({"0", "false", "no", "off", ""})


def encode_link(payload: dict[str, Any], secret: str) -> dict[str, str]:
    """The query of a terminal link, as CoinsPaid documented it (standard base64, padded)."""
    text = json.dumps(payload, separators=(",", ":"))
    return {
        "data": base64.b64encode(text.encode()).decode("ascii"),
        "signature": sign(text.encode(), secret),
    }


class Fault(enum.Enum):
    """What is wrong with a link (the customer route chooses its HTTP status from it)."""

    MALFORMED = "malformed"  # not a link as builders make them: damaged, incomplete
    UNKNOWN_SHOP = "unknown_shop"  # no shop we serve has this client id
    UNSIGNED = "unsigned"  # the signature does not hold with the shop's secret
    UNSERVABLE = "unservable"  # readable, but asks for a currency or conversion we lack


class LinkError(ValueError):
    """A terminal link that cannot be honoured, and why (`fault`)."""

    def __init__(self, fault: Fault, message: str) -> None:
        super().__init__(message)
        self.fault = fault
        self.message = message
        # Origins that may frame the error page: only a link the shop signed, asking for an
        # iframe, gets its error shown inside the shop's frame instead of a refused frame.
        self.frame_origins: list[str] = []
        # Whether the signature held: then the link is the shop's, whatever is wrong in it.
        self.signed = False
        # The shop, and its way back, once the signature held: the error page names them.
        self.shop: str | None = None
        self.back_url: str | None = None


@dataclass(frozen=True)
class TerminalLink:
    """A verified link: who asks for what. `digest` names the link (same link, same page)."""

    merchant: Merchant
    currency: str
    foreign_id: str
    amount: Decimal | None
    convert_to: str | None
    is_iframe: bool
    url_back: str | None
    digest: str


MerchantLookup = Callable[[int], Merchant | None]
CurrencyPlaces = Callable[[str], int | None]
CurrencyCheck = Callable[[str], bool]


@dataclass(frozen=True)
class ReadLink:
    """A link's data, decoded but not yet verified: only `client_id` (to find the secret)
    and `digest` (to find its page) may be used before the signature holds."""

    text: bytes
    payload: dict[str, Any]
    client_id: int

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text).hexdigest()


def read_link(data: str | None, signature: str | None) -> ReadLink:
    """Decode a link's data, or raise LinkError; nothing is verified yet."""
    if not data or not signature:
        raise LinkError(Fault.MALFORMED, _("This payment link is incomplete."))
    text = decode_data(data)
    payload = parse_payload(text)
    return ReadLink(text, payload, parse_client_id(payload.get("client_id")))


def decode_link(data: str | None, signature: str | None, *, find_merchant: MerchantLookup,
                currency_places: CurrencyPlaces,
                convert_supported: CurrencyCheck) -> TerminalLink:
    """Decode and verify a link, or raise LinkError (nothing is looked up at the processor).

    The signature is checked before any field is trusted beyond `client_id`, which is
    needed to find the secret.
    """
    read = read_link(data, signature)
    return verify_link(read, str(signature), find_merchant(read.client_id),
                       currency_places=currency_places, convert_supported=convert_supported)


def verify_link(read: ReadLink, signature: str, merchant: Merchant | None, *,
                currency_places: CurrencyPlaces,
                convert_supported: CurrencyCheck) -> TerminalLink:
    """`decode_link` once the link is read and its client id's merchant looked up."""
    if merchant is None:
        raise LinkError(Fault.UNKNOWN_SHOP, _("This payment link belongs to no shop we serve."))
    if not verify(read.text, merchant.api_secret, signature):
        raise LinkError(Fault.UNSIGNED, _("This payment link is not signed by the shop."))
    payload = read.payload
    try:
        return verified_link(payload, read.text, merchant, currency_places=currency_places,
                             convert_supported=convert_supported)
    except LinkError as exc:
        exc.signed = True
        if wants_frame(payload.get("is_iframe")):
            exc.frame_origins = merchant.frame_origins
        exc.shop = merchant.shown_name
        exc.back_url = safe_url_back(payload.get("url_back"), merchant.return_hosts)
        raise


def safe_url_back(value: Any, allowed_hosts: list[str]) -> str | None:
    """The link's way back when it is one of the shop's own; None otherwise, never an error."""
    try:
        return returns.check(value, allowed_hosts) if value else None
    except returns.ReturnUrlError:
        return None


def wants_frame(value: Any) -> bool:
    """Whether a signed link asked for an iframe; a malformed flag counts as no."""
    try:
        return parse_flag(value)
    except LinkError:
        return False


def verified_link(payload: dict[str, Any], text: bytes, merchant: Merchant, *,
                  currency_places: CurrencyPlaces,
                  convert_supported: CurrencyCheck) -> TerminalLink:
    """The fields of a link whose signature held."""
    currency = parse_code(payload.get("currency"), "currency")
    places = currency_places(currency)
    if places is None:
        raise LinkError(Fault.UNSERVABLE, _("This currency is not supported."))
    convert_to = payload.get("convert_to")
    if convert_to == "":  # PHP builders send "" for "none"
        convert_to = None
    if convert_to is not None:
        convert_to = parse_code(convert_to, "convert_to")
        if not convert_supported(convert_to):
            raise LinkError(Fault.UNSERVABLE,
                            _("This payment link asks for a conversion we do not support."))
    return TerminalLink(
        merchant=merchant,
        currency=currency,
        foreign_id=parse_foreign_id(payload.get("foreign_id")),
        amount=parse_link_amount(payload.get("amount"), places),
        convert_to=convert_to,
        is_iframe=parse_flag(payload.get("is_iframe")),
        url_back=parse_url_back(payload.get("url_back"), merchant),
        digest=hashlib.sha256(text).hexdigest(),
    )


def decode_data(data: str) -> bytes:
    """Standard or URL-safe base64, padded or not; `+` that arrived as a space is restored."""
    cleaned = data.strip().replace(" ", "+")
    if len(cleaned) > MAX_DATA or not _BASE64.match(cleaned):
        raise LinkError(Fault.MALFORMED, _("This payment link is damaged."))
    body = cleaned.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LinkError(Fault.MALFORMED, _("This payment link is damaged.")) from exc


def parse_payload(text: bytes) -> dict[str, Any]:
    try:
        payload = money.loads(text.decode("utf-8"), unique_keys=True)
    except NotText as exc:
        raise LinkError(Fault.MALFORMED, _("This payment link has an invalid %(field)s.",
                               field=exc.field)) from exc
    except (UnicodeDecodeError, ValueError) as exc:  # deep nesting too: read before the
        # signature can be checked, so money.loads refuses it as a ValueError
        raise LinkError(Fault.MALFORMED, _("This payment link is damaged.")) from exc
    if not isinstance(payload, dict):
        raise LinkError(Fault.MALFORMED, _("This payment link is damaged."))
    return payload


def parse_client_id(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        number = int(value)
    else:
        raise LinkError(Fault.MALFORMED, _("This payment link names no shop."))
    if not 0 < number < 2**31:
        raise LinkError(Fault.UNKNOWN_SHOP, _("This payment link belongs to no shop we serve."))
    return number


def parse_code(value: Any, field: str) -> str:
    """A currency code as signed: white space around it is no part of any code, and a link
    that carries some was not built the way the processor reads it."""
    if not isinstance(value, str) or not _CODE.fullmatch(value.upper()):
        raise LinkError(Fault.UNSERVABLE,
                        _("This payment link has an invalid %(field)s.", field=field))
    return value.upper()


def parse_foreign_id(value: Any) -> str:
    """The shop's reference: a string or a whole number, printable, at most 255 characters."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # then the same bounds: the column and the processor hold 255
    if (isinstance(value, str) and 0 < len(value) <= 255 and value.isprintable()
            and value.strip() == value):
        return value
    raise LinkError(Fault.MALFORMED, _("This payment link has no valid order reference."))


def parse_link_amount(value: Any, places: int) -> Decimal | None:
    """Up to the currency's places: a wallet cannot send more, and we never round an amount."""
    if value is None or value == "":
        return None
    try:
        return money.parse_amount(value, places)
    except money.AmountError as exc:
        raise LinkError(Fault.MALFORMED, _("This payment link has an invalid amount.")) from exc


def parse_flag(value: Any) -> bool:
    """`is_iframe`: a JSON boolean, 0/1, or the same as text (PHP builders sent "true", "1")."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE_TEXT:
        return True
    if isinstance(value, str) and value.strip().lower() in _FALSE_TEXT:
        return False
    raise LinkError(Fault.MALFORMED, _("This payment link is damaged."))


def parse_url_back(value: Any, merchant: Merchant) -> str | None:
    if value is None or value == "":
        return None
    try:
        return returns.check(value, merchant.return_hosts)
    except returns.ReturnUrlError as exc:
        host = _unregistered_host(value)
        if host is None:
            raise LinkError(Fault.MALFORMED, _(
                "This payment link returns to an address that is not the shop's.")) from exc
        # A well-formed address on a host nobody registered: most likely a merchant added
        # without --return-host. Still refused (no open redirect), but the operator is told
        # how to fix it and the customer why the link fails.
        log.warning("terminal link of merchant %s refused: url_back host %s is not a "
                    "registered return host; if it is the shop's, register it with "
                    "`flask --app checkout merchant edit --client-id %s --return-host %s`",
                    merchant.client_id, host, merchant.client_id, host)
        raise LinkError(Fault.MALFORMED, _(
            "The shop's return address is not registered with this checkout, so this payment "
            "link cannot be used. Please tell the shop.")) from exc


def _unregistered_host(value: Any) -> str | None:
    """The `host[:port]` of a return URL that only its host keeps out, else None."""
    try:
        host = urlsplit(value).netloc.lower()
        returns.check(value, [host])
    except (returns.ReturnUrlError, ValueError, TypeError, AttributeError):
        return None
    return host
