"""What the QR of each network holds, as most wallets read it, and what the page says beside
it: pages opened through real terminal links on the embedded sandbox, QRs decoded by
zxing-cpp."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from kit.deposits import BTC_ADDRESS, known_address
from kit.links import page_of
from kit.site import MERCHANT_SECRET
from PIL import Image
from sqlalchemy import update

from checkout import clock, currencies, db, merchants, terminal, uris
from checkout.models import DepositAddress, Invoice, Merchant, Page, RateQuote
from checkout.pagekinds import invoice as invoice_kind
from checkout.services import invoices

# The main chains' ids and token contracts a test page must never name.
MAINNET_CHAIN = re.compile(r"@(1|56)(?![0-9])")
MAINNET_CONTRACTS = ("0xdac17f958d2ee523a2206206994597c13d831ec7",  # USDT ERC-20
                     "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",  # USDC ERC-20
                     "0x55d398326f99059ff775485246999027b3197955")  # USDT BEP-20


def open_page(client: FlaskClient, currency: str, amount: str | None = "25",
              foreign_id: str = "order-7") -> str:
    """Open a terminal link (the sandbox hands out the address); the page's path."""
    fields: dict[str, Any] = {"client_id": 11, "currency": currency, "foreign_id": foreign_id}
    if amount is not None:
        fields["amount"] = amount
    return page_of(client, fields)


def scan(client: FlaskClient, page: str) -> str:
    image = Image.open(io.BytesIO(client.get(page + "/qr.png").data))
    [barcode] = zxingcpp.read_barcodes(image)
    return str(barcode.text)


class Block(HTMLParser):
    """The text and the tags inside the first element with class `qr`."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.text: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if self.depth == 0 and "qr" in (found.get("class") or "").split():
            self.depth = 1
            return
        if self.depth:
            self.tags.append((tag, found))
            if tag not in ("img", "br", "input"):
                self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1
            if self.depth == 0:
                self.depth = -1  # done: later blocks are not this one

    def handle_data(self, data: str) -> None:
        if self.depth > 0:
            self.text.append(data)


def qr_block(html: str) -> Block:
    block = Block()
    block.feed(html)
    return block


# ---------------------------------------------------------------- XRP


def test_the_xrp_qr_holds_the_bare_address_and_the_tag_stands_beside_it(
        client: FlaskClient, merchant: Merchant) -> None:
    page = open_page(client, "XRP")
    model = client.get(page + "/status").get_json()
    assert model["address"].startswith("r") and model["tag"]
    # What every XRP wallet scans: the r-address alone (no web link only Xaman reads).
    assert scan(client, page) == model["address"]
    html = client.get(page).get_data(as_text=True)
    # The tag: shown, with its own copy button and the warning, and named in the QR's note.
    assert f'data-field="tag" id="tag" dir="ltr">{model["tag"]}</code>' in html
    assert 'data-copy="tag"' in html
    assert "You must include this Destination tag, or your payment may be lost." in html
    block = qr_block(html)
    note = " ".join("".join(block.text).split())
    assert "holds only the address" in note and "Destination tag" in note and "amount" in note
    assert ("button", {"type": "button", "class": "copy", "data-copy": "amount",
                       "hidden": None}) in block.tags
    # The one-wallet link stays, as a button of its own: the QR itself is no link to it.
    links = [attrs for tag, attrs in block.tags if tag == "a"]
    assert [a["href"] for a in links] == [model["payment_uri"]]
    assert links[0]["target"] == "_blank" and "Open in Xaman" in note
    # A test page: the link names no ledger, so never the main XRP Ledger.
    assert "network=" not in model["payment_uri"] and f"dt={model['tag']}" in \
        model["payment_uri"]
    assert '<a class="qr"' not in html


# ---------------------------------------------------------------- EVM chains in sandbox mode


@pytest.mark.parametrize("currency", ["USDTE", "USDC"])
def test_an_erc20_qr_holds_the_recipient_and_never_a_contract(
        client: FlaskClient, merchant: Merchant, currency: str) -> None:
    page = open_page(client, currency)
    model = client.get(page + "/status").get_json()
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", model["address"])
    assert scan(client, page) == model["address"]
    html = client.get(page).get_data(as_text=True)
    for text in (html.lower(), model["payment_uri"].lower()):
        assert not any(contract in text for contract in MAINNET_CONTRACTS)
    note = " ".join("".join(qr_block(html).text).split())
    assert "This QR code holds only the address: type the amount in your wallet." in note


@pytest.mark.parametrize("currency", ["ETH", "USDTE", "USDC"])
def test_in_sandbox_mode_nothing_points_at_a_main_chain(
        client: FlaskClient, merchant: Merchant, currency: str) -> None:
    """The page's badge says test network: its link and QR name a test chain or none."""
    page = open_page(client, currency, amount="10")
    model = client.get(page + "/status").get_json()
    assert model["test_network"] is True
    for text in (model["payment_uri"], scan(client, page)):
        assert not MAINNET_CHAIN.search(text), text
        if text.startswith("ethereum:"):
            assert "@11155111" in text, text


