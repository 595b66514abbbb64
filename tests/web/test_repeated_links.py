"""A terminal link clicked again goes to the page its first click opened, for one SELECT (the
page by merchant and link digest, with the merchants' version), one HMAC, no commit and no
processor call; in front of Flask (web/link_front.py) and in the Flask route alike, with the
same answer to the byte. The front makes the HMAC once per link and merchants' version.
Anything unusual is Flask's to answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from kit import budgets, kept_rows
from kit.deposits import BTC_ADDRESS, LINK, link_query, open_link
from kit.gunicorn import serving
from kit.live import wait_until
from kit.site import MERCHANT_KEY, MERCHANT_SECRET, flask_requests, layer_of
from sqlalchemy import update
from werkzeug.test import Client

from checkout import db, merchants
from checkout.models import DepositAddress, Merchant, MerchantsVersion, Page
from checkout.pagekinds import deposit
from checkout.services import opening
from checkout.web import link_front, pagerows

QUERY = link_query(LINK)
CLICKS = 16  # spread over the workers (new connections each)


@pytest.fixture
def opened(app: Flask, merchant: Merchant, address: DepositAddress, fresh_rate: None) -> str:
    """The page the link's first click opened."""
    return open_link(app.test_client())


def front_of(app: Flask) -> link_front.LinkFront:
    return layer_of(app, link_front.LinkFront)


def flask_route(app: Flask) -> Client:
    """The app without the link front: the Flask route answers every link."""
    return Client(front_of(app).inner)


def cancel(app: Flask, page: str) -> None:
    """The page goes final in a way that lets its link go (cancelled, no reason)."""
    with app.app_context(), db.transaction() as s:
        s.execute(update(Page).where(Page.id == page.rsplit("/", 1)[1])
                  .values(status=deposit.CANCELLED, reason=None))


@pytest.mark.parametrize("way", ["front", "flask"])
def test_a_link_clicked_again_costs_one_select_one_hmac_no_commit_no_processor_call(
        app: Flask, opened: str, way: str) -> None:
    client = Client(app) if way == "front" else flask_route(app)
    handled = flask_requests(app)
    for click in range(3):
        with budgets.spent(app) as spent:
            response = client.get("/terminal", query_string=QUERY)
        assert response.status_code == 303
        assert response.headers["Location"] == opened
        assert len(spent.queries) <= 1, str(spent)
        assert spent.commits == 0, str(spent)
        # The front verified this very link at this version already after its first click.
        assert spent.hmacs == (0 if way == "front" and click else 1), str(spent)
        assert spent.processor_calls == [], str(spent)
    # The front answered its clicks itself; the route's went through Flask.
    assert handled == ([] if way == "front" else ["/terminal"] * 3)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", ["/terminal", "/"])
@pytest.mark.parametrize("iframe", [False, True])
def test_the_front_answers_as_the_flask_route_to_the_byte(
        app: Flask, merchant: Merchant, address: DepositAddress, fresh_rate: None,
        method: str, path: str, iframe: bool) -> None:
    query = link_query({**LINK, "is_iframe": iframe})
    first = app.test_client().get(path, query_string=query)
    assert first.status_code == 303
    handled = flask_requests(app)
    front = Client(app).open(path, method=method, query_string=query)
    assert handled == []  # answered in front of Flask
    route = flask_route(app).open(path, method=method, query_string=query)
    assert handled == [path]
    assert front.status == route.status == "303 SEE OTHER"
    assert front.headers["Location"] == first.headers["Location"]
    assert list(front.headers.items()) == list(route.headers.items())
    assert front.get_data() == route.get_data()


def kept_link(app: Flask, opened: str) -> pagerows.PageRows:
    """The link clicked once more with the process listening for page notices: its row is
    kept from then on."""
    rows = kept_rows.listening(app)
    if rows is None:
        pytest.skip("nothing is kept of a database in memory")
    assert open_link(app.test_client()) == opened
    return rows


@contextmanager
def notice_heard(rows: pagerows.PageRows | None) -> Iterator[None]:
    """Around another process's change: returns once this process has heard of it. On
    PostgreSQL the notice comes from the server after the COMMIT, and nothing orders its
    arrival before this test's next request (README, "Pages kept per process"); on SQLite
    the change log is read before a kept row is served, so it is heard at once. Nothing to
    hear where nothing is kept (a database in memory)."""
    before = 0 if rows is None else rows.forgotten
    yield
    if rows is None:
        return
    listener = rows.listening()
    assert listener is not None
    # On SQLite a kept row's next use reads the log: catch up as a request would.
    wait_until(lambda: listener.catch_up() and rows.forgotten > before,
               what="the change's notice heard")


