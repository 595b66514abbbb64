"""The customer's claim of money a page owes back, through the page's own form: the figures it
shows before anything is sent, the refusals of hostile input (each with a clear error and
nothing stored), one refund however often the form is sent, cancelling, and the rate limit.
Paid through the embedded sandbox over real HTTP, as the processor would."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit.deposits import LINK, open_link
from kit.invoices import settle
from kit.live import LiveServer
from kit.payments import pay
from sqlalchemy import func, select

from checkout import clock, db, refund_rules
from checkout.models import Merchant, Page, RateQuote, Refund
from checkout.web import forms, ratelimit

PLAIN_LINK = {**LINK, "convert_to": None}
WALLET = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"  # BIP-173's testnet example
OWED = Decimal("0.00077")  # 0.002 sent for 0.00123 asked


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    # Many refusals from one test client: the limit has its own test below.
    return make_app(RATELIMIT_REFUND="1000 per minute")


def paid_page(app: Flask, client: FlaskClient, live_server: LiveServer, sent: str,
              reason: str, link: dict[str, Any] = PLAIN_LINK) -> str:
    page_id = open_link(client, link).rsplit("/", 1)[1]
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None and page.address
        address, tag = page.address, page.tag
    pay(live_server.url, address, sent, "confirmed", tag=tag)
    settle(app)
    with app.app_context():
        page = db.session().get(Page, page_id)
        assert page is not None and (page.status, page.reason) == ("confirmed", reason)
    return page_id


@pytest.fixture
def overpaid(app: Flask, client: FlaskClient, live_server: LiveServer,
             merchant: Merchant) -> str:
    return paid_page(app, client, live_server, "0.00200000", "overpaid")


def token(body: str, action: str) -> str:
    form = re.search(r'<form[^>]*action="' + re.escape(action) + r'".*?</form>', body, re.S)
    assert form, f"the page has a form posting to {action}"
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.group(0))
    assert found
    return found.group(1)


def claim(client: FlaskClient, page_id: str, **fields: str) -> Any:
    path = f"/p/{page_id}"
    tok = token(client.get(path).get_data(as_text=True), path + "/refund")
    return client.post(path + "/refund", data={"csrf_token": tok, **fields})


def refunds_stored(app: Flask) -> list[Refund]:
    with app.app_context():
        return list(db.session().scalars(select(Refund).order_by(Refund.id)))


def text_of(response: Any) -> str:
    """The page's words, without the marks that keep an amount left to right (LRI, PDI)."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))
    return text.replace("\u2066", "").replace("\u2069", "")


def test_an_overpaid_page_offers_the_difference_with_the_fee_and_what_arrives(
        client: FlaskClient, overpaid: str) -> None:
    model = client.get(f"/p/{overpaid}/status").get_json()
    owed = model["refund"]["owed"]
    fee = refund_rules.FEE_RESERVE["BTC"]
    assert Decimal(owed["amount"]) == OWED and owed["cause"] == "overpaid"
    assert Decimal(owed["fee"]) == fee and Decimal(owed["receive"]) == OWED - fee
    assert owed["too_small"] is False and model["refund"]["refunds"] == []
    page = " ".join(text_of(client.get(f"/p/{overpaid}")).split())
    assert "You sent 0.00077 BTC more than asked: get it back." in page
    assert "Kept back for the network fee 0.0001 BTC" in page
    assert "Your wallet receives 0.00067 BTC" in page
    assert "must be a BTC address on the Bitcoin network" in page
    assert "you can get the difference back below" in page  # not "contact the shop"


