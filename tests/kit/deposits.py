"""The deposit page tests' customer, and payments to them as the processor reports them.

Merchant 11's customer `user-7` pays BTC to BTC_ADDRESS. `send_deposit` tells the site about
a payment only the way the processor does: a signed v2 deposit callback through
POST /callbacks/coinspaid, so a page test can only reach the states the callback layer
allows (a final transaction status is never left, replays change nothing).
"""

from __future__ import annotations

from flask import Flask
from test_callbacks_kit import callbacks_of, deposit_body, post

BTC_ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "user-7", "amount": "0.00123",
        "convert_to": "EUR", "url_back": "https://shop.example/back"}


def txid(processor_id: int) -> str:
    """The blockchain id of the processor's transaction `processor_id`, in these tests."""
    return f"{processor_id:064x}"


def send_deposit(app: Flask, processor_id: int, status: str, amount: str = "0.00123") -> str:
    """The processor's callback about its transaction `processor_id` to BTC_ADDRESS, signed
    with the merchant's secret; what the site made of it (the callback's outcome: applied,
    duplicate, stale, flagged...)."""
    body = deposit_body(processor_id, status, address=BTC_ADDRESS,
                        foreign_id=str(LINK["foreign_id"]), amount=amount,
                        txid=txid(processor_id))
    response = post(app.test_client(), body)
    assert response.status_code == 200, response.get_data(as_text=True)
    outcome = callbacks_of(app)[-1].outcome
    assert outcome is not None
    return outcome
