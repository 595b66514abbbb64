"""A page's rendering is shared by every process (pagestore.py): the first view anywhere
renders it and stores it; a first view in another process reads it in the one SELECT that
reads the page's state, renders nothing, commits nothing, and sends the very bytes a fresh
rendering would. Only addresses the site makes are stored; old versions go; nothing of one
process (its countdown markers) or of one secret key is served by another."""

from __future__ import annotations

import gzip
import re
from collections import namedtuple
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask, template_rendered
from kit import budgets, kept_rows, renderings
from kit.callbacks import Clock, deposit_body, post
from kit.invoices import ORDER, TestShop, settle
from kit.links import page_of
from kit.live import LiveServer
from kit.renderings import forget, unstore
from sqlalchemy import func, select, update

from checkout import db, merchants
from checkout.models import Merchant, PageRendering
from checkout.web import pagecache, pagestore

LINK = {"client_id": 11, "currency": "BTC", "foreign_id": "store-1", "amount": "0.00123",
        "convert_to": "EUR"}
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def frozen(app: Flask) -> Clock:
    """The site's clock, held still: the countdown reads the same in every view."""
    now = Clock()
    app.config["CLOCK"] = now
    return now


def stored(app: Flask, page: str | None = None) -> list[PageRendering]:
    with app.app_context():
        query = select(PageRendering).order_by(PageRendering.variant)
        if page is not None:
            query = query.where(PageRendering.page_id == page.rsplit("/", 1)[1])
        return list(db.session().scalars(query).all())


def unrendered(app: Flask, page: str) -> str:
    """The page as neither kept here nor stored for all: its next view renders it."""
    renderings.unrendered(app)
    return page


# ---------------------------------------------------------------- the pages, in their states


def deposit_page(app: Flask, _live: LiveServer) -> str:
    settle(app)  # a fresh rate: the page shows a fiat value
    return unrendered(app, page_of(app.test_client(), LINK))


def paid_page(app: Flask, _live: LiveServer) -> str:
    client = app.test_client()
    page = page_of(client, LINK)
    address = client.get(f"{page}/status").get_json()["address"]
    body = deposit_body(5200, "confirmed", address=address, foreign_id=LINK["foreign_id"],
                        amount="0.00123")
    assert post(client, body).status_code == 200
    assert client.get(f"{page}/status").get_json()["phase"] == "paid"
    return unrendered(app, page)


def picker_page(app: Flask, live: LiveServer) -> str:
    settle(app)  # the rates the picker offers
    created = TestShop(live.url).create(ORDER)
    assert created.status_code == 200, created.text
    return "/p/" + str(created.json()["data"]["url"]).rsplit("/", 1)[1]


def waiting_page(app: Flask, live: LiveServer) -> str:
    page = picker_page(app, live)
    html = requests.get(live.url + page, timeout=30).text
    token = TOKEN.search(html)
    assert token
    picked = requests.post(f"{live.url}{page}/pick", allow_redirects=False, timeout=30,
                           data={"csrf_token": token[1], "currency": "BTC"})
    assert picked.status_code == 303
    return unrendered(app, page)


def expired_page(app: Flask, live: LiveServer) -> str:
    settle(app)
    created = TestShop(live.url).create(ORDER, timer=True)
    assert created.status_code == 200, created.text
    later = Clock()
    later.advance(timedelta(minutes=16))
    app.config["CLOCK"] = later
    try:
        settle(app)  # the worker expires it
    finally:
        app.config.pop("CLOCK")
    page = "/p/" + str(created.json()["data"]["url"]).rsplit("/", 1)[1]
    status = app.test_client().get(f"{page}/status").get_json()
    assert (status["status"], status["reason"]) == ("failed", "expired")
    return page