def test_a_page_paid_as_asked_has_no_refund_part(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id = paid_page(app, client, live_server, "0.00123000", None)  # type: ignore[arg-type]
    assert client.get(f"/p/{page_id}/status").get_json()["refund"] is None
    assert f'action="/p/{page_id}/refund"' not in client.get(f"/p/{page_id}").get_data(
        as_text=True)


def test_a_claim_is_stored_as_requested_and_shown_waiting_for_the_shop(
        app: Flask, client: FlaskClient, overpaid: str) -> None:
    response = claim(client, overpaid, address=f"  {WALLET}  ", amount="")
    assert response.status_code == 303 and response.location.endswith(f"/p/{overpaid}")
    [refund] = refunds_stored(app)
    assert (refund.state, refund.address, refund.tag) == ("requested", WALLET, None)
    assert Decimal(refund.amount) == OWED  # empty: everything owed
    model = client.get(f"/p/{overpaid}/status").get_json()
    assert model["refund"]["owed"] is None
    [shown] = model["refund"]["refunds"]
    assert shown["state"] == "requested" and shown["requested_at"].endswith("Z")
    page = text_of(client.get(f"/p/{overpaid}"))
    assert "waiting for the shop's approval" in page and WALLET in page
    assert f'action="/p/{overpaid}/refund"' not in client.get(
        f"/p/{overpaid}").get_data(as_text=True)  # nothing left to claim: no form


HOSTILE: list[tuple[str, dict[str, str], str]] = [
    ("nul in the address", {"address": WALLET[:10] + "\x00" + WALLET[10:]}, "address"),
    ("10 kB address", {"address": "a" * 10240}, "too long"),
    ("spaces inside", {"address": "tb1q w508d6qejxtdg"}, "never has (a space"),
    ("empty address", {"address": "   "}, "Please enter your wallet address."),
    ("negative", {"address": WALLET, "amount": "-0.0005"}, "as a number"),
    ("exponent", {"address": WALLET, "amount": "1e3"}, "as a number"),
    ("NaN", {"address": WALLET, "amount": "NaN"}, "as a number"),
    ("infinity", {"address": WALLET, "amount": "Infinity"}, "as a number"),
    ("zero", {"address": WALLET, "amount": "0"}, "above zero"),
    ("more than owed", {"address": WALLET, "amount": "0.00078"}, "more than is owed"),
    ("too many decimals", {"address": WALLET, "amount": "0.000500001"}, "8 decimal places"),
    ("eaten by the fee", {"address": WALLET, "amount": "0.0001"}, "too small"),
    ("a tag where none belongs", {"address": WALLET, "tag": "12345"}, "have no tag or memo"),
    ("a control character in the tag", {"address": WALLET, "tag": "\x07"},
     "have no tag or memo"),
]


@pytest.mark.parametrize(("case", "fields", "says"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_input_is_refused_with_a_clear_error_and_nothing_stored(
        app: Flask, client: FlaskClient, overpaid: str, case: str, fields: dict[str, str],
        says: str) -> None:
    response = claim(client, overpaid, **fields)
    assert response.status_code == 400, case
    shown = text_of(response)
    error = re.search(r'data-field="refund-error">([^<]*)<', response.get_data(as_text=True))
    assert error, f"{case}: the form says what is wrong"
    assert says.lower() in html.unescape(error.group(1)).lower() or says in shown, (
        case, error.group(1))
    assert refunds_stored(app) == []
    # The customer's form is shown again to correct (never a NUL or 10 kB echoed back).
    assert f'action="/p/{overpaid}/refund"' in response.get_data(as_text=True)
    assert "\x00" not in response.get_data(as_text=True)


def test_a_form_without_its_token_or_with_another_pages_stores_nothing(
        app: Flask, client: FlaskClient, overpaid: str) -> None:
    path = f"/p/{overpaid}/refund"
    assert client.post(path, data={"address": WALLET}).status_code == 400
    other = open_link(client, {**PLAIN_LINK, "foreign_id": "user-8"}).rsplit("/", 1)[1]
    with app.app_context():
        forged = forms.page_token(other, "RefundForm")  # valid, for another page
    assert client.post(path, data={"csrf_token": forged, "address": WALLET}).status_code == 400
    assert refunds_stored(app) == []


def test_the_same_form_sent_twice_makes_one_refund_never_more_than_owed(
        app: Flask, client: FlaskClient, overpaid: str) -> None:
    path = f"/p/{overpaid}"
    tok = token(client.get(path).get_data(as_text=True), path + "/refund")
    first = client.post(path + "/refund", data={"csrf_token": tok, "address": WALLET})
    second = client.post(path + "/refund", data={"csrf_token": tok, "address": WALLET})
    assert first.status_code == 303
    assert second.status_code == 409
    assert "Nothing is owed back" in text_of(second)
    stored = refunds_stored(app)
    assert len(stored) == 1 and sum(Decimal(r.amount) for r in stored) <= OWED


def test_part_of_the_money_then_the_rest_never_beyond_what_is_owed(
        app: Flask, client: FlaskClient, overpaid: str) -> None:
    assert claim(client, overpaid, address=WALLET, amount="0.0004").status_code == 303
    left = client.get(f"/p/{overpaid}/status").get_json()["refund"]["owed"]
    assert Decimal(left["amount"]) == OWED - Decimal("0.0004")
    assert claim(client, overpaid, address=WALLET, amount="0.0004").status_code == 400
    assert claim(client, overpaid, address=WALLET, amount="0,00037").status_code == 303
    assert sum(Decimal(r.amount) for r in refunds_stored(app)) == OWED


def test_a_request_is_cancelled_while_undecided_and_the_money_is_offered_again(
        app: Flask, client: FlaskClient, overpaid: str) -> None:
    assert claim(client, overpaid, address=WALLET).status_code == 303
    [refund] = refunds_stored(app)
    path = f"/p/{overpaid}"
    cancel = f"{path}/refund/{refund.id}/cancel"
    tok = token(client.get(path).get_data(as_text=True), cancel)
    assert client.post(cancel, data={"csrf_token": tok}).status_code == 303
    assert refunds_stored(app)[0].state == "cancelled"
    again = client.post(cancel, data={"csrf_token": tok})
    assert again.status_code == 409 and "already decided" in text_of(again)
    assert client.post(f"{path}/refund/{refund.id + 99}/cancel",
                       data={"csrf_token": tok}).status_code == 404
    model = client.get(path + "/status").get_json()
    assert Decimal(model["refund"]["owed"]["amount"]) == OWED
    assert "You cancelled this request." in text_of(client.get(path))


def test_an_underpaid_page_offers_paying_the_rest_or_everything_back(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id = paid_page(app, client, live_server, "0.00100000", "underpaid")
    model = client.get(f"/p/{page_id}/status").get_json()
    assert model["phase"] == "partial" and model["pay_now"]
    assert Decimal(model["refund"]["owed"]["amount"]) == Decimal("0.001")
    page = text_of(client.get(f"/p/{page_id}"))
    assert "Or, instead of paying the rest, get back what you sent: 0.001 BTC." in page
    assert claim(client, page_id, address=WALLET).status_code == 303
    model = client.get(f"/p/{page_id}/status").get_json()
    # Asked back: the page no longer asks for the rest, and keeps watching the refund.
    assert model["phase"] == "refunding" and not model["pay_now"]
    body = client.get(f"/p/{page_id}").get_data(as_text=True)
    assert re.search(r'data-field="pay-box" hidden', body)
    assert '<meta http-equiv="refresh"' in body


def test_the_claim_routes_are_rate_limited_per_client_address(
        make_app: Callable[..., Flask], merchant: Merchant) -> None:
    app = make_app(RATELIMIT_REFUND="3 per minute; 20 per hour")
    client = app.test_client()
    page = "/p/" + "a" * 32
    for route in ("/refund", "/refund/1/cancel"):
        codes = [client.post(page + route).status_code for _ in range(3)]
        assert 429 not in codes
        assert client.post(page + route).status_code == 429
        # Another customer, from another address, is not refused.
        assert client.post(page + route, environ_base={"REMOTE_ADDR": "192.0.2.7"}
                           ).status_code != 429


def test_the_refund_limit_names_its_views_or_the_app_does_not_start(app: Flask) -> None:
    limiter = app.extensions[ratelimit.EXTENSION]
    with pytest.raises(LookupError, match="RATELIMIT_REFUND"):
        ratelimit.limit_views(app, limiter, "RATELIMIT_REFUND", "pages.claim_refnud")


def test_no_refund_stored_counts_as_owed_twice(app: Flask, client: FlaskClient,
                                              overpaid: str) -> None:
    claim(client, overpaid, address=WALLET)
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Refund)) == 1


def test_a_final_page_refreshes_itself_without_javascript_only_while_a_refund_moves(
        app: Flask, client: FlaskClient, overpaid: str) -> None:
    path = f"/p/{overpaid}"
    refresh = '<meta http-equiv="refresh"'
    assert refresh not in client.get(path).get_data(as_text=True)  # final, nothing moving
    assert claim(client, overpaid, address=WALLET).status_code == 303
    assert refresh in client.get(path).get_data(as_text=True)  # waiting for the shop
    [refund] = refunds_stored(app)
    cancel = f"{path}/refund/{refund.id}/cancel"
    tok = token(client.get(path).get_data(as_text=True), cancel)
    assert client.post(cancel, data={"csrf_token": tok}).status_code == 303
    assert refresh not in client.get(path).get_data(as_text=True)


XRP_LINK = {**PLAIN_LINK, "currency": "XRP", "amount": "25.5", "foreign_id": "user-x"}


def test_a_coin_that_needs_a_tag_asks_for_one_and_refuses_a_claim_without_it(
        app: Flask, client: FlaskClient, live_server: LiveServer, merchant: Merchant) -> None:
    page_id = paid_page(app, client, live_server, "30", "overpaid", XRP_LINK)
    body = client.get(f"/p/{page_id}").get_data(as_text=True)
    assert 'name="tag"' in body and "Destination tag" in body
    wallet = "rPT1Sjq2YGrBMTttX4GZHjKu9dyfzbpAYe"
    for fields, says in (({"address": wallet}, "Please enter your Destination tag"),
                         ({"address": wallet, "tag": "12 34"}, "digits only"),
                         ({"address": wallet, "tag": "9" * 65}, "too long to be a tag")):
        response = claim(client, page_id, **fields)
        assert response.status_code == 400
        assert says in text_of(response), (fields, says)
        assert 'aria-invalid="true"' in response.get_data(as_text=True).split(
            'id="refund-tag"')[1].split(">")[0]
    assert refunds_stored(app) == []
    assert claim(client, page_id, address=wallet, tag="123456").status_code == 303
    [refund] = refunds_stored(app)
    assert (refund.address, refund.tag, refund.currency) == (wallet, "123456", "XRP")


def test_a_claim_the_shops_policy_approves_itself_is_sent_at_once(
        app: Flask, client: FlaskClient, overpaid: str) -> None:
    with app.app_context():
        session = db.session()
        shop = session.get(Merchant, 11)
        assert shop is not None
        shop.refund_auto_below = "1000"  # EUR: any refund here approves itself
        quote = session.scalars(select(RateQuote).filter_by(
            currency_from="BTC", currency_to="EUR")).first() or RateQuote(
            currency_from="BTC", currency_to="EUR")
        quote.rate, quote.fetched_at = "60000", clock.now()
        session.add(quote)
        session.commit()
    assert claim(client, overpaid, address=WALLET).status_code == 303
    [refund] = refunds_stored(app)
    assert refund.state == "sent" and refund.processor_id  # the withdrawal went out
    assert "On its way to your wallet." in text_of(client.get(f"/p/{overpaid}"))
