"""What the page and its poll weigh on the wire: a poll that brings nothing new is a bodiless
304 all through a countdown (its ETag is the model's, not the ticking seconds'), and the
page's HTML goes gzipped to clients that take it, the same bytes once unpacked, compressed
once per rendering, not per request."""

from __future__ import annotations

import gzip
import re
import zlib
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from kit.invoices import ORDER, TestShop, settle
from kit.live import LiveServer
from kit.renderings import unrendered
from kit.site import flask_requests
from werkzeug.test import Client

from checkout import clock
from checkout.models import Merchant
from checkout.web import front, pagecache

COUNTDOWN = re.compile(r'data-field="countdown-time" dir="ltr">(\d+:\d\d)<')


@pytest.fixture
def quoted(app: Flask, merchant: Merchant, live_server: LiveServer) -> str:
    """An invoice page with its currency picked: a fixed rate, so a countdown."""
    settle(app)
    created = TestShop(live_server.url).create(ORDER)
    assert created.status_code == 200, created.text
    url = str(created.json()["data"]["url"])
    html = requests.get(url, timeout=10).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert token
    picked = requests.post(f"{url}/pick", data={"csrf_token": token[1], "currency": "BTC"},
                           allow_redirects=False, timeout=30)
    assert picked.status_code == 303
    unrendered(app)  # the pick rendered it ahead: these tests meet Flask's rendering first
    return "/p/" + url.rsplit("/", 1)[1]