STATES: dict[str, Callable[[Flask, LiveServer], str]] = {
    "deposit": deposit_page, "paid": paid_page, "invoice picker": picker_page,
    "invoice waiting": waiting_page, "expired": expired_page,
}
ASKING: list[dict[str, Any]] = [
    {}, {"headers": {"Accept-Language": "de-AT,de;q=0.9"}}, {"query_string": "lang=ar"},
]


@pytest.mark.parametrize("state", list(STATES))
def test_a_stored_rendering_is_what_a_fresh_rendering_sends_to_the_byte(
        app: Flask, merchant: Merchant, live_server: LiveServer, renders: list[str],
        state: str) -> None:
    page = STATES[state](app, live_server)
    client = app.test_client()
    app.config["CLOCK"] = Clock()  # the countdown reads the same in every view
    for asking in ASKING:
        del renders[:]
        first = client.get(page, **asking)  # rendered here, stored for every process
        assert first.status_code == 200 and len(renders) == 1
        forget(app)
        from_store = client.get(page, **asking)
        assert len(renders) == 1, "the stored one is served, not rendered"
        unstore(app)
        forget(app)
        fresh = client.get(page, **asking)
        assert len(renders) == 2
        assert from_store.get_data() == fresh.get_data() == first.get_data()
        for name in ("Content-Security-Policy", "Cache-Control", "Vary"):
            assert from_store.headers.get(name) == fresh.headers.get(name)
        gzipped = {"Accept-Encoding": "gzip", **asking.get("headers", {})}
        forget(app)
        packed = client.get(page, **{**asking, "headers": gzipped})
        assert packed.headers["Content-Encoding"] == "gzip" and len(renders) == 2
        assert gzip.decompress(packed.get_data()) == fresh.get_data()


# ---------------------------------------------------------------- what a first view costs


@pytest.fixture
def page(app: Flask, merchant: Merchant, live_server: LiveServer) -> str:
    return deposit_page(app, live_server)


def test_a_first_view_in_a_process_of_a_page_rendered_elsewhere_is_one_select(
        app: Flask, page: str, frozen: Clock, renders: list[str]) -> None:
    keeps = kept_rows.listening(app) is not None
    client = app.test_client()
    rendered = client.get(page).get_data()  # another process's first view
    forget(app)
    with budgets.spent(app) as spent:
        first = client.get(page)
    assert first.status_code == 200 and first.get_data() == rendered
    assert len(spent.queries) == 1 and spent.queries[0].lstrip().upper().startswith(
        "SELECT"), spent
    assert spent.commits == 0, spent
    assert renders == ["deposit.html"]  # the one rendering, elsewhere
    # And a view after it reads the page's state without the stored HTML again; on
    # PostgreSQL this process keeps that state (web/pagerows.py) and reads nothing.
    with budgets.spent(app) as spent:
        client.get(page)
    assert len(spent.queries) == (0 if keeps else 1) and spent.commits == 0


