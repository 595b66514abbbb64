"""How a page says things, whatever its kind: currencies and networks in the customer's words,
amounts as the page prints them, explorer links, wallet links and QR images, and the labels
that put the model's values into sentences (the server and checkout.js fill them alike).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import current_app
from flask_babel import gettext as _

from .. import currencies, i18n, money, qr, uris
from ..states import CANCELLED, CONFIRMED, SEEN

log = logging.getLogger(__name__)

# Transaction refusals, as a transaction line of the model says them.
REFUSED_BELOW_MINIMUM = "below_minimum"  # Deposit.refusal, read from the callback's `error`
EARLIER = "earlier_address"  # a payment to an address of the order that a fresh quote replaced


@dataclass(frozen=True)
class Asset:
    """What the page says about a currency: its wallet name, network, tag name and places."""

    code: str
    network: str
    tag_label: str | None
    decimals: int
    # What the payer's wallet calls it: USDTT and USDTE are both "USDT", told apart by network.
    ticker: str
    # Whether the QR carries the amount; else the page says to type it in the wallet.
    qr_has_amount: bool = False
    # The one app that opens the payment link, when only one does (its button is named so).
    wallet_app: str | None = None


def asset_of(code: str, *, translate: bool = True) -> Asset:
    """Network and tag names (translated for a page, the English msgids for the stored
    model, which serves every language); a currency dropped after the page opened still
    shows."""
    info = currencies.get(code)
    if info is None:
        return Asset(code, code, None, 8, code)
    say = _ if translate else str
    label = say(info.tag_label) if info.tag_label else None
    return Asset(code, say(info.network), label, info.decimals, info.ticker,
                 info.qr_has_amount, info.wallet_app)


def coin_name(asset: Asset, code: str) -> str:
    """The coin as the heading names it: "USDT on TRON (TRC-20)" where the wallet's name alone
    (USDT) would fit another network too."""
    if currencies.shares_ticker(code):
        return _("%(ticker)s on %(network)s", ticker=asset.ticker, network=asset.network)
    return asset.ticker


def deposit_places(code: str) -> int | None:
    """Decimal places of a currency customers can deposit; None when not supported."""
    info = currencies.get(code)
    return None if info is None else info.decimals


def is_conversion_currency(code: str) -> bool:
    return currencies.is_fiat(code) or currencies.is_supported(code)


def fiat_for(convert_to: str | None) -> str:
    """The fiat the approximate value is shown in: the conversion's, else the site's default."""
    if convert_to and currencies.is_fiat(convert_to):
        return convert_to
    return str(current_app.config.get("FIAT_CURRENCY", "EUR"))


def fiat_places(code: str) -> int:
    return currencies.fiat_places(code) if currencies.is_fiat(code) else 2


def testnet() -> bool:
    """Whether the page's money is test money (the embedded sandbox): explorer links and
    wallet URIs then name the test network."""
    return bool(current_app.config.get("SANDBOX"))


def short(amount: Decimal | None, places: int) -> str | None:
    """Shortest exact text, rounded up to the chain's places: 0.012, not 0.012000000000000000."""
    return None if amount is None else money.plain(money.ceil(amount, places))


def transaction_line(currency: str, txid: str | None, amount: str, status: str,
                     refusal: str | None, confirmations: object, testnet: bool
                     ) -> dict[str, Any]:
    """One payment as the page lists it, with its link to the chain's explorer."""
    return {
        "txid": txid,
        "amount": amount,
        "status": status,
        "refusal": refusal,
        "confirmations": confirmations,
        "explorer_url": currencies.explorer_url(currency, txid, testnet=testnet),
    }


def payment_uri(currency: str, address: str, tag: str | None, amount: Decimal | None, *,
                testnet: bool = False) -> str:
    """The wallet URI; parts a wallet URI cannot carry leave the plain address instead."""
    try:
        return uris.payment_uri(currency, address, amount, tag=tag, testnet=testnet)
    except uris.UriError:
        log.warning("no payment URI for a %s page; the QR holds the address", currency)
        return address


# Schemes of the URIs `uris.payment_uri` builds; cash addresses name their own network.
WALLET_SCHEMES = frozenset(
    {c.uri_scheme for c in currencies.CURRENCIES.values() if c.uri_scheme}
    | {"bchtest", "bchreg"})


def wallet_link(uri: str) -> str | None:
    """The URI as a link target, or None when it is a bare address (TRON, BNB memo, ...).

    A bare address in an href is a relative URL: "Open in your wallet" would open a 404 page
    of this site. Only a scheme a wallet registers for ever reaches an href.
    """
    scheme, colon, rest = uri.partition(":")
    if not colon or not rest or scheme.lower() not in WALLET_SCHEMES:
        return None
    if scheme.lower() in ("http", "https") and not rest.startswith("//"):
        return None
    return uri


def qr_text_for(model: Mapping[str, Any]) -> str:
    """What the page's QR holds: the model's link with the amount due now, or the bare
    address where wallets read no better form (uris.qr_content)."""
    return uris.qr_content(str(model.get("currency") or ""), str(model.get("address") or ""),
                           str(model.get("payment_uri") or ""))


def qr_image(text: str, fmt: str) -> tuple[bytes, str]:
    if fmt == "svg":
        return qr.svg(text, _("QR code with the payment address")), "image/svg+xml"
    return qr.png(text), "image/png"


# ---------------------------------------------------------------------------------------------
# Labels: what each state means to the customer (also handed to the script, so it speaks our
# language)


