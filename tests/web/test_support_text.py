"""A final page's "For support" text: the model's `support` lines (values only, never
translated), written by the page under its language's labels in a block selected with one
click, with a copy button; the poll and the page say the same; an open page has none."""

from __future__ import annotations

import html as html_lib
import json
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from kit.callbacks import invoice_body, issue_invoice, post
from kit.deposits import BTC_ADDRESS, open_link, send_deposit
from kit.deposits import txid as txid_of
from sqlalchemy import select, update

from checkout import db
from checkout.models import Merchant, Page

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def support_area(html: str) -> str:
    """The support text as a browser copies it: the block's text, marks left out."""
    found = re.search(r'<pre [^>]*data-field="support-text">(.*?)</pre>', html, re.S)
    assert found, "the page has the support text"
    # Each value sits in its own left-to-right isolate, and nothing else is markup.
    assert re.sub(r'<bdi dir="ltr">[^<]*</bdi>', "", found.group(1)).count("<") == 0
    return html_lib.unescape(re.sub(r"<[^>]+>", "", found.group(1)))


def section_hidden(html: str) -> bool:
    found = re.search(r'<section class="support[^>]*>', html)
    assert found
    return " hidden" in found.group(0)


def test_an_open_page_has_no_support_text(client: FlaskClient, address: Any,
                                          fresh_rate: None) -> None:
    page = open_link(client)
    assert client.get(page + "/status").get_json()["support"] is None
    assert section_hidden(client.get(page).get_data(as_text=True))


def test_a_paid_page_s_support_text_names_the_payment_exactly(
        app: Flask, client: FlaskClient, address: Any, fresh_rate: None) -> None:
    page = open_link(client)
    page_id = page.rsplit("/", 1)[1]
    assert send_deposit(app, 4, "confirmed", amount="0.002") == "applied"
    model = client.get(page + "/status").get_json()
    assert model["final"] and model["phase"] == "overpaid"
    lines = dict((k, v) for k, v in model["support"] if k != "txid")
    assert lines["page"] == page_id
    assert lines["reference"] == "user-7"
    assert "status" not in lines  # a code would read as an untranslated word
    assert lines["asked"] == "0.00123 BTC" and lines["paid"] == "0.002 BTC"
    assert lines["address"] == BTC_ADDRESS
    assert ISO.fullmatch(lines["opened"]) and ISO.fullmatch(lines["paid_at"])
    assert lines["paid_at"] == model["receipt"]["paid_at"]
    assert [v for k, v in model["support"] if k == "txid"] == [txid_of(4)]

    english = client.get(page).get_data(as_text=True)
    assert not section_hidden(english)
    assert 'data-copy="support-text"' in english
    text = support_area(english)
    assert text.splitlines()[0] == f"Payment page: {page_id}"
    assert f"Transaction ID: {txid_of(4)}" in text.splitlines()
    assert "Amount paid: 0.002 BTC" in text.splitlines()
    # The same text in another language: labels translated, values byte for byte.
    german = support_area(client.get(page + "?lang=de").get_data(as_text=True))
    assert german != text
    values = [line.split(": ", 1)[1] for line in text.splitlines()]
    assert [line.split(": ", 1)[1] for line in german.splitlines()] == values
    assert "Zahlungsseite: " + page_id in german.splitlines()
    # Every line of the model, in its order: the page invents nothing and drops nothing.
    assert [line.split(": ", 1)[1] for line in text.splitlines()] == [
        v for _k, v in model["support"]]


def test_a_final_invoice_s_support_text_has_its_price_and_txid(
        app: Flask, client: FlaskClient, merchant: Merchant) -> None:
    page_id = issue_invoice(app, 777, "quote-1")
    payload = json.loads(invoice_body(777, "confirmed", "quote-1"))
    payload["transactions"] = [{"id": 9, "currency": "BTC", "transaction_type": "blockchain",
                                "type": "deposit", "address": payload["crypto_address"]["address"],
                                "tag": None, "amount": "0.00309556", "txid": "ef" * 32,
                                "confirmations": "3"}]
    assert post(client, json.dumps(payload).encode()).status_code == 200
    model = client.get(f"/p/{page_id}/status").get_json()
    assert model["final"]
    lines = model["support"]
    assert ["price", "26 EUR"] in lines and ["txid", "ef" * 32] in lines
    assert ["reference", "shop-quote-1"] in lines
    assert ["asked", "0.00309556 BTC"] in lines
    text = support_area(client.get(f"/p/{page_id}").get_data(as_text=True))
    assert "Order amount: 26 EUR" in text.splitlines()


def test_a_page_stored_before_the_support_text_still_shows_it(
        app: Flask, client: FlaskClient, address: Any, fresh_rate: None) -> None:
    page = open_link(client)
    page_id = page.rsplit("/", 1)[1]
    assert send_deposit(app, 5, "confirmed") == "applied"
    with app.app_context(), db.transaction() as s:
        stored = json.loads(s.scalar(select(Page.model_json).where(Page.id == page_id)))
        del stored["support"]
        # As an older release wrote it: a statement, which the model writer does not see.
        s.execute(update(Page).where(Page.id == page_id).values(model_json=json.dumps(stored)))
    assert "support" not in client.get(page + "/status").get_json()
    html = client.get(page).get_data(as_text=True)
    assert not section_hidden(html)
    assert f"Payment page: {page_id}" in support_area(html).splitlines()