def test_outside_sandbox_mode_ether_names_the_main_chain() -> None:
    # The same builder, for a live page: chain 1, as before (tests/domain/test_uris.py has more).
    address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    assert uris.payment_uri("ETH", address, None) == f"ethereum:{address}@1"
    assert uris.payment_uri("ETH", address, None, testnet=True) == f"ethereum:{address}@11155111"


# ---------------------------------------------------------------- TRON and other bare addresses


@pytest.mark.parametrize("currency", ["USDTT", "TRX"])
def test_a_tron_qr_says_to_type_the_amount_with_its_copy_button_beside_it(
        client: FlaskClient, merchant: Merchant, currency: str) -> None:
    page = open_page(client, currency)
    model = client.get(page + "/status").get_json()
    assert scan(client, page) == model["address"]
    block = qr_block(client.get(page).get_data(as_text=True))
    note = " ".join("".join(block.text).split())
    assert "This QR code holds only the address: type the amount in your wallet." in note
    assert ("button", {"type": "button", "class": "copy", "data-copy": "amount",
                       "hidden": None}) in block.tags


def test_a_qr_that_carries_the_amount_needs_no_such_note(
        client: FlaskClient, merchant: Merchant) -> None:
    page = open_page(client, "BTC", amount="0.001")
    assert scan(client, page).endswith("?amount=0.001")
    html = client.get(page).get_data(as_text=True)
    assert "holds only the address" not in html
    assert '<a class="qr"' in html


def test_an_open_amount_page_asks_for_no_amount(client: FlaskClient, merchant: Merchant) -> None:
    page = open_page(client, "USDTT", amount=None)
    html = client.get(page).get_data(as_text=True)
    assert "holds only the address" not in html and 'data-copy="amount"' not in html


# ---------------------------------------------------------------- networks that stopped


def test_the_sandbox_no_longer_offers_bnb_beacon(client: FlaskClient, merchant: Merchant) -> None:
    fields = {"client_id": 11, "currency": "BNB", "foreign_id": "order-8", "amount": "1"}
    response = client.get("/terminal", query_string=terminal.encode_link(fields,
                                                                          MERCHANT_SECRET))
    # The processor refuses the currency; the customer is told plainly, nothing breaks.
    assert response.status_code == 422
    assert "cannot be made in this currency" in response.get_data(as_text=True)


