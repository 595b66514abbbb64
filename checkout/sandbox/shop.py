"""A demo shop's callback receiver (for `make run`): verifies, keeps, and lists callbacks.

The site forwards processor callbacks to the merchant's webhook with the merchant's key and
signature; the sandbox account has the same key and secret, so it can check them here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, render_template, request
from sqlalchemy import delete, select

from checkout import signing

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
    return render_template("sandbox/shop.html", items=items)
