"""Money owed back, claimed on the page in Chromium: a deposit page overpaid through the
embedded sandbox offers the difference; the customer fills the claim form (with JavaScript
and without), a wrong address is refused in place, the request waits for the shop; the shop
approves (the service the back office calls) and the withdrawal goes out under our
foreign_id; the sandbox's signed callback confirms it, and the txid with its explorer link
appears by itself (the poll) or on reloading (no script). The processor's own words for a
withdrawal held for approval (`pending`) and for one it cancelled (`failed`, the money owed
again, the form offered again) come as its signed callbacks; a refusal by the shop comes
with its reason. axe-core audits every state.

Screenshots: `build/screenshots/refund-<state>-<lang>-<width>-<scheme>.png`, states
owed, error, requested, sent, pending, confirmed, rejected, failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from kit.accessibility import check
from kit.browser import LANGUAGES, link, pay, photograph, shoot
from kit.callbacks import post_live
from kit.console import add_person
from kit.invoices import advance_sandbox, settle
from kit.live import LiveServer
from playwright.sync_api import expect

from checkout import currencies, db
from checkout.models import Page, Refund
from checkout.services import refunds

WALLET = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"  # BIP-173's testnet example


@pytest.fixture
def app(make_app: Any) -> Any:
    # Quick polls; the claim's own limit is tested elsewhere (tests/web/test_refund_claims.py).
    return make_app(POLL_WAITING_MS=250, POLL_SEEN_MS=250, NOSCRIPT_REFRESH=1,
                    RATELIMIT_REFUND="1000 per minute")


@pytest.fixture
def overpaid(app: Flask, site: LiveServer, customer: Any) -> Iterator[Any]:
    """The customer's tab on a page asking 0.0012 BTC, paid 0.002: 0.0008 owed back."""
    customer.goto(link(site.url, convert_to=None, foreign_id="order-refund"))
    pay(app, site, customer, "0.002")
    expect(customer.locator('[data-field="refund-form"]')).to_be_visible()
    yield customer


def page_id_of(tab: Any) -> str:
    return str(tab.url.split("?")[0].rstrip("/").rsplit("/", 1)[1])


def the_refund(app: Flask, page_id: str) -> Refund:
    with app.app_context():
        refund = db.session().query(Refund).filter_by(page_id=page_id).order_by(
            Refund.id.desc()).first()
        assert refund is not None
        db.session().expunge(refund)
        return refund


def claim(tab: Any, address: str) -> None:
    tab.locator("#refund-address").fill(address)
    tab.get_by_role("button", name="Get my money back").click()


def approve_and_send(app: Flask, refund_id: int) -> None:
    """What the back office does for a merchant user who approves."""
    owner = add_person(app, f"owner{refund_id}@shop.example", roles={11: "owner"})
    with app.app_context():
        session = db.session()
        refunds.approve(session, refund_id, user_id=owner.id, actor=owner.email,
                        merchant_ids=[11])
        session.commit()
    with app.app_context():
        assert refunds.send(refund_id) == refunds.SENT


def withdrawal_callback(site: LiveServer, refund: Refund, status: str) -> None:
    """The processor's signed word about our withdrawal (coinspaid-api.md §3, "withdrawal"):
    held for approval under its withdrawal limits, or cancelled with its error."""
    body: dict[str, Any] = {
        "id": refund.processor_id, "foreign_id": refund.foreign_id, "type": "withdrawal",
        "crypto_address": {"id": 1, "currency": "BTC", "address": refund.address, "tag": None},
        "transactions": [{"id": 1, "currency": "BTC", "transaction_type": "blockchain",
                          "type": "withdrawal", "address": refund.address, "tag": None,
                          "amount": refund.amount_received, "txid": None,
                          "confirmations": "0"}],
        "fees": [], "error": "", "status": status}
    if status == "cancelled":
        body["error"] = "Invalid params: the address is not valid on this network."
    response = post_live(site.url, json.dumps(body).encode())
    assert response.status_code == 200, response.text


def state_of(tab: Any) -> Any:
    return tab.locator('[data-field="refund-item"]').first


def photograph_error(tab: Any, url: str) -> None:
    """The refused claim, in every language: the form's answer to a POST, drawn anew."""
    for lang in ("en", *LANGUAGES):
        other = tab.context.new_page()
        try:
            other.goto(f"{url}?lang={lang}")
            claim_any_language(other, "not an address")
            expect(other.locator('[data-field="refund-error"]')).to_be_visible()
            shoot(other, f"refund-error-{lang}")
        finally:
            other.close()


def claim_any_language(tab: Any, address: str) -> None:
    tab.locator("#refund-address").fill(address)
    tab.locator('[data-field="refund-form"] button[type="submit"]').click()