def fill(template: str, values: dict[str, str]) -> str:
    """Put the model's values into a label, as checkout.js does."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def label_key(model: Mapping[str, Any]) -> str:
    """Which label says the model's phase (checkout.js picks alike): for late money on an
    invoice, the phase's and the merchant's decision's; an overpaid page that settles the
    difference on the page itself says so instead of sending the customer to the shop."""
    phase = str(model["phase"])
    late = model.get("late") or {}
    decision = late.get("decision") if isinstance(late, Mapping) else None
    if decision:
        return f"{phase}:{decision}"
    part = model.get("refund")
    if phase != "overpaid" or not part:
        return phase
    owed = part.get("owed")
    if owed and not owed.get("too_small"):
        return "overpaid:refund"
    return "overpaid:refund-asked" if part.get("refunds") else phase


def label_values(model: Mapping[str, Any], ticker: str, shop: str) -> dict[str, str]:
    """Amounts in the page language's marks, every digit kept (checkout.js does the same)."""
    minimum = model.get("minimum")
    fiat = model.get("fiat") or {}
    late = model.get("late") or {}
    email = (model.get("invoice") or {}).get("refund_email")
    return {"paid": i18n.number(model["amount_paid"]),
            "amount": i18n.number(model.get("amount") or ""),
            # Money after an invoice closed: its own amount, not what arrived in time.
            "late": i18n.number(late.get("amount") or model["amount_paid"]),
            # Isolated (FSI…PDI): an address reads left to right inside any sentence.
            "email": isolate(email) if email else "?",
            "due": i18n.number(model.get("amount_due") or ""),
            "over": i18n.number(model.get("amount_over") or ""), "ticker": ticker, "shop": shop,
            "minimum": i18n.number(minimum) if minimum else "?",
            "rest": i18n.number(model.get("rest_below_minimum") or ""),
            "extra": i18n.number(model.get("minimum_extra") or ""),
            "extra_fiat": i18n.number(fiat.get("extra") or ""),
            "shortfall": i18n.number(model.get("shortfall") or ""),
            "fiat": str(fiat.get("currency") or "")}


def isolate(text: str) -> str:
    """Text of its own direction inside a sentence (an email in Arabic), as checkout.js."""
    return f"\u2068{text}\u2069"


def minimum_note(labels: dict[str, str], model: Mapping[str, Any], ticker: str,
                 shop: str) -> str:
    """Why more than the rest is asked: with the fiat worth of the difference when known."""
    fiat = model.get("fiat") or {}
    key = "note:minimum-fiat" if fiat.get("extra") else "note:minimum"
    return fill(labels[key], label_values(model, ticker, shop))


def short_note(labels: dict[str, str], model: Mapping[str, Any], ticker: str,
               shop: str) -> str:
    """What a page paid within the shop's tolerance lacked, and that the shop accepted it."""
    return fill(labels["note:short_accepted"], label_values(model, ticker, shop))


@i18n.per_language
def transaction_labels() -> dict[str, str]:
    return {
        SEEN: _("seen, waiting for confirmation"),
        CONFIRMED: _("confirmed"),
        CANCELLED: _("cancelled"),
        f"{CANCELLED}:{REFUSED_BELOW_MINIMUM}": _("refused: below the minimum"),
        # An invoice's earlier quote (its address was replaced by a fresh quote's).
        f"{SEEN}:{EARLIER}": _("on its way to an earlier address of this order"),
        f"{CONFIRMED}:{EARLIER}": _("arrived at an earlier address of this "
                                    "order: not counted for it"),
    }


# ---------------------------------------------------------------------------------------------
# "For support": a final page's facts as plain text to copy into a message to the shop


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC to the second, as the receipt says times: 2026-03-01T12:00:00Z."""
    return None if moment is None else moment.replace(microsecond=0).isoformat() + "Z"


def support_lines(*, final: bool, page_id: str, reference: str, currency: str,
                  asked: str | None, paid: str,
                  address: str | None, tag: str | None, transactions: list[dict[str, Any]],
                  opened_at: datetime, paid_at: str | None,
                  price: tuple[str, str] | None = None) -> list[list[str]] | None:
    """The model's `support`: [key, value] lines of a final page (None before), values only
    and never translated (codes, plain decimals, ISO times): the page and its script write
    "Label: value" lines with the translated label of each key (`support_labels`), so one
    model serves every language and a shop reads the values whatever language it gets."""
    if not final:
        return None
    # No status line: its value would be a code that reads as an untranslated English word
    # ("confirmed") in every language; the amounts asked and paid say how it ended, and the
    # page id finds the rest in the back office.
    lines = [["page", page_id], ["reference", reference]]
    if price is not None:
        lines.append(["price", f"{price[0]} {price[1]}"])
    if asked is not None:
        lines.append(["asked", f"{asked} {currency}"])
    lines.append(["paid", f"{paid} {currency}"])
    if address:
        lines.append(["address", address])
    if tag:
        lines.append(["tag", tag])
    lines += [["txid", str(t["txid"])] for t in transactions if t.get("txid")]
    lines.append(["opened", str(iso_utc(opened_at))])
    if paid_at:
        lines.append(["paid_at", paid_at])
    return lines


@i18n.per_language
def support_labels() -> dict[str, str]:
    """The label of each key of `support`, translated (the page and checkout.js alike)."""
    return {
        "page": _("Payment page"),
        "reference": _("Order reference"),
        "price": _("Order amount"),
        "asked": _("Amount asked"),
        "paid": _("Amount paid"),
        "address": _("Address"),
        "tag": _("Destination tag or memo"),
        "txid": _("Transaction ID"),
        "opened": _("Opened at"),
        "paid_at": _("Paid at"),
    }

