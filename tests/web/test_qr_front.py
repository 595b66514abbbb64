"""The page's QR image is answered in front of Flask (front.py), byte for byte as the Flask
view answers it: the same status, headers and body, in every language, for GET, HEAD and a
revalidation; what the front cannot answer goes on to Flask; each image is drawn once per
process for its text, format and language, and the kept copies are bounded."""

from __future__ import annotations

import io
from typing import Any

import pytest
import zxingcpp
from flask import Flask
from kit.links import page_of
from kit.live import LiveServer, start_live_server
from kit.site import flask_requests
from PIL import Image
from sqlalchemy import update
from werkzeug.test import Client, TestResponse

from checkout import db, merchants, qr
from checkout.models import Merchant, Page
from checkout.web import front, qrimages

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "qr-1", "amount": "0.00123"}
TITLES = {"en": "QR code with the payment address",
          "de": "QR-Code mit der Zahlungsadresse"}


@pytest.fixture
def page(app: Flask, merchant: Merchant, live_server: LiveServer) -> str:
    return page_of(app.test_client(), LINK)


def kept(app: Flask) -> qrimages.Images:
    images: qrimages.Images = app.extensions[qrimages.EXTENSION]
    return images


def answer(response: TestResponse) -> tuple[str, list[tuple[str, str]], bytes]:
    """All of an answer but its Date, headers in their order."""
    return (response.status, [(k, v) for k, v in response.headers.items() if k != "Date"],
            response.get_data())


ASKING: list[dict[str, Any]] = [
    {},
    {"headers": {"Accept-Language": "de-AT,de;q=0.9"}},
    {"query_string": "lang=ar"},
    {"query_string": "lang=zh-Hans"},
    {"query_string": "lang=pt-BR", "headers": {"Accept-Language": "de"}},
    # Longer than the front keeps its choice for: chosen afresh.
    {"headers": {"Accept-Language": ", ".join(f"x-{n};q=0.{n % 9 + 1}" for n in range(80))
                 + ", fr;q=0.95"}},
]


@pytest.mark.parametrize("fmt", ["svg", "png"])
@pytest.mark.parametrize("asking", ASKING)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_qr_never_reaches_flask_and_answers_what_flask_does(
        app: Flask, page: str, fmt: str, asking: dict[str, Any], method: str) -> None:
    client = app.test_client()
    assert isinstance(app.wsgi_app, front.Front)
    behind = Client(app.wsgi_app.inner)
    path = f"{page}/qr.{fmt}"
    handled = flask_requests(app)
    # Drawn by the front on its first request, then kept.
    first = client.open(path, method=method, **asking)
    again = client.open(path, method=method, **asking)
    assert handled == []
    # The Flask view, drawing it anew (its translated title too).
    kept(app).entries.clear()
    flask = behind.open(path, method=method, **asking)
    assert handled == [path]
    assert first.status_code == 200
    assert answer(first) == answer(again) == answer(flask)
    # Revalidated with the ETag: "unchanged", alike.
    tag = {"If-None-Match": first.headers["ETag"]}
    conditional = {**asking, "headers": {**asking.get("headers", {}), **tag}}
    unchanged = client.open(path, method=method, **conditional)
    assert handled == [path] and unchanged.status_code == 304
    assert answer(unchanged) == answer(behind.open(path, method=method, **conditional))


def test_the_svg_title_is_in_the_chosen_language_and_the_merchants_default(
        app: Flask, page: str) -> None:
    client = app.test_client()
    handled = flask_requests(app)

    def title(**asking: Any) -> str:
        svg = client.get(f"{page}/qr.svg", **asking).get_data(as_text=True)
        return svg.split("<title>", 1)[1].split("</title>", 1)[0]

    assert title() == TITLES["en"]
    assert title(headers={"Accept-Language": "de"}) == TITLES["de"]
    with app.app_context():
        merchants.edit(11, merchants.MerchantEdit(language="de"))
    assert title() == TITLES["de"]
    assert title(query_string="lang=en") == TITLES["en"]
    assert handled == []
    # A tag per language, so that a cache holding one never answers another.
    tags = {client.get(f"{page}/qr.svg", query_string=f"lang={lang}").headers["ETag"]
            for lang in ("en", "de", "fr")}
    assert len(tags) == 3


def test_the_image_decodes_to_the_payment_uri_the_poll_shows(app: Flask, page: str) -> None:
    client = app.test_client()
    model = client.get(page + "/status").get_json()
    image = Image.open(io.BytesIO(client.get(page + "/qr.png").data))
    (result,) = zxingcpp.read_barcodes(image)
    assert result.text.lower() == model["payment_uri"].lower()


@pytest.mark.parametrize("path", ["/p/nope/qr.svg", "{page}/qr.gif", "{page}/qr.svg/",
                                  "/p/" + "A" * 43 + "/qr.svg"])
def test_what_the_front_cannot_answer_goes_to_flask(app: Flask, page: str, path: str) -> None:
    handled = flask_requests(app)
    asked = path.format(page=page)
    response = app.test_client().get(asked)
    assert response.status_code == 404 and handled == [asked]
    assert response.headers["Cache-Control"] == "no-store"
    assert "text/html" in response.headers["Content-Type"]


def test_a_page_without_a_stored_model_is_answered_by_flask_alike(
        app: Flask, page: str) -> None:
    client = app.test_client()
    path = f"{page}/qr.svg"
    stored = client.get(path)
    engine = app.extensions[db.EXTENSION + ".engine"]
    with engine.begin() as conn:  # as a page written before models were stored
        conn.execute(update(Page).where(Page.id == page.rsplit("/", 1)[1])
                     .values(model_json=None))
    handled = flask_requests(app)
    kept(app).entries.clear()
    built = client.get(path)  # from the page's tables
    assert handled == [path]
    assert answer(built) == answer(stored)


def test_each_image_is_drawn_once_per_text_format_and_language(
        app: Flask, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    real = qr._svg

    def counted(rows: Any, title: str) -> bytes:
        drawn.append(title)
        return real(rows, title)

    qr.svg.cache_clear()
    monkeypatch.setattr(qr, "_svg", counted)
    client = app.test_client()
    for _ in range(3):
        for lang in ("en", "de"):
            assert client.get(f"{page}/qr.svg", query_string=f"lang={lang}").status_code == 200
    assert drawn == [TITLES["en"], TITLES["de"]]
    assert len(kept(app).entries) == 2


def test_the_kept_images_are_bounded(app: Flask, page: str) -> None:
    images = kept(app)
    images.size = 3
    client = app.test_client()
    for lang in ("en", "de", "fr", "es", "ja"):
        assert client.get(f"{page}/qr.svg", query_string=f"lang={lang}").status_code == 200
    assert [key[2] for key in images.entries] == ["fr", "es", "ja"]


def test_images_are_counted_once_each_and_refused_past_the_limit(
        make_app: Any, merchant: Merchant) -> None:
    app = make_app(RATELIMIT_PAGES="3 per minute")
    live = start_live_server(app)
    try:
        client = app.test_client()
        path = page_of(client, LINK) + "/qr.png"
        codes = [client.get(path).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = client.get(path)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert "Too many requests" in refused.get_data(as_text=True)
    finally:
        live.stop()
