"""A demo shop (for `make run`): receives and lists callbacks, and sells through invoices.

Its page is where a newcomer finds the links to try again once `make run`'s own output has
scrolled away under the access log: fresh Payment Terminal links (a new customer on every
view, so each opens a payable page), the invoice button, and the command that pays a page.

The site forwards processor callbacks to the merchant's webhook with the merchant's key and
signature; the sandbox account has the same key and secret, so it can check them here. Its
"pay with crypto" button creates an invoice through the site's drop-in API over HTTP, signed
with the account's key and secret exactly as a shop's CoinsPaid client would.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Blueprint, Response, current_app, redirect, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import delete, select

from checkout.wire import signing

from . import accounts, clock, store

bp = Blueprint("sandbox_shop", __name__, url_prefix="/sandbox/shop",
               template_folder="templates")
KEEP = 100


@bp.post("/callback")
def receive() -> Response:
    raw = request.get_data()
    key = request.headers.get("X-Processing-Key", "")
    with store.transaction() as session:
        account = accounts.by_key(session, key) if key else None
        if account is None or not signing.verify(
                raw, account.api_secret, request.headers.get("X-Processing-Signature")):
            return Response('{"error":"Bad signature"}', status=403,
                            mimetype="application/json")
        session.add(store.ShopCallback(api_key=key, body=raw.decode("utf-8", "replace"),
                                       received_at=clock.now(session)))
        session.flush()
        newest = select(store.ShopCallback.id).order_by(store.ShopCallback.id.desc())
        keep = session.scalars(newest.limit(KEEP)).all()
        session.execute(delete(store.ShopCallback).where(store.ShopCallback.id.not_in(keep)))
    return Response("OK", mimetype="text/plain")


def _pretty(body: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {"text": body, "type": None, "status": None, "id": None}
    if not isinstance(parsed, dict):
        return {"text": body, "type": None, "status": None, "id": None}
    return {"text": json.dumps(parsed, indent=2, ensure_ascii=False),
            "type": parsed.get("type"), "status": parsed.get("status"), "id": parsed.get("id")}


@bp.get("")
def listing() -> str:
    with store.transaction() as session:
        rows = session.scalars(select(store.ShopCallback)
                               .order_by(store.ShopCallback.id.desc()).limit(50)).all()
        items = [dict(_pretty(r.body), received_at=datetime.fromtimestamp(r.received_at, UTC)
                      .strftime("%Y-%m-%d %H:%M:%S UTC")) for r in rows]
        found = session.scalars(select(store.Account).order_by(store.Account.client_id)).all()
        accounts_ = [a.client_id for a in found]
        base = _base()
        links = [(a.client_id, label, terminal_link(base, a.client_id, a.api_secret, fields))
                 for a in found for label, fields in TRY]
    return render_template("sandbox/shop.html", items=items, accounts=accounts_, links=links,
                           pay_command=PAY_COMMAND)


# Deposits to try, one per kind of QR: with the amount in it (BTC), the bare address with
# the tag typed beside it (XRP), a token's bare address (USDT ERC-20, USDT TRC-20).
TRY: tuple[tuple[str, dict[str, str]], ...] = (
    ("0.00123 BTC", {"currency": "BTC", "amount": "0.00123"}),
    ("25 XRP (with a destination tag)", {"currency": "XRP", "amount": "25"}),
    ("19.99 USDT on Ethereum (ERC-20)", {"currency": "USDTE", "amount": "19.99"}),
    ("19.99 USDT on TRON (TRC-20)", {"currency": "USDTT", "amount": "19.99"}),
)
PAY_COMMAND = "flask --app checkout sandbox pay"


def terminal_link(base: str, client_id: int, secret: str, fields: dict[str, str]) -> str:
    """A Payment Terminal link for a new customer, signed as the processor's format asks
    (base64 of the JSON, HMAC-SHA512 of that JSON with the account's secret)."""
    payload = {"client_id": client_id, **fields,
               "foreign_id": f"demo-customer-{secrets.token_hex(4)}", "convert_to": "EUR",
               "url_back": f"{base}/sandbox/shop"}
    text = json.dumps(payload, separators=(",", ":")).encode()
    query = urlencode({"data": base64.b64encode(text).decode("ascii"),
                       "signature": signing.sign(text, secret)})
    return f"{base}/?{query}"


# What the demo shop sells, and the choices its checkout button offers.
ORDER = {"title": "Demo order", "description": "Two books", "currency": "EUR", "amount": "35"}
CHOICES: dict[str, dict[str, Any]] = {"pick": {"timer": False}, "timer": {"timer": True},
           "btc": {"timer": True, "sender_currency": "BTC"}}
API_PATH = "/api/v2/invoices/create"


def _base() -> str:
    configured: str | None = current_app.config.get("PUBLIC_URL")
    return (configured or request.host_url).rstrip("/")


@bp.post("/invoice")
def create_invoice() -> ResponseReturnValue:
    """Create an invoice at the site, like a shop's server does, and send the browser there."""
    choice = CHOICES.get(request.form.get("kind", "pick"), CHOICES["pick"])
    client_id = request.form.get("client_id", "")
    with store.transaction() as session:
        account = session.get(store.Account, int(client_id)) if client_id.isdigit() else None
        if account is None:
            return Response("unknown account", status=404, mimetype="text/plain")
        key, secret = account.api_key, account.api_secret
    base = _base()
    payload = {**ORDER, **choice, "foreign_id": f"demo-order-{secrets.token_hex(4)}",
               "url_success": f"{base}/sandbox/shop?paid=1",
               "url_failed": f"{base}/sandbox/shop?failed=1"}
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "X-Processing-Key": key,
               "X-Processing-Signature": signing.sign(body, secret)}
    try:
        answer = requests.post(base + API_PATH, data=body, headers=headers, timeout=30)
        data = answer.json().get("data") if answer.status_code == 200 else None
    except (requests.RequestException, ValueError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return Response("the checkout did not create the invoice", status=502,
                        mimetype="text/plain")
    return redirect(data["url"], 303)