def test_overpay_claim_approve_and_see_the_txid_appear_by_itself(
        app: Flask, site: LiveServer, overpaid: Any) -> None:
    tab = overpaid
    page_id = page_id_of(tab)
    page_url = tab.url.split("?")[0]
    figures = tab.locator('[data-field="refund-figures"]')
    expect(figures).to_contain_text("0.0008")  # owed
    expect(tab.locator('[data-field="refund-receive"]')).to_have_text("0.0007")
    expect(tab.locator('[data-field="refund-network-warning"]')).to_contain_text(
        "must be a BTC address on the Bitcoin network")
    expect(tab.locator("#status-text")).to_contain_text("you can get the difference back")
    photograph(tab, "owed", "refund")
    check(tab, "refund: owed")

    claim(tab, "not an address")
    error = tab.locator('[data-field="refund-error"]')
    expect(error).to_contain_text("never has (a space")
    expect(tab.locator("#refund-address")).to_have_attribute("aria-invalid", "true")
    check(tab, "refund: error")
    photograph_error(tab, page_url)
    with app.app_context():
        assert db.session().query(Refund).count() == 0

    claim(tab, WALLET)
    expect(state_of(tab)).to_contain_text("waiting for the shop's approval")
    expect(tab.locator('[data-field="refund-form"]')).to_have_count(0)
    photograph(tab, "requested", "refund")
    check(tab, "refund: requested")

    refund = the_refund(app, page_id)
    approve_and_send(app, refund.id)
    expect(state_of(tab)).to_contain_text("On its way to your wallet.")
    photograph(tab, "sent", "refund")
    check(tab, "refund: sent")

    withdrawal_callback(site, the_refund(app, page_id), "pending")
    expect(state_of(tab)).to_contain_text("Waiting for approval at the payment processor")
    photograph(tab, "pending", "refund")

    advance_sandbox(site.url, 3600)
    settle(app)
    done = the_refund(app, page_id)
    assert done.state == "confirmed" and done.txid
    expect(tab.locator('[data-field="refund-txid"]')).to_have_text(done.txid)
    link_to_chain = tab.locator('[data-field="refund-explorer"]')
    expect(link_to_chain).to_have_attribute(
        "href", str(currencies.explorer_url("BTC", done.txid, testnet=True)))
    expect(tab.locator('[data-field="refund-received"]')).to_contain_text("0.0007")
    photograph(tab, "confirmed", "refund")
    check(tab, "refund: confirmed")


def test_without_javascript_the_claim_and_its_txid_work_by_reloading(
        app: Flask, site: LiveServer, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        tab = context.new_page()
        tab.goto(link(site.url, convert_to=None, foreign_id="order-noscript"))
        pay(app, site, tab, "0.002")
        tab.reload()
        expect(tab.locator('[data-field="refund-form"]')).to_be_visible()
        # A final page owing money back is not refreshed under the customer's hands.
        assert tab.locator('meta[http-equiv="refresh"]').count() == 0
        claim(tab, "bad\taddress")
        expect(tab.locator('[data-field="refund-error"]')).to_be_visible()
        claim(tab, WALLET)
        expect(state_of(tab)).to_contain_text("waiting for the shop's approval")
        # A refund on its way: the page refreshes itself again.
        assert tab.locator('meta[http-equiv="refresh"]').count() == 1
        page_id = page_id_of(tab)
        approve_and_send(app, the_refund(app, page_id).id)
        advance_sandbox(site.url, 3600)
        settle(app)
        tab.reload()
        done = the_refund(app, page_id)
        expect(tab.locator('[data-field="refund-txid"]')).to_have_text(str(done.txid))
        expect(tab.locator('[data-field="refund-explorer"]')).to_be_visible()
    finally:
        context.close()


def test_a_refused_and_a_failed_refund_say_why_and_the_money_is_offered_again(
        app: Flask, site: LiveServer, overpaid: Any) -> None:
    tab = overpaid
    page_id = page_id_of(tab)
    claim(tab, WALLET)
    expect(state_of(tab)).to_contain_text("waiting for the shop's approval")
    owner = add_person(app, "decider@shop.example", roles={11: "owner"})
    with app.app_context():
        session = db.session()
        refunds.reject(session, the_refund(app, page_id).id,
                       "We sent the difference as store credit.", user_id=owner.id,
                       actor=owner.email, merchant_ids=[11])
        session.commit()
    expect(state_of(tab)).to_contain_text("Refused by the shop.")
    expect(state_of(tab).locator('[data-field="refund-reason"]')).to_have_text(
        "We sent the difference as store credit.")
    expect(tab.locator('[data-field="refund-form"]')).to_be_visible()  # asked again
    photograph(tab, "rejected", "refund")
    check(tab, "refund: rejected")

    claim(tab, WALLET)
    expect(state_of(tab)).to_contain_text("waiting for the shop's approval")
    approve_and_send(app, the_refund(app, page_id).id)
    expect(state_of(tab)).to_contain_text("On its way")
    withdrawal_callback(site, the_refund(app, page_id), "cancelled")
    expect(state_of(tab)).to_contain_text("could not send it")
    expect(state_of(tab).locator('[data-field="refund-reason"]')).to_contain_text(
        "not valid on this network")
    expect(tab.locator('[data-field="refund-form"]')).to_be_visible()
    expect(tab.locator('[data-field="refund-offer"]')).to_contain_text("You can ask again.")
    photograph(tab, "failed", "refund")
    check(tab, "refund: failed")
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None and page.status == "confirmed"


def test_an_underpaid_page_offers_the_refund_beside_paying_the_rest(
        app: Flask, site: LiveServer, customer: Any) -> None:
    tab = customer
    tab.goto(link(site.url, convert_to=None, foreign_id="order-short"))
    pay(app, site, tab, "0.001")
    offer = tab.locator('[data-field="refund-offer"]')
    expect(offer).to_contain_text("instead of paying the rest, get back what you sent:")
    # The amount and its coin, one left-to-right unit in any language's sentence.
    assert "\u20660.001 BTC\u2069" in offer.inner_text()
    expect(tab.locator('[data-field="pay-box"]')).to_be_visible()  # or pay the rest
    photograph(tab, "underpaid", "refund")
    check(tab, "refund: underpaid")
    claim(tab, WALLET)
    expect(state_of(tab)).to_contain_text("waiting for the shop's approval")
    expect(tab.locator('[data-field="status-box"]')).to_have_attribute("data-phase", "refunding")
    expect(tab.locator('[data-field="pay-box"]')).to_be_hidden()  # no longer asks for the rest
    expect(tab.locator("#status-text")).to_contain_text("nothing more needs to be sent")
    photograph(tab, "refunding", "refund")
    check(tab, "refund: refunding")
