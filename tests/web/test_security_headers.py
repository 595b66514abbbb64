"""Headers on every kind of answer, and deployment behind proxies: HSTS outside sandbox mode,
trusted proxy hops, trusted hosts, payment data never stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, jsonify, request, url_for
from flask.testing import FlaskClient
from kit.callbacks import deposit_body, signed_headers
from kit.headers import EVERYWHERE, LINK, open_page
from kit.live import LiveServer, start_live_server
from kit.site import MERCHANT_SECRET

from checkout import config, terminal
from checkout.models import Merchant

HSTS = "max-age=31536000; includeSubDomains"


@dataclass
class Site:
    client: FlaskClient
    page: str  # the customer page's path
    link: dict[str, str]  # the terminal link's query that opened it
    sandbox: bool




@pytest.fixture
def sandbox_site(app: Flask, merchant: Merchant, live_server: LiveServer) -> Site:
    client = app.test_client()
    page, query = open_page(client)
    return Site(client, page, query, sandbox=True)


@pytest.fixture
def production_site(make_app: Callable[..., Flask], app: Flask, merchant: Merchant,
                    live_server: LiveServer) -> Site:
    """Outside sandbox mode, its processor the embedded sandbox of another app over HTTP."""
    site = make_app(SANDBOX=False, PROCESSOR_URL=f"{live_server.url}/sandbox/api/v2")
    client = site.test_client()
    page, query = open_page(client)
    return Site(client, page, query, sandbox=False)


@pytest.fixture(params=["sandbox", "production"])
def site(request: pytest.FixtureRequest) -> Site:
    found: Site = request.getfixturevalue(f"{request.param}_site")
    return found


def signed_callback(client: FlaskClient) -> Any:
    body = deposit_body(9001, "not_confirmed", address="bc1qnotoursnotoursnotoursnotours0000")
    return client.post("/callbacks/coinspaid", data=body, headers=signed_headers(body))


def hashed_static(site: Site, name: str) -> str:
    """The URL the pages name the file by (its digest)."""
    with site.client.application.test_request_context():
        return url_for("static", filename=name)


# Each route kind: how to ask, the status it answers, whether it carries payment data.
ROUTES: dict[str, tuple[Callable[[Site], Any], int, bool]] = {
    "page": (lambda s: s.client.get(s.page), 200, True),
    "status": (lambda s: s.client.get(f"{s.page}/status"), 200, True),
    "QR SVG": (lambda s: s.client.get(f"{s.page}/qr.svg"), 200, True),
    "QR PNG": (lambda s: s.client.get(f"{s.page}/qr.png"), 200, True),
    "terminal link 303": (lambda s: s.client.get("/terminal", query_string=s.link), 303, True),
    "landing link 303": (lambda s: s.client.get("/", query_string=s.link), 303, True),
    "damaged link": (lambda s: s.client.get("/terminal?data=x&signature=y"), 400, True),
    "unknown page": (lambda s: s.client.get("/p/nosuchpage"), 404, True),
    "wrong method": (lambda s: s.client.delete(s.page), 405, True),
    "landing": (lambda s: s.client.get("/"), 200, True),
    "static": (lambda s: s.client.get("/static/checkout.css"), 200, False),
    "static, hashed, gzip": (lambda s: s.client.get(hashed_static(s, "checkout.js"),
                                                    headers={"Accept-Encoding": "gzip"}),
                             200, False),
    "static, not modified": (lambda s: s.client.get("/static/embed.js", headers={
        "If-None-Match": s.client.get("/static/embed.js").headers["ETag"]}), 304, False),
    "static, unknown": (lambda s: s.client.get("/static/nothing.js"), 404, False),
    "healthz": (lambda s: s.client.get("/healthz"), 200, False),
    "unsigned callback": (lambda s: s.client.post("/callbacks/coinspaid", data=b"{}"), 403,
                          False),
    "signed callback": (lambda s: signed_callback(s.client), 200, False),
    "invoice API": (lambda s: s.client.post("/api/v2/invoices/create", data="{}"), 400, False),
    "sandbox shop": (lambda s: s.client.get("/sandbox/shop"), 200, False),
    "sandbox API": (lambda s: s.client.post("/sandbox/api/v2/addresses/take", data="{}"), 400,
                    False),
    "sandbox simulation": (lambda s: s.client.post("/sandbox/simulate/payment", json={}), 400,
                           False),
}


@pytest.mark.parametrize("kind", ROUTES)
def test_every_route_kind_carries_every_security_header(site: Site, kind: str) -> None:
    ask, status, payment_data = ROUTES[kind]
    if kind.startswith("sandbox") and not site.sandbox:
        status = 404  # not mounted outside sandbox mode; the 404 carries the headers too
    response = ask(site)
    try:
        assert response.status_code == status
        for name, value in EVERYWHERE.items():
            assert response.headers.get(name) == value, name
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        if site.sandbox:
            assert "Strict-Transport-Security" not in response.headers
        else:
            assert response.headers["Strict-Transport-Security"] == HSTS
        if payment_data:
            assert response.headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in response.headers  # the site keeps no session
    finally:
        response.close()


def test_the_303_that_names_the_page_is_never_stored(sandbox_site: Site) -> None:
    response = sandbox_site.client.get("/terminal", query_string=sandbox_site.link)
    assert response.headers["Location"] == sandbox_site.page
    assert response.headers["Cache-Control"] == "no-store"


def test_a_framed_page_names_only_the_merchant_and_still_gets_hsts(production_site: Site) -> None:
    query = terminal.encode_link({**LINK, "foreign_id": "framed", "is_iframe": True},
                                 MERCHANT_SECRET)
    client = production_site.client
    page = client.get("/terminal", query_string=query).headers["Location"]
    response = client.get(page)
    assert "frame-ancestors https://shop.example" in response.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in response.headers
    assert response.headers["Strict-Transport-Security"] == HSTS


# ---------------------------------------------------------------- proxies


@pytest.fixture
def behind(make_app: Callable[..., Flask]) -> Iterator[Callable[[int], FlaskClient]]:
    """A client of a site trusting `hops` proxies; `/_seen` says what the site believes."""

    def build(hops: int) -> FlaskClient:
        app = make_app(TRUSTED_PROXIES=hops)

        @app.get("/_seen")
        def seen() -> Any:
            return jsonify(remote_addr=request.remote_addr, scheme=request.scheme,
                           host=request.host)

        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "10.0.0.2"  # the last proxy connects from there
        return client

    yield build


# A client forged the first entry of each; our proxies appended the others.
FORWARDED = {
    "X-Forwarded-For": "6.6.6.6, 198.51.100.9, 203.0.113.7",
    "X-Forwarded-Proto": "http, https, https",
    "X-Forwarded-Host": "evil.example, lb.internal, checkout.example",
}


@pytest.mark.parametrize(("hops", "addr", "scheme", "host"), [
    (0, "10.0.0.2", "http", "localhost"),  # not applied: the headers are anyone's
    (1, "203.0.113.7", "https", "checkout.example"),
    (2, "198.51.100.9", "https", "lb.internal"),
])
def test_proxy_headers_are_honoured_only_up_to_the_trusted_hops(
        behind: Callable[[int], FlaskClient], hops: int, addr: str, scheme: str,
        host: str) -> None:
    seen = behind(hops).get("/_seen", headers=FORWARDED).get_json()
    assert seen == {"remote_addr": addr, "scheme": scheme, "host": host}


def test_a_forged_forwarded_for_beyond_the_hops_is_ignored(
        behind: Callable[[int], FlaskClient]) -> None:
    # One proxy, which appends what it saw; the client sent two forged entries first.
    headers = {"X-Forwarded-For": "1.1.1.1, 2.2.2.2, 203.0.113.7"}
    assert behind(1).get("/_seen", headers=headers).get_json()["remote_addr"] == "203.0.113.7"
    # Fewer entries than hops (a request that bypassed a proxy): nothing is believed.
    assert behind(4).get("/_seen", headers=headers).get_json()["remote_addr"] == "10.0.0.2"


# ---------------------------------------------------------------- hosts


def test_an_untrusted_host_is_refused_with_the_headers(
        make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_TRUSTED_HOSTS", "checkout.example, .shop-pay.example")
    client = make_app().test_client()
    assert client.get("/healthz", headers={"Host": "checkout.example"}).status_code == 200
    assert client.get("/healthz", headers={"Host": "pay.shop-pay.example:8443"}).status_code == 200
    refused = client.get("/healthz", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    assert refused.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/p/x", headers={"Host": "checkout.example.evil.example"}
                      ).status_code == 400


def test_a_forwarded_host_counts_only_through_a_trusted_proxy(
        make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_TRUSTED_HOSTS", "checkout.example")
    headers = {"Host": "checkout.example", "X-Forwarded-Host": "evil.example"}
    assert make_app(TRUSTED_PROXIES=0).test_client().get(
        "/healthz", headers=headers).status_code == 200
    assert make_app(TRUSTED_PROXIES=1).test_client().get(
        "/healthz", headers=headers).status_code == 400


def test_trusted_hosts_include_the_public_url_so_the_sandbox_reaches_itself(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("CHECKOUT_TRUSTED_HOSTS", " Checkout.Example ,,")
    monkeypatch.setenv("CHECKOUT_PUBLIC_URL", "http://127.0.0.1:8000/")
    assert config.from_environment(tmp_path)["TRUSTED_HOSTS"] == ["checkout.example",
                                                                   "127.0.0.1"]
    monkeypatch.delenv("CHECKOUT_TRUSTED_HOSTS")
    assert config.from_environment(tmp_path)["TRUSTED_HOSTS"] is None


@pytest.mark.parametrize(("value", "hops"), [("", 0), ("0", 0), ("2", 2), (" 1 ", 1)])
def test_trusted_proxies_is_a_small_count(monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                                          value: str, hops: int) -> None:
    monkeypatch.setenv("CHECKOUT_TRUSTED_PROXIES", value)
    assert config.from_environment(tmp_path)["TRUSTED_PROXIES"] == hops


@pytest.mark.parametrize("value", ["-1", "yes", "1.5", "99", "\u0661"])
def test_trusted_proxies_refuses_anything_else(monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                                               value: str) -> None:
    monkeypatch.setenv("CHECKOUT_TRUSTED_PROXIES", value)
    with pytest.raises(config.ConfigError, match="TRUSTED_PROXIES"):
        config.from_environment(tmp_path)


def test_the_live_site_sends_hsts_only_outside_sandbox(
        make_app: Callable[..., Flask], app: Flask) -> None:
    """Over real HTTP too (the headers are set by the app, not the test client)."""
    import requests

    production = make_app(SANDBOX=False, PROCESSOR_URL="http://127.0.0.1:9/api/v2")
    for site, expected in ((app, None), (production, HSTS)):
        live = start_live_server(site)
        try:
            response = requests.get(f"{live.url}/healthz", timeout=30)
            assert response.headers.get("Strict-Transport-Security") == expected
        finally:
            live.server.shutdown()
            live.server.server_close()


def test_the_site_keeps_no_cookie_session(app: Flask) -> None:
    """A cookie would not survive a shop's third-party iframe: nothing may come to rely on one."""
    from flask import session

    with app.test_request_context("/"), pytest.raises(RuntimeError):
        session["anything"] = 1
