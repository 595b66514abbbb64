"""A shop's own page holding the checkout in a plain iframe (no embed.js), served on a port of
its own, for merchant 11's customer `user-7`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Flask

from checkout import terminal
from kit.live import LiveServer, start_live_server
from kit.site import MERCHANT_SECRET

BTC_ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "user-7", "amount": "0.00123",
        "convert_to": "EUR", "url_back": "https://shop.example/back", "is_iframe": True}


class Shop:
    """A shop on `localhost` (another origin than the checkout on 127.0.0.1) that frames
    whatever link it is given in a bare <iframe>, as many shops embed without embed.js."""

    def __init__(self, checkout: LiveServer) -> None:
        self.checkout = checkout
        self.html = ""
        app = Flask("plain_shop")

        @app.get("/")
        def index() -> str:
            return self.html

        self.live = start_live_server(app, host="localhost")

    def link(self, payload: dict[str, Any]) -> str:
        query = urlencode(terminal.encode_link(payload, MERCHANT_SECRET))
        return f"{self.checkout.url}/terminal?{query}"

    def frame(self, payload: dict[str, Any]) -> None:
        self.html = (f'<!doctype html><title>Shop</title>'
                     f'<iframe src="{self.link(payload)}" width="420" height="900"></iframe>')

    def embed(self, payload: dict[str, Any]) -> None:
        """The shop's own controls, then a checkout opened in embed.js's modal."""
        self.html = (
            f'<!doctype html><title>Shop</title><button id="behind">Shop button</button>'
            f'<a id="behind-link" href="/cart">Cart</a>'
            f'<script src="{self.checkout.url}/static/embed.js"></script>'
            f'<script>window.handle = Checkout.open({self.link(payload)!r}, '
            f'{{onClose: function () {{ window.wasClosed = true; }}}});</script>')