def test_a_first_view_of_a_page_stored_elsewhere_compresses_nothing(
        app: Flask, page: str, frozen: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process that renders a state stores its gzip parts beside its HTML: another
    process's first view sends them as they are, compressing none of the page again."""
    client = app.test_client()
    gzipped = {"Accept-Encoding": "gzip"}
    made = client.get(page, headers=gzipped)  # another process's first view
    assert made.headers["Content-Encoding"] == "gzip"
    packs: list[tuple[bytes | str, ...]] = []
    real = pagecache.packed_parts

    def counted(pieces: tuple[bytes | str, ...],
                shown: pagecache.Countdown) -> tuple[bytes | str, ...]:
        packs.append(pieces)
        return real(pieces, shown)

    monkeypatch.setattr(pagecache, "packed_parts", counted)
    forget(app)
    first = client.get(page, headers=gzipped)
    assert first.get_data() == made.get_data()
    assert packs == []
    # Parts that cannot be read are packed here instead: the same bytes, compressed once.
    with app.app_context(), db.transaction() as session:
        session.execute(update(PageRendering).values(packed=b"\x01\x00"))
    forget(app)
    assert client.get(page, headers=gzipped).get_data() == made.get_data()
    assert len(packs) == 1


def test_a_rendering_whose_text_holds_the_stored_markers_lead_or_a_nul_is_not_stored() -> None:
    markers = pagecache.MARKERS
    for text in (f"a{pagestore.LEAD}b", "a\0b"):
        rendered = pagecache.Rendered.of_html(f"<p>{text}{markers.time}</p>", None, None, None)
        assert pagestore.neutral(rendered) is None, text
    fine = pagecache.Rendered.of_html(f"<p>é{markers.time}</p>", None, None, None)
    assert pagestore.neutral(fine) == f"<p>é{pagestore.STORED.time}</p>"


def test_a_stored_rendering_holding_a_stray_marker_lead_is_rendered_anew(
        app: Flask, page: str, frozen: Clock, renders: list[str]) -> None:
    client = app.test_client()
    first = client.get(page).get_data()
    with app.app_context(), db.transaction() as session:
        session.execute(update(PageRendering).values(
            html=PageRendering.html + pagestore.LEAD + "x"))
    forget(app)
    assert client.get(page).get_data() == first
    assert renders == ["deposit.html", "deposit.html"]


def test_a_process_with_another_key_never_serves_what_this_one_stored(
        make_app: Any, app: Flask, page: str, frozen: Clock) -> None:
    client = app.test_client()
    html = client.get(page).get_data(as_text=True)
    other = make_app(SECRET_KEY="another-secret-key")
    other.config["CLOCK"] = frozen
    seen: list[str] = []
    template_rendered.connect(lambda _s, template, **_e: seen.append(template.name), other,
                              weak=False)
    theirs = other.test_client().get(page).get_data(as_text=True)
    assert seen == ["deposit.html"], "rendered anew under its own key"
    # Its forms carry tokens its own key verifies, not this process's.
    tokens = TOKEN.findall(theirs)
    assert tokens and not set(tokens) & set(TOKEN.findall(html))


def test_another_processs_markers_are_never_served(
        app: Flask, page: str, frozen: Clock, renders: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = app.test_client()
    first = client.get(page).get_data()
    rows = stored(app, page)
    assert len(rows) == 1 and pagecache.MARKERS.time not in rows[0].html
    assert pagestore.STORED.time in rows[0].html
    # Another process: its own markers.
    other = pagecache.Countdown("\x00otheru", "\x00otherh", "\x00othert")
    monkeypatch.setattr(pagecache, "MARKERS", other)
    forget(app)
    again = client.get(page, headers={"Accept-Encoding": "gzip"})
    assert gzip.decompress(again.get_data()) == first and renders == ["deposit.html"]


# ---------------------------------------------------------------- bounds


def test_only_addresses_the_site_makes_are_stored(
        app: Flask, page: str, renders: list[str]) -> None:
    client = app.test_client()
    for query in ("junk=1", "lang=de-AT", "lang=xx", "lang=de&lang=fr", "lang=de&x=1",
                  "lang=pt_BR"):
        assert client.get(f"{page}?{query}").status_code == 200
    assert stored(app) == []
    client.get(f"{page}?lang=pt-BR")
    client.get(page, headers={"Accept-Language": "fr"})
    client.get(page)
    assert [row.variant for row in stored(app)] == ["|*|", "|fr|", "|pt_BR|pt-BR"]


def test_a_new_state_replaces_the_old_ones_rendering(
        app: Flask, page: str, renders: list[str]) -> None:
    client = app.test_client()
    client.get(page)
    client.get(page, query_string="lang=de")
    before = {row.variant: row.model_version for row in stored(app)}
    address = client.get(f"{page}/status").get_json()["address"]
    body = deposit_body(5100, "not_confirmed", address=address, foreign_id=LINK["foreign_id"],
                        amount="0.00123")
    assert post(client, body).status_code == 200
    forget(app)
    after = client.get(page).get_data(as_text=True)
    assert 'data-phase="confirming"' in after
    rows = stored(app)
    assert [row.variant for row in rows] == ["|*|"], "the old version's rows are gone"
    assert rows[0].model_version > before["|*|"]


def test_a_merchants_edit_is_never_served_from_an_old_rendering(
        app: Flask, page: str, renders: list[str]) -> None:
    client = app.test_client()
    client.get(page)
    with app.app_context():
        merchants.edit(11, merchants.MerchantEdit(language="de"))
    forget(app)
    assert '<html lang="de"' in client.get(page).get_data(as_text=True)
    assert len(renders) == 2 and len(stored(app)) == 1


def test_a_slower_twin_of_an_older_state_never_replaces_a_newer_one(
        app: Flask, page: str) -> None:
    client = app.test_client()
    client.get(page)
    row = stored(app)[0]
    with app.test_request_context():
        state = pagecache.state_of(db.session(), row.page_id)
        rendered = pagecache.Rendered.of_html(pagecache.MARKERS.time + "twin", None, None, None)
        assert pagestore.store(db.session(), state, row.page_id, row.variant, rendered)
        fields = namedtuple("State", state._fields)(*state)  # noqa: PYI024
        older = fields._replace(model_version=state.model_version - 1)
        assert pagestore.store(db.session(), older, row.page_id, row.variant,
                               pagecache.Rendered.of_html("older", None, None, None))
    rows = stored(app)
    assert len(rows) == 1 and rows[0].html == pagestore.STORED.time + "twin"


def test_the_worker_prunes_renderings_grown_old(
        app: Flask, page: str) -> None:
    client = app.test_client()
    client.get(page)
    assert len(stored(app)) == 1
    later = Clock()
    later.advance(timedelta(seconds=pagestore.DEFAULT_MAX_AGE - 60))
    app.config["CLOCK"] = later
    with app.app_context():
        assert pagestore.prune() == 0
    later.advance(timedelta(seconds=120))
    with app.app_context():
        assert pagestore.prune() == 1
        assert db.session().scalar(select(func.count()).select_from(PageRendering)) == 0


# ---------------------------------------------------------------- the render itself


def test_a_first_rendering_anywhere_reads_the_page_once_more_and_stores_it_in_one_commit(
        app: Flask, page: str, frozen: Clock) -> None:
    client = app.test_client()
    with budgets.spent(app) as spent:
        assert client.get(page).status_code == 200
    selects = [q for q in spent.queries if q.lstrip().upper().startswith("SELECT")]
    # The front's state (and stored rendering: none yet), then the page with its merchant.
    assert len(selects) == 2, spent
    assert [q.split()[0].upper() for q in spent.writes] == ["INSERT", "DELETE"], spent
    assert spent.commits == 1, spent


@pytest.mark.parametrize("language", ["en", "de", "ar", "ja"])
def test_texts_looked_up_once_per_render_read_as_the_app_wide_lookups_do(
        app: Flask, page: str, frozen: Clock, language: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from checkout.pagekinds import deposit, present
    from checkout.web import language as languages

    client = app.test_client()
    asking = {"query_string": f"lang={language}"}
    bound = client.get(page, **asking).get_data()
    monkeypatch.setattr(languages, "bound_gettext", dict)
    for module, name in ((deposit, "status_labels"), (present, "transaction_labels"),
                         (present, "support_labels")):
        monkeypatch.setattr(module, name, getattr(module, name).__wrapped__)
    forget(app)
    unstore(app)
    assert client.get(page, **asking).get_data() == bound
    if language == "en":  # a plural text too
        assert b"This page checks for your payment every" in bound


def test_label_tables_follow_the_language_and_are_the_callers_to_change(app: Flask) -> None:
    from flask_babel import force_locale

    from checkout.pagekinds import present

    with app.test_request_context("/"):
        english = present.support_labels()
        english["page"] = "changed by a caller"
        assert present.support_labels()["page"] != "changed by a caller"
        with force_locale("de"):
            german = present.support_labels()
            assert german == present.support_labels.__wrapped__()
        assert german != present.support_labels()


def test_a_page_whose_text_could_spell_a_stored_marker_is_served_and_never_stored(
        app: Flask, page: str, frozen: Clock, renders: list[str]) -> None:
    from checkout import branding

    with app.app_context():
        merchants.edit(11, merchants.MerchantEdit(brand=branding.BrandEdit(
            display_name=f"Corner {pagestore.STORED.time} Store")))
    client = app.test_client()
    first = client.get(page)
    assert first.status_code == 200 and pagestore.STORED.time in first.get_data(as_text=True)
    assert stored(app) == []
    forget(app)
    assert client.get(page).get_data() == first.get_data() and len(renders) == 2


# ---------------------------------------------------------------- rendered ahead


def click(client: Any, headers: dict[str, str], lang: str | None = None,
          **changes: Any) -> Any:
    from kit.site import MERCHANT_SECRET

    from checkout import terminal

    query = terminal.encode_link({**LINK, **changes}, MERCHANT_SECRET)
    if lang is not None:
        query["lang"] = lang
    response = client.get("/terminal", query_string=query, headers=headers)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response


@pytest.mark.parametrize(("headers", "lang"), [
    ({}, None), ({"Accept-Language": "ja,en;q=0.5"}, None), ({"Accept-Language": "de"}, "ar"),
])
def test_a_first_click_renders_its_page_ahead_so_the_first_view_is_one_select(
        app: Flask, merchant: Merchant, live_server: LiveServer, frozen: Clock,
        renders: list[str], headers: dict[str, str], lang: str | None) -> None:
    settle(app)
    client = app.test_client()
    location = click(client, headers, lang).headers["Location"]
    assert renders == ["deposit.html"], "rendered in the click"
    forget(app)  # the view may reach any process
    with budgets.spent(app) as spent:
        first = client.get(location, headers=headers)
    assert first.status_code == 200 and renders == ["deposit.html"]
    assert len(spent.queries) == 1 and spent.commits == 0, spent
    unstore(app)
    forget(app)
    assert client.get(location, headers=headers).get_data() == first.get_data()
    assert len(renders) == 2


def test_a_currency_pick_renders_the_waiting_page_ahead(
        app: Flask, merchant: Merchant, live_server: LiveServer, frozen: Clock,
        renders: list[str]) -> None:
    settle(app)
    created = TestShop(live_server.url).create(ORDER)
    page = "/p/" + str(created.json()["data"]["url"]).rsplit("/", 1)[1]
    client = app.test_client()
    token = TOKEN.search(client.get(page, query_string="lang=fr").get_data(as_text=True))
    assert token
    picked = client.post(f"{page}/pick", query_string="lang=fr",
                         data={"csrf_token": token[1], "currency": "BTC"})
    assert picked.status_code == 303 and renders == ["invoice.html", "invoice.html"]
    forget(app)
    with budgets.spent(app) as spent:
        waiting = client.get(picked.headers["Location"])
    assert len(spent.queries) == 1 and spent.commits == 0 and len(renders) == 2, spent
    assert 'data-field="countdown-time"' in waiting.get_data(as_text=True)
    unrendered(app, page)
    assert client.get(picked.headers["Location"]).get_data() == waiting.get_data()


def test_rendering_ahead_leaves_the_clicks_own_answer_as_it_was(
        app: Flask, merchant: Merchant, live_server: LiveServer, frozen: Clock,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from checkout.web import customer

    client = app.test_client()
    framed = {"Accept-Language": "de"}
    ahead = click(client, framed, "fr", is_iframe=True, foreign_id="framed-ahead")
    monkeypatch.setattr(customer, "render_ahead", lambda _page_id: None)
    plain = click(client, framed, "fr", is_iframe=True, foreign_id="framed-plain")

    def headers(response: Any) -> dict[str, str]:
        return {k: v for k, v in response.headers.items() if k not in ("Date", "Location")}

    assert headers(ahead) == headers(plain)
    assert ahead.headers["Location"].endswith("?lang=fr")
    # A rendering that fails is logged; the customer is sent on all the same.
    monkeypatch.undo()

    def broken(*_args: Any) -> None:
        raise RuntimeError("rendering broke")

    monkeypatch.setattr(customer, "page_rendering", broken)
    assert click(client, {}, foreign_id="broken-ahead").status_code == 303
    assert "could not be rendered ahead" in caplog.text


def test_a_script_root_the_site_is_not_served_under_is_never_stored(
        app: Flask, page: str, renders: list[str]) -> None:
    client = app.test_client()
    for prefix in ("/a", "/b"):
        response = client.get(page, environ_overrides={"SCRIPT_NAME": prefix})
        assert response.status_code == 200
    assert stored(app) == [] and len(renders) == 2


def test_a_process_whose_copy_was_pushed_out_reads_the_stored_one_again(
        make_app: Any, merchant: Merchant, frozen: Clock) -> None:
    from kit.live import start_live_server

    app = make_app(PAGE_CACHE_SIZE=1)
    app.config["CLOCK"] = frozen
    live = start_live_server(app)
    try:
        client = app.test_client()
        first, second = (page_of(client, {**LINK, "foreign_id": f"pushed-{n}"})
                         for n in range(2))
        seen: list[str] = []
        template_rendered.connect(lambda _s, template, **_e: seen.append(template.name), app,
                                  weak=False)
        for path in (first, second, first):  # each click rendered its page ahead
            with budgets.spent(app) as spent:
                assert client.get(path).status_code == 200
            assert len(spent.queries) == 1 and spent.commits == 0, spent
        assert seen == []
    finally:
        live.server.shutdown()
        live.server.server_close()


def test_two_real_processes_serve_the_one_rendering_the_first_made(
        database_url: str, tmp_path: Any, app: Flask, merchant: Merchant) -> None:
    """Two gunicorn instances (processes of their own, each with its own markers): a click
    on one renders the page ahead and stores it; the other's first view is that rendering,
    not one of its own."""
    from kit.gunicorn import serving
    from kit.site import MERCHANT_SECRET

    from checkout import terminal

    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with serving(database_url, tmp_path / "one") as one, \
            serving(database_url, tmp_path / "two") as two:
        clicked = requests.get(f"{one}/terminal", allow_redirects=False, timeout=30,
                               params=terminal.encode_link(LINK, MERCHANT_SECRET))
        assert clicked.status_code == 303, clicked.text[:300]
        location = clicked.headers["Location"]
        made = stored(app)
        assert len(made) == 1
        theirs = requests.get(two + location, timeout=30)
        mine = requests.get(one + location, timeout=30)
        assert theirs.status_code == mine.status_code == 200
        assert theirs.content == mine.content
        assert pagestore.LEAD.encode() not in theirs.content and b"\0" not in theirs.content
        assert [row.stored_at for row in stored(app)] == [made[0].stored_at], \
            "the second process rendered nothing of its own"


def test_a_repeated_click_renders_nothing_when_its_page_is_made(
        app: Flask, merchant: Merchant, live_server: LiveServer, frozen: Clock,
        renders: list[str]) -> None:
    client = app.test_client()
    click(client, {})
    assert renders == ["deposit.html"]
    click(client, {})  # kept in this process
    forget(app)
    with budgets.spent(app) as spent:
        click(client, {})  # stored by another
    assert renders == ["deposit.html"]
    assert not [q for q in spent.queries if "page_renderings.html" in q], spent
