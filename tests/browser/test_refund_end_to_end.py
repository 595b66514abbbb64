"""Money owed back, from one end to the other, with nothing but real parts: a customer overpays
a deposit page through the embedded processor and claims the difference on the page in
Chromium; the shop's owner, signed in to the back office in another tab with a real TOTP code,
approves it with the code asked again; the withdrawal goes to the processor under our
foreign_id, whose signed callback confirms it; the customer's open page shows the txid and
its explorer link by itself; the shop's webhook receives every refund event, signed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from kit.browser import link, pay
from kit.callbacks import Shop
from kit.console import Clock, add_person, sign_in_browser
from kit.invoices import advance_sandbox, settle
from kit.live import LiveServer, wait_until
from kit.refund_flow import WALLET, withdrawals
from playwright.sync_api import expect

from checkout import currencies, db
from checkout.models import Refund


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app(POLL_WAITING_MS=250, POLL_SEEN_MS=250)


def the_refund(app: Flask) -> Refund:
    with app.app_context():
        refund = db.session().query(Refund).one()
        db.session().expunge(refund)
        return refund


def test_overpay_claim_approve_in_the_back_office_and_see_the_txid(
        app: Flask, site: LiveServer, customer: Any, context: Any, webhook: Shop) -> None:
    tick = Clock(app)
    # The customer overpays (0.002 for 0.0012 BTC asked) and asks for the difference.
    customer.goto(link(site.url, convert_to=None, foreign_id="order-e2e"))
    pay(app, site, customer, "0.002")
    expect(customer.locator('[data-field="refund-form"]')).to_be_visible()
    customer.locator("#refund-address").fill(WALLET)
    customer.locator('[data-field="refund-form"] button[type="submit"]').click()
    item = customer.locator('[data-field="refund-item"]').first
    expect(item).to_contain_text("waiting for the shop's approval")
    refund = the_refund(app)
    assert (refund.state, refund.address, refund.amount) == ("requested", WALLET, "0.0008")

    # The owner approves it in the back office, with the code asked again.
    owner = add_person(app, "owner@shop.example", roles={11: "owner"})
    staff = context.new_page()
    sign_in_browser(app, staff, site.url, owner)
    staff.get_by_role("link", name="Refunds").click()
    staff.get_by_role("link", name=f"Decide on refund {refund.id}").click()
    staff.fill("#approve-code", tick.code(owner))
    staff.get_by_role("button", name="Approve and send").click()
    expect(staff.locator("p.notice[role=status]")).to_contain_text("Approved and sent")
    assert the_refund(app).state == "sent"
    assert withdrawals(app, refund.foreign_id) == 1

    # The customer's open page follows: on its way, then (the processor's signed callback)
    # confirmed with the txid and its explorer link.
    expect(item).to_contain_text("On its way to your wallet.")
    advance_sandbox(site.url, 3600)
    settle(app)
    done = the_refund(app)
    assert done.state == "confirmed" and done.txid
    expect(customer.locator('[data-field="refund-txid"]')).to_have_text(done.txid)
    expect(customer.locator('[data-field="refund-explorer"]')).to_have_attribute(
        "href", str(currencies.explorer_url("BTC", done.txid, testnet=True)))
    assert withdrawals(app, refund.foreign_id) == 1

    # The shop heard each step, signed with its secret, and never the processor's
    # withdrawal callbacks about our refund.
    def every_event_sent() -> bool:
        settle(app)
        return [e["status"] for e in events(webhook)][-1:] == ["confirmed"]

    wait_until(every_event_sent, what="the shop's refund events")
    assert [e["status"] for e in events(webhook)] == [
        "requested", "approved", "sent", "confirmed"]
    assert all(webhook.verifies(item) for item in webhook.received
               if b'"type":"refund"' in item.body)
    assert not [item for item in webhook.received if b'"type":"withdrawal"' in item.body]


def events(shop: Shop) -> list[dict[str, Any]]:
    return [json.loads(item.body) for item in shop.received
            if b'"type":"refund"' in item.body]
