"""Static files: named by their content and cached for a year, gzipped once per process,
scripts minified; the plain names (embed.js on shops' pages) answer with a short cache."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import shutil
from pathlib import Path

import pytest
from calmjs.parse import es5
from flask import Flask, url_for
from flask.testing import FlaskClient
from kit.headers import EVERYWHERE, open_page
from kit.live import LiveServer
from werkzeug.test import TestResponse

from checkout import ROOT
from checkout.models import Merchant
from checkout.web import assets

STATIC = ROOT / "static"
NAMES = sorted(path.name for path in STATIC.iterdir() if path.is_file())
SCRIPTS = [name for name in NAMES if name.endswith(".js")]
FOREVER = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"
HASHED = re.compile(r"/static/(?P<stem>[\w-]+)\.(?P<digest>[0-9a-f]{16})(?P<suffix>\.\w+)")
MIMETYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def get(client: FlaskClient, url: str, accept: str | None = None, **headers: str) -> TestResponse:
    if accept is not None:
        headers["Accept-Encoding"] = accept
    return client.get(url, headers=headers)


def static_url(app: Flask, name: str) -> str:
    with app.test_request_context():
        return url_for("static", filename=name)


def plain(response: TestResponse) -> bytes:
    """The bytes the client reads once it has undone the Content-Encoding."""
    if response.headers.get("Content-Encoding") == "gzip":
        return gzip.decompress(response.data)
    return response.data


def static_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]*)"', html)


# ---------------------------------------------------------------- the URLs pages name


def test_the_page_names_its_css_icon_and_script_by_the_digest_of_what_is_served(
        client: FlaskClient, merchant: Merchant, live_server: LiveServer) -> None:
    page, _ = open_page(client)
    html = client.get(page).get_data(as_text=True)
    named = {}
    for url in static_urls(html):
        found = HASHED.fullmatch(url)
        assert found, url
        response = get(client, url, "identity")
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == FOREVER
        assert hashlib.sha256(response.data).hexdigest()[:16] == found["digest"]
        named[found["stem"] + found["suffix"]] = url
    assert set(named) == {"checkout.css", "favicon.svg", "checkout.js"}


@pytest.mark.parametrize("path", ["/", "/p/nosuchpage"])
def test_the_landing_and_error_pages_name_hashed_files_too(client: FlaskClient,
                                                           path: str) -> None:
    html = client.get(path).get_data(as_text=True)
    urls = static_urls(html)
    assert len(urls) == 2  # the stylesheet and the icon
    for url in urls:
        assert HASHED.fullmatch(url), url
        assert client.get(url).headers["Cache-Control"] == FOREVER


# ---------------------------------------------------------------- headers on every name


@pytest.mark.parametrize("name", NAMES)
def test_every_file_answers_at_its_plain_name_its_hashed_name_and_an_old_digest(
        app: Flask, client: FlaskClient, name: str) -> None:
    hashed = static_url(app, name)
    stem, suffix = name.rsplit(".", 1)
    assert hashed == f"/static/{stem}.{hashed.split('.')[-2]}.{suffix}"
    old = hashed.replace(hashed.split(".")[-2], "0" * 16)
    answers = {url: get(client, url, "identity") for url in (f"/static/{name}", hashed, old)}
    bodies = {response.data for response in answers.values()}
    assert len(bodies) == 1  # one file, whichever name asked for it
    for url, response in answers.items():
        assert response.status_code == 200, url
        assert response.mimetype == MIMETYPES["." + suffix]
        assert response.headers["Cache-Control"] == (FOREVER if url == hashed else SHORT)
        assert response.headers["ETag"] == f'"{hashed.split(".")[-2]}"'
        assert response.headers["Content-Length"] == str(len(response.data))
        assert "Accept-Encoding" in response.headers.get("Vary", "")
        for header, value in EVERYWHERE.items():
            assert response.headers.get(header) == value, header
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        head = client.head(url, headers={"Accept-Encoding": "identity"})
        assert head.status_code == 200 and head.data == b""
        assert head.headers["Content-Length"] == str(len(response.data))
    if not name.endswith((".js", ".css")):
        assert bodies == {(STATIC / name).read_bytes()}


def test_the_stylesheet_is_served_without_comments_and_keeps_every_rule(
        client: FlaskClient) -> None:
    source = (STATIC / "checkout.css").read_text()
    served = client.get("/static/checkout.css").get_data(as_text=True)
    assert "/*" not in served and len(served) < 0.85 * len(source)
    without_comments = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    # Compared without any white space: the minifier drops what is not needed.
    selectors = {re.sub(r"\s+", "", s) for s in re.findall(r"([^{};]+)\{", without_comments)}
    squeezed = re.sub(r"\s+", "", served)
    assert sorted(s for s in selectors if s not in squeezed) == []


def test_shops_include_embed_js_by_a_stable_url_that_a_fix_reaches_within_minutes(
        client: FlaskClient) -> None:
    response = client.get("/static/embed.js")
    assert response.status_code == 200
    cache = response.headers["Cache-Control"]
    assert "immutable" not in cache
    assert int(re.search(r"max-age=(\d+)", cache)[1]) <= 3600  # type: ignore[index]
    assert "Checkout" in response.get_data(as_text=True)  # what the shop's code calls


@pytest.mark.parametrize("path", [
    "/static/nothing.js", "/static/checkout.0123456789abcdef.mjs", "/static/../pyproject.toml",
    "/static/%2e%2e/pyproject.toml", "/static/..%2fpyproject.toml", "/static/checkout",
    "/static/checkout.0123456789abcde.js", "/static/"])
def test_what_the_folder_does_not_hold_is_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# ---------------------------------------------------------------- gzip


@pytest.mark.parametrize(("accept", "gzipped"), [
    (None, False), ("identity", False), ("gzip", True), ("gzip, deflate, br, zstd", True),
    ("GZIP", True), ("br;q=1.0, gzip;q=0.8, *;q=0.1", True), ("*", True), ("br", False),
    ("deflate", False), ("gzip;q=0", False), ("*, gzip;q=0", False), ("*;q=0", False),
    ("gzip;q=nonsense", False)])
@pytest.mark.parametrize("name", NAMES)
def test_gzip_goes_only_to_clients_that_take_it_and_unpacks_to_the_same_bytes(
        app: Flask, client: FlaskClient, name: str, accept: str | None, gzipped: bool) -> None:
    url = static_url(app, name)
    identity = get(client, url, "identity")
    response = get(client, url, accept)
    assert response.status_code == 200
    assert response.headers.get("Content-Encoding") == ("gzip" if gzipped else None)
    assert "Accept-Encoding" in response.headers["Vary"]  # either answer, one URL
    assert response.headers["Content-Length"] == str(len(response.data))
    assert plain(response) == identity.data
    if gzipped:
        assert len(response.data) < len(identity.data)
        assert response.headers["ETag"] == identity.headers["ETag"][:-1] + '-gzip"'
    else:
        assert response.headers["ETag"] == identity.headers["ETag"]


@pytest.mark.parametrize("accept", ["identity", "gzip"])
def test_an_unchanged_file_revalidates_to_304_in_its_own_encoding(
        app: Flask, client: FlaskClient, accept: str) -> None:
    for url in (static_url(app, "checkout.js"), "/static/embed.js"):
        first = get(client, url, accept)
        again = get(client, url, accept, **{"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""
        assert again.headers["ETag"] == first.headers["ETag"]
        assert again.headers["Cache-Control"] == first.headers["Cache-Control"]
        other = "gzip" if accept == "identity" else "identity"
        # A copy in the other encoding is other bytes: it is sent in full.
        crossed = get(client, url, other, **{"If-None-Match": first.headers["ETag"]})
        assert crossed.status_code == 200 and crossed.data


def test_the_gzip_copies_are_made_when_the_app_is_built_never_per_request(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("gzip.compress called while serving")

    monkeypatch.setattr(assets.gzip, "compress", refuse)
    for name in NAMES:
        response = get(client, static_url(app, name), "gzip")
        assert response.headers["Content-Encoding"] == "gzip"
        assert plain(response) == get(client, static_url(app, name), "identity").data


# ---------------------------------------------------------------- a change is a new URL


def edit(path: Path, text: str) -> None:
    """Append to a file; its size changes, so the change shows even within one mtime tick."""
    path.write_bytes(path.read_bytes() + text.encode())
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))


@pytest.mark.parametrize(("name", "addition"), [
    ("checkout.css", "\n.added { color: red; }\n"),
    ("checkout.js", '\nwindow.added = "a change";\n'),
    ("favicon.svg", "<!-- changed -->\n")])
def test_a_changed_file_gets_a_new_url_and_its_old_url_a_short_cache(
        app: Flask, client: FlaskClient, tmp_path: Path, name: str, addition: str) -> None:
    folder = tmp_path / "static"
    shutil.copytree(STATIC, folder)
    assets.install(app, folder)
    before = static_url(app, name)
    old_body = get(client, before, "identity").data
    edit(folder / name, addition)
    assets.install(app, folder)  # a new process: a deploy
    after = static_url(app, name)
    assert after != before
    new = get(client, after, "identity")
    assert new.headers["Cache-Control"] == FOREVER and new.data != old_body
    served_as = {"checkout.js": b"a change", "checkout.css": b".added{color:red}"}
    assert served_as.get(name, addition.encode()) in new.data
    # A page built before the deploy still gets the file, but no cache keeps it for good.
    stale = get(client, before, "identity")
    assert stale.status_code == 200 and stale.headers["Cache-Control"] == SHORT
    assert stale.data == new.data
    # An unchanged file keeps its URL.
    other = "checkout.css" if name != "checkout.css" else "favicon.svg"
    assets.install(app, STATIC)
    assert static_url(app, other).split(".")[-2] in get(client, static_url(app, other)).headers[
        "ETag"]


def test_in_debug_mode_an_edited_file_is_read_again(app: Flask, tmp_path: Path) -> None:
    folder = tmp_path / "static"
    shutil.copytree(STATIC, folder)
    assets.install(app, folder)
    before = static_url(app, "checkout.css")
    edit(folder / "checkout.css", "\n.debug { color: red; }\n")
    assert static_url(app, "checkout.css") == before  # production: read once per process
    app.debug = True
    after = static_url(app, "checkout.css")
    assert after != before
    assert b".debug" in app.test_client().get(after).data


# ---------------------------------------------------------------- scripts


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_are_served_minified_and_the_minified_form_parses(
        client: FlaskClient, name: str) -> None:
    source = (STATIC / name).read_text()
    served = client.get(f"/static/{name}").get_data(as_text=True)
    assert len(served) < 0.7 * len(source)
    assert "/*" not in served and "\n  " not in served
    assert served.startswith('(function(') and '"use strict"' in served
    es5(served)  # raises if the minifier wrote something that is not a script


@pytest.mark.parametrize(("name", "limit", "gzipped"), [
    ("checkout.js", 8 * 1024, 3 * 1024 + 512), ("embed.js", 4 * 1024, 2 * 1024),
    ("checkout.css", 8 * 1024, 3 * 1024)])
def test_the_page_stays_light(app: Flask, client: FlaskClient, name: str, limit: int,
                              gzipped: int) -> None:
    """Issue 9: a page's script at most 8 KB as the browser parses it. The source outgrew
    that (it renders every state of the page in place, in the customer's language); the
    minified copy it is served as does not."""
    url = static_url(app, name)
    assert len(get(client, url, "identity").data) <= limit
    assert len(get(client, url, "gzip").data) <= gzipped


def test_a_script_the_minifier_cannot_parse_is_served_as_written_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    modern = b"const twice = (x) => x * 2;\n"
    with caplog.at_level(logging.WARNING, logger="checkout.assets"):
        asset = assets.asset_of("modern.js", modern)
    assert asset.body == modern
    assert "static/modern.js is served unminified" in caplog.text


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_never_post_to_any_origin(client: FlaskClient, name: str) -> None:
    for script in (client.get(f"/static/{name}").get_data(as_text=True),
                   (STATIC / name).read_text()):
        assert not re.search(r"postMessage\([^)]*['\"]\*['\"]", script)
        assert "innerHTML" not in script and "eval(" not in script
