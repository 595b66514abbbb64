"""A payer's wallet: coins sent to an address the sandbox handed out, as its simulator takes
them (`POST /sandbox/simulate/payment`); the processor's callbacks follow from the sandbox."""

from __future__ import annotations

from typing import Any

import requests


def pay(base_url: str, address: str, amount: str, status: str | None = "not_confirmed",
        tag: str | None = None) -> None:
    """Send `amount` to `address` on the site at `base_url`; `status=None` leaves the
    transaction's status to the sandbox."""
    body: dict[str, Any] = {"address": address, "amount": amount}
    if status is not None:
        body["status"] = status
    if tag is not None:
        body["tag"] = tag
    answer = requests.post(f"{base_url}/sandbox/simulate/payment", json=body, timeout=30)
    assert answer.status_code == 201, answer.text