def test_a_processor_that_still_lists_bnb_beacon_is_tolerated(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    """A real processor may still list BNB: the invoice picker does not offer it, and a page
    it opened on it still reads right (its memo), without errors."""
    with app.app_context(), db.transaction() as session:
        now = clock.now()
        for code in ("BNB", "BTC"):
            session.add(RateQuote(currency_from=code, currency_to="EUR", rate="500",
                                  fetched_at=now))
        session.add(DepositAddress(merchant_id=11, foreign_id="u", currency="BNB",
                                   convert_to="", address="tbnb1dzf2lq7qgc4sd5hlrnqy9w9q8m",
                                   tag="104587"))
    with app.app_context():
        shop = merchants.by_client_id(11)
        assert shop is not None
        invoice = invoices.create(db.session(), shop, invoices.InvoiceRequest(
            foreign_id="inv-1", title="Order", description=None, currency="EUR",
            amount=Decimal("35"), timer=False, sender_currency=None,
            type="fill_or_kill", url_success="https://shop.example/ok",
            url_failed="https://shop.example/no", email_user=None,
            end_user_reference=None))
        found = db.session().get(Invoice, invoice.id)
        assert found is not None
        offered = [o.currency for o in invoice_kind.options(db.session(), found, clock.now())]
    assert "BTC" in offered and "BNB" not in offered
    page = open_page(client, "BNB", amount="1", foreign_id="u")
    html = client.get(page).get_data(as_text=True)
    assert "Memo" in html and "104587" in html and "BNB Beacon Chain (BEP-2)" in html


def test_the_site_marks_bnb_beacon_retired_and_nothing_else() -> None:
    assert [c.code for c in currencies.CURRENCIES.values() if c.retired] == ["BNB"]


def test_a_token_page_stored_with_the_old_contract_link_never_offers_it(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    """A page whose model was stored before this change still holds EIP-681's contract-first
    link: its QR is the recipient, and no button opens that link."""
    page = open_page(client, "USDTE")
    page_id = page.rsplit("/", 1)[1]
    address = client.get(page + "/status").get_json()["address"]
    old = f"ethereum:{MAINNET_CONTRACTS[0]}@1/transfer?address={address}&uint256=25000000"
    with app.app_context(), db.transaction() as session:
        stored = session.get(Page, page_id)
        assert stored is not None and stored.model_json
        text = stored.model_json.replace(f'"payment_uri":"{address}"', f'"payment_uri":"{old}"')
        assert old in text
        # As an earlier release wrote it (a plain UPDATE: no model is rebuilt on flush).
        session.execute(update(Page).where(Page.id == page_id).values(
            model_json=text, model_version=Page.model_version + 1))
    assert client.get(page + "/status").get_json()["payment_uri"] == old
    assert scan(client, page) == address
    html = client.get(page).get_data(as_text=True)
    assert "transfer?address" not in html and 'data-field="wallet-link"' not in html


def page_html(client: FlaskClient, currency: str, **extra: Any) -> str:
    query = terminal.encode_link({"client_id": 11, "currency": currency, "foreign_id": "u",
                                  **extra}, MERCHANT_SECRET)
    response = client.get("/terminal", query_string=query)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return client.get(response.headers["Location"]).get_data(as_text=True)


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


@pytest.mark.parametrize(("currency", "address", "tag"), [
    ("USDTT", "TFpdNXBtw55yS7bExnbtYZcAdvtT18tq9u", None),
    ("TRX", "TFpdNXBtw55yS7bExnbtYZcAdvtT18tq9u", None),
    ("BNB", "bnb136ns6lfw4zs5hg4n85vdthaad7hq5m4gtkgf23", "104587"),
    ("ADA", "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq"
            "835lu7drv2xwl2wywfgse35a3x", None),
])
def test_a_currency_without_a_wallet_uri_shows_its_qr_without_a_link(
        app: Flask, client: FlaskClient, merchant: Merchant, currency: str, address: str,
        tag: str | None) -> None:
    """A bare address in an href is a relative URL: "Open in your wallet" led to our 404."""
    known_address(app, currency, address, tag)
    html = page_html(client, currency, amount="25")
    assert address in html  # still shown, and in the QR
    assert 'data-field="wallet-link"' not in html
    assert all(not h.startswith(address) and address not in h for h in hrefs(html))
    assert 'data-field="qr"' in html and "Scan with your wallet" in html


def test_a_web_wallet_link_opens_beside_the_checkout_never_over_it(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    """XRP opens Xaman through https: inside the shop's iframe it must not replace the
    checkout with a site that refuses to be framed, and outside one it must not take the
    customer away from the page that shows the tag and the status."""
    known_address(app, "XRP", "rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh", "123456")
    html = page_html(client, "XRP", is_iframe=True)
    link = re.search(r'<a class="button wallet-app"[^>]*>', html)
    assert link is not None
    assert 'href="https://xaman.app/detect/request:rHb9CJAWyB4rj91VRWn96DkukG4bwdtyTh' \
        in link.group(0)
    assert 'target="_blank"' in link.group(0) and 'rel="noopener noreferrer"' in link.group(0)


def test_a_wallet_uri_link_stays_a_plain_link(app: Flask, client: FlaskClient,
                                              merchant: Merchant) -> None:
    known_address(app, "BTC", BTC_ADDRESS)
    html = page_html(client, "BTC", amount="0.001")
    link = re.search(r'<a class="qr"[^>]*>', html)
    assert link is not None and "target=" not in link.group(0)
    assert 'href="bitcoin:bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq?amount=0.001"' \
        in link.group(0)