def test_a_link_clicked_again_reads_nothing_while_its_row_is_kept(
        app: Flask, opened: str) -> None:
    kept_link(app, opened)
    handled = flask_requests(app)
    for _ in range(3):
        with budgets.spent(app) as spent:
            assert open_link(app.test_client()) == opened
        assert (spent.queries, spent.hmacs, spent.commits) == ([], 0, 0), str(spent)
    assert handled == []


def test_a_change_to_the_links_page_is_read_at_the_next_click_once_heard(
        app: Flask, make_app: Any, opened: str) -> None:
    """Another process cancels the page: once its notice is heard here, the link lets it go
    at the very next click, and a fresh page opens."""
    rows = kept_link(app, opened)
    with notice_heard(rows):
        cancel(make_app(), opened)
    handled = flask_requests(app)
    fresh = open_link(app.test_client())
    assert fresh != opened
    assert handled == ["/terminal"]


def test_a_links_row_read_while_a_notice_was_heard_is_not_kept(
        app: Flask, opened: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The notice could have named its page, read before the change: the next click reads
    again instead of trusting it."""
    rows = kept_link(app, opened)
    layer = front_of(app)
    real = layer.direct.read

    def read_while_heard(params: dict[str, Any]) -> Any:
        row = real(params)
        rows.forget(frozenset({"a-page-changed-meanwhile"}))
        return row

    rows.forget(frozenset({opened.rsplit("/", 1)[1]}))  # its row goes
    monkeypatch.setattr(layer.direct, "read", read_while_heard)
    assert open_link(app.test_client()) == opened  # read, and not kept
    monkeypatch.setattr(layer.direct, "read", real)
    with budgets.spent(app) as spent:
        assert open_link(app.test_client()) == opened
    assert len(spent.queries) == 1, str(spent)
    with budgets.spent(app) as spent:  # that read, with nothing heard meanwhile: kept
        assert open_link(app.test_client()) == opened
    assert spent.queries == [], str(spent)


def test_a_bad_signature_is_flasks_to_refuse(app: Flask, opened: str) -> None:
    assert open_link(app.test_client()) == opened  # this link verified in front, and kept
    handled = flask_requests(app)
    forged = {**QUERY, "signature": "0" * 128}
    response = app.test_client().get("/terminal", query_string=forged)
    assert response.status_code == 403
    assert handled == ["/terminal"]


def test_a_link_is_kept_verified_under_a_key_of_its_own_whatever_its_length() -> None:
    data, signature = QUERY["data"], QUERY["signature"]
    key = link_front.link_key(data, signature)
    assert len(key) == len(link_front.link_key("x" * 8192, signature)) == 32
    # The same characters split otherwise between data and signature are another link.
    assert key not in {link_front.link_key(data + signature[:1], signature[1:]),
                       link_front.link_key(data[:-1], data[-1:] + signature)}


def test_a_secret_changed_by_hand_refuses_a_link_verified_before_once_the_version_is_raised(
        app: Flask, opened: str) -> None:
    """As the README tells an operator: a merchant changed by hand in the database counts
    once `merchants_version` is raised; a link this process verified before is then verified
    again, against the new secret."""
    assert open_link(app.test_client()) == opened  # verified in front, and kept
    with app.app_context(), db.transaction() as s:
        s.execute(update(Merchant).where(Merchant.client_id == 11)
                  .values(api_secret="a-new-secret"))
        s.execute(update(MerchantsVersion).values(version=MerchantsVersion.version + 1))
    response = app.test_client().get("/terminal", query_string=QUERY)
    assert response.status_code == 403


def test_a_language_asked_on_the_link_is_carried_by_the_flask_route(
        app: Flask, opened: str) -> None:
    handled = flask_requests(app)
    response = app.test_client().get("/terminal", query_string={**QUERY, "lang": "de"})
    assert response.status_code == 303
    assert response.headers["Location"] == opened + "?lang=de"
    assert handled == ["/terminal"]


def test_a_page_that_let_its_link_go_is_flasks_to_open_afresh(app: Flask, opened: str) -> None:
    cancel(app, opened)
    handled = flask_requests(app)
    fresh = open_link(app.test_client())
    assert fresh != opened
    assert handled == ["/terminal"]
    assert open_link(app.test_client()) == fresh
    assert handled == ["/terminal"]  # the fresh page's next click: the front's again


def test_a_process_that_does_not_keep_the_merchant_yet_asks_flask_once(
        make_app: Any, app: Flask, opened: str) -> None:
    other = make_app()  # another process: nothing kept
    handled = flask_requests(other)
    for _ in range(3):
        assert open_link(other.test_client()) == opened
    assert handled == ["/terminal"]


def test_a_merchant_edit_counts_at_the_next_click_once_heard_even_in_front(
        make_app: Any, app: Flask, opened: str) -> None:
    """The return host the link goes back to is removed in another process: once its notice
    is heard here, the very next click of the link is refused as the route refuses it."""
    rows = kept_rows.listening(app)
    assert open_link(app.test_client()) == opened  # kept, answered in front
    other = make_app()
    with notice_heard(rows), other.app_context():
        merchants.edit(11, merchants.MerchantEdit(remove_return_hosts=("shop.example",)))
    handled = flask_requests(app)
    for _ in range(2):  # the second finds the edited merchant kept: refused all the same
        response = app.test_client().get("/terminal", query_string=QUERY)
        assert response.status_code == 400
        assert "not registered" in response.get_data(as_text=True)
    assert handled == ["/terminal", "/terminal"]



def test_the_links_limit_counts_each_click_once_in_front_or_in_flask(
        make_app: Any) -> None:
    app = make_app(RATELIMIT_LINKS="3 per minute")
    with app.app_context():
        merchants.add(merchants.NewMerchant(11, "Shop", MERCHANT_KEY, MERCHANT_SECRET,
                                            ("shop.example",)))
        with db.transaction() as s:
            s.add(DepositAddress(merchant_id=11, foreign_id="user-7", currency="BTC",
                                 convert_to="EUR", address=BTC_ADDRESS))
    client = app.test_client()
    handled = flask_requests(app)
    opened = open_link(client)  # Flask: the first click
    assert open_link(client) == opened  # the front
    assert open_link(client) == opened
    assert [path for path in handled if path == "/terminal"] == ["/terminal"]
    refused = client.get("/terminal", query_string=QUERY)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0


def test_under_a_path_prefix_the_front_sends_the_routes_location(
        app: Flask, opened: str) -> None:
    """Mounted below a prefix (SCRIPT_NAME), the page's address carries it, as url_for's."""
    handled = flask_requests(app)
    front = Client(app).get("/terminal", query_string=QUERY, base_url="http://localhost/pay")
    assert handled == []
    route = flask_route(app).get("/terminal", query_string=QUERY,
                                 base_url="http://localhost/pay")
    assert front.headers["Location"] == route.headers["Location"] == "/pay" + opened
    assert front.get_data() == route.get_data()


def test_under_gunicorn_an_edit_counts_in_every_worker_once_heard(
        app: Flask, opened: str, database_url: str, tmp_path: Path) -> None:
    """Two worker processes keep the merchant; an edit made elsewhere (the command) counts in
    both: removed, the link's return host refuses it; back, it works. On SQLite at the very
    next click (each worker reads the change log first); on PostgreSQL once each worker has
    heard the notice, long before a kept row would be read again for its age alone."""
    def clicks() -> set[int | str]:
        answers = [requests.get(url + "/terminal", params=QUERY, allow_redirects=False,
                                timeout=30) for _ in range(CLICKS)]
        return {a.headers["Location"] if a.status_code == 303 else a.status_code
                for a in answers}

    def clicks_once_heard(expected: set[int | str]) -> None:
        if database_url.startswith("sqlite"):
            assert clicks() == expected
        else:
            wait_until(lambda: clicks() == expected, seconds=pagerows.MAX_AGE / 2,
                       what=f"every worker's clicks answered {expected}")

    runner = app.test_cli_runner()
    with serving(database_url, tmp_path, "--workers", "2", "--worker-class", "gthread",
                 "--threads", "4") as url:
        assert clicks() == {opened}
        removed = runner.invoke(args=["merchant", "edit", "--client-id", "11",
                                      "--remove-return-host", "shop.example"])
        assert removed.exit_code == 0, removed.output
        clicks_once_heard({400})
        added = runner.invoke(args=["merchant", "edit", "--client-id", "11",
                                    "--return-host", "shop.example"])
        assert added.exit_code == 0, added.output
        clicks_once_heard({opened})


@pytest.mark.parametrize("status", deposit.DEPOSIT_STATUSES)
@pytest.mark.parametrize("reason", [None, deposit.UNDERPAID, deposit.OVERPAID,
                                    deposit.SHORT_ACCEPTED, deposit.BELOW_MINIMUM])
@pytest.mark.parametrize("amount", [None, "0.00123"])
def test_the_front_sends_a_click_where_opening_the_link_would(
        status: str, reason: str | None, amount: str | None) -> None:
    page = Page(status=status, reason=reason, amount=amount)
    opening_reopens = not deposit.is_final(status, reason) or opening.paid_in_full(page)
    assert link_front.reopens(status, reason, amount) == opening_reopens