def test_while_the_countdown_runs_an_unchanged_model_is_still_a_304(
        app: Flask, quoted: str) -> None:
    """The seconds left change every second; they are the page's to tick, not a change: an
    ETag over them made every poll of a running countdown a full answer."""
    client = app.test_client()
    later = [clock.system_now()]
    app.config["CLOCK"] = lambda: later[0]
    first = client.get(f"{quoted}/status")
    left = first.get_json()["seconds_left"]
    assert left > 60
    later[0] += timedelta(seconds=7)
    again = client.get(f"{quoted}/status", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    # Asked without the tag, the answer is the model of this moment, under the same tag.
    full = client.get(f"{quoted}/status")
    assert full.headers["ETag"] == first.headers["ETag"]
    assert full.get_json()["seconds_left"] == left - 7
    # The Flask view behind the front layer tags alike.
    assert isinstance(app.wsgi_app, front.Front)
    behind = Client(app.wsgi_app.inner).get(f"{quoted}/status",
                                            headers={"If-None-Match": first.headers["ETag"]})
    assert behind.status_code == 304


# ---------------------------------------------------------------- the page, gzipped


def unpacked(response: Any) -> bytes:
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Content-Length"] == str(len(response.data))
    # Strictly: one gzip member, its checksum and size checked, nothing after it.
    unpacker = zlib.decompressobj(16 + zlib.MAX_WBITS)
    plain = unpacker.decompress(response.data) + unpacker.flush()
    assert unpacker.eof and not unpacker.unused_data
    assert gzip.decompress(response.data) == plain
    return plain


@pytest.fixture
def frozen(app: Flask) -> list[datetime]:
    """The site's clock, moved by the test."""
    moment = [clock.system_now()]
    app.config["CLOCK"] = lambda: moment[0]
    return moment


@pytest.mark.parametrize("accept", ["gzip", "gzip, deflate, br, zstd", "br;q=1, gzip;q=0.8"])
def test_the_page_goes_gzipped_to_clients_that_take_it_the_same_bytes_unpacked(
        app: Flask, quoted: str, frozen: list[datetime], accept: str) -> None:
    client = app.test_client()
    handled = flask_requests(app)
    first = client.get(quoted, headers={"Accept-Encoding": accept})  # rendered by Flask
    assert handled == [quoted]
    plain = client.get(quoted, headers={"Accept-Encoding": "identity"})  # kept, in front
    again = client.get(quoted, headers={"Accept-Encoding": accept})
    assert handled == [quoted]
    assert plain.headers.get("Content-Encoding") is None
    for response in (first, again):
        assert response.status_code == 200 and response.mimetype == "text/html"
        assert unpacked(response) == plain.data
        # Compressed in parts, about as small as compressed whole.
        whole = len(gzip.compress(plain.data, 6))
        assert len(response.data) < 1.1 * whole, (len(response.data), whole)
        assert "Accept-Encoding" in response.headers["Vary"]
    assert "Accept-Encoding" in plain.headers["Vary"]
    assert b"countdown-time" in plain.data
    head = client.head(quoted, headers={"Accept-Encoding": accept})
    assert head.data == b"" and head.headers["Content-Length"] == str(len(again.data))


@pytest.mark.parametrize("accept", [None, "identity", "br", "gzip;q=0", "*, gzip;q=0"])
def test_clients_that_do_not_take_gzip_get_the_page_as_it_is(
        app: Flask, quoted: str, accept: str | None) -> None:
    headers = {} if accept is None else {"Accept-Encoding": accept}
    for _ in range(2):  # rendered by Flask, then kept and served in front of it
        response = app.test_client().get(quoted, headers=headers)
        assert response.status_code == 200
        assert response.headers.get("Content-Encoding") is None
        assert response.data.startswith(b"<!doctype html>")


def test_the_page_is_compressed_once_per_rendering_and_shows_the_moments_countdown(
        app: Flask, quoted: str, frozen: list[datetime],
        monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []
    compressobj = zlib.compressobj

    def counted(*args: Any) -> Any:
        made.append(1)
        return compressobj(*args)

    monkeypatch.setattr(pagecache.zlib, "compressobj", counted)
    client = app.test_client()
    shown = set()
    for step in range(5):
        frozen[0] += timedelta(seconds=61 * step)
        packed = client.get(quoted, headers={"Accept-Encoding": "gzip"})
        plain = client.get(quoted, headers={"Accept-Encoding": "identity"})
        assert unpacked(packed) == plain.data
        time_shown = COUNTDOWN.search(plain.get_data(as_text=True))
        assert time_shown
        shown.add(time_shown[1])
    # Five moments, one rendering, one compression per length of the countdown's time
    # ("14:59" and "9:59"): the page after the countdown refers back across it.
    assert len(made) == len({len(time) for time in shown}) == 2
    assert len(shown) == 5  # each answer has the countdown of its moment


# Text as a page holds it (any character but NUL), before, between and after the markers.
_TEXT = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
                max_size=3000)


@settings(max_examples=60, deadline=None)
@given(before=_TEXT, inside=_TEXT, after=_TEXT, deadline=st.integers(0, 100_000),
       moments=st.lists(st.integers(0, 120_000), min_size=1, max_size=6))
def test_every_moments_gzip_unpacks_to_that_moments_page(
        before: str, inside: str, after: str, deadline: int, moments: list[int]) -> None:
    """The packer keeps its history across the countdown: whatever the text around it and
    whatever the countdown's length, each serving unpacks to exactly its own page."""
    markers = pagecache.MARKERS
    html = (f'{before}<p class="countdown{markers.urgent}"{markers.hidden}>{inside}'
            f"<span>{markers.time}</span>{after}")
    rendered = pagecache.Rendered.of_html(html, deadline=deadline, fiat_at=None,
                                          frame_ancestors=None)
    for now in moments:
        assert gzip.decompress(rendered.serve_gzipped(now)) == rendered.serve(now)


@settings(max_examples=60, deadline=None)
@given(before=_TEXT, inside=_TEXT, after=_TEXT, deadline=st.integers(0, 100_000),
       now=st.integers(0, 120_000), shown=st.lists(st.sampled_from(("urgent", "hidden", "time")),
                                                    max_size=6))
def test_a_rendering_serves_its_html_with_the_moments_countdown_in_the_markers_places(
        before: str, inside: str, after: str, deadline: int, now: int,
        shown: list[str]) -> None:
    """Cut once at the markers (in any order, any number of them, side by side), a rendering
    serves exactly what replacing each marker in its HTML by the moment's text would."""
    markers = pagecache.MARKERS
    html = before + "".join(getattr(markers, name) + inside for name in shown) + after
    rendered = pagecache.Rendered.of_html(html, deadline=deadline, fiat_at=None,
                                          frame_ancestors=None)
    countdown = rendered.countdown(now)
    expected = html
    for name in ("urgent", "hidden", "time"):
        expected = expected.replace(getattr(markers, name), getattr(countdown, name))
    assert rendered.serve(now) == expected.encode()
    assert rendered.fields == shown


def test_a_text_holding_a_markers_lead_before_no_marker_is_not_cut() -> None:
    markers = pagecache.Countdown("\ufdd0u", "\ufdd0h", "\ufdd0t")
    assert pagecache.pieces_of("a\ufdd0tb\ufdd0uc".encode(), markers) == (
        b"a", "time", b"b", "urgent", b"c")
    assert pagecache.pieces_of("\ufdd0h".encode(), markers) == (b"", "hidden", b"")
    for stray in ("a\ufdd0xb", "a\ufdd0", "\ufdd0\ufdd0u", "\ufdd0é"):
        assert pagecache.pieces_of(stray.encode(), markers) is None, stray


def test_a_page_holding_a_nul_is_packed_without_history_across_the_countdown() -> None:
    """Its NUL could be referred back to from after the countdown, where the client's
    history holds the countdown's text: such a page is packed with the history reset at each
    marker, and each moment's gzip still unpacks to that moment's page."""
    markers = pagecache.MARKERS
    html = f"abcdefgh\0{markers.time}abcdefgh abcdefgh{markers.urgent}\0\0 abcdefgh"
    rendered = pagecache.Rendered.of_html(html, deadline=10_000, fiat_at=None,
                                          frame_ancestors=None)
    for now in (0, 9_400, 9_941, 10_000, 20_000):  # "166:40", "10:00", "0:59", "0:00"
        assert gzip.decompress(rendered.serve_gzipped(now)) == rendered.serve(now)


# ---------------------------------------------------------------- packed parts for other processes


@settings(max_examples=40, deadline=None)
@given(before=_TEXT, after=_TEXT, deadline=st.integers(0, 100_000),
       stored_at=st.integers(0, 120_000), now=st.integers(0, 120_000))
def test_parts_packed_in_one_process_serve_another_to_the_byte(
        before: str, after: str, deadline: int, stored_at: int, now: int) -> None:
    """The parts a process stores with its rendering (pagestore.py) are taken by another,
    whose gzip then unpacks to its own moment's page, whatever the countdown reads then."""
    markers = pagecache.MARKERS
    html = f"{before}<p{markers.hidden}>{markers.time}{markers.urgent}</p>{after}"
    made = pagecache.Rendered.of_html(html, deadline=deadline, fiat_at=None,
                                      frame_ancestors=None)
    taken = pagecache.Rendered.of_html(html, deadline=deadline, fiat_at=None,
                                       frame_ancestors=None)
    taken.take_packed(made.packed_blob(stored_at))
    taken.unpack_offered()
    assert len(taken.packs) == 1
    assert taken.serve_gzipped(now) == made.serve_gzipped(now)
    assert gzip.decompress(taken.serve_gzipped(now)) == taken.serve(now)


def test_a_damaged_or_foreign_blob_of_parts_is_not_taken() -> None:
    markers = pagecache.MARKERS
    html = f"<p{markers.hidden}>{markers.time}</p><b>{markers.urgent}</b>"
    made = pagecache.Rendered.of_html(html, deadline=100, fiat_at=None, frame_ancestors=None)
    blob = made.packed_blob(0)
    other = pagecache.Rendered.of_html(f"<p{markers.hidden}>{markers.time}</p>", deadline=100,
                               fiat_at=None, frame_ancestors=None)
    lengths, parts = pagecache.parts_of_blob(blob) or ((), ())
    damaged = [blob[:-1], blob[:3], b"", b"\x02" + blob[1:], blob + b"\x07",
               blob[:7] + b"\x09" + blob[8:],
               pagecache.blob_of_parts(lengths, parts[:-1]),  # cut short at a part's end
               pagecache.blob_of_parts(lengths, (*parts[:-1], parts[1], parts[-1]))]
    for wrong in damaged:
        taken = pagecache.Rendered.of_html(html, deadline=100, fiat_at=None, frame_ancestors=None)
        taken.take_packed(wrong)
        taken.unpack_offered()
        assert taken.packs == {}, wrong
        assert gzip.decompress(taken.serve_gzipped(0)) == taken.serve(0)
    other.take_packed(blob)  # parts of another page's markers
    other.unpack_offered()
    assert other.packs == {}
    made.take_packed(None)
    assert gzip.decompress(made.serve_gzipped(0)) == made.serve(0)


def test_views_within_one_second_send_the_bytes_made_for_the_first() -> None:
    """A kept rendering is served again as made for the last view while its countdown reads
    the same; the next second's view is made anew, in each encoding."""
    markers = pagecache.MARKERS
    html = f"<p{markers.hidden}><b>{markers.time}</b>{markers.urgent}</p>é"
    rendered = pagecache.Rendered.of_html(html, deadline=1000, fiat_at=None, frame_ancestors=None)
    for takes_gzip in (False, True):
        first, _ = rendered.encoded(400, takes_gzip)
        again, headers = rendered.encoded(400, takes_gzip)
        later, _ = rendered.encoded(401, takes_gzip)
        assert again is first
        assert ("Content-Encoding", "gzip") in headers if takes_gzip else len(headers) == 1
        for body, now in ((first, 400), (later, 401)):
            plain = gzip.decompress(body) if takes_gzip else body
            assert plain == rendered.serve(now)
        assert later != first
    still = pagecache.Rendered.of_html(html, deadline=None, fiat_at=None, frame_ancestors=None)
    assert still.encoded(5, False)[0] is still.encoded(99_999, False)[0]
