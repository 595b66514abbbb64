"""The page's status poll in Chromium: each poll sends back the last ETag and an unchanged
model comes back as a bodiless 304 (the page keeps what it shows); the poll stays fast while
the customer should pay or money is on its way, so a new phase shows within one fast poll
interval of the processor's callback, not after the slow one."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from kit.browser import link, pay, wait_for_phase
from kit.invoices import ORDER, TestShop, settle
from kit.live import LiveServer, wait_until
from playwright.sync_api import expect

FAST_MS = 400
SLOW_MS = 30_000


@pytest.fixture
def app(make_app: Any) -> Any:
    """Polls far apart when slow, so that waiting for a slow one shows."""
    return make_app(POLL_WAITING_MS=FAST_MS, POLL_SEEN_MS=SLOW_MS, NOSCRIPT_REFRESH=1)


def record_polls(page: Any) -> list[tuple[int, str | None, str | None]]:
    """Each status poll's answer: (status, the If-None-Match it sent, the ETag it got)."""
    polls: list[tuple[int, str | None, str | None]] = []

    def seen(response: Any) -> None:
        if response.url.split("?")[0].endswith("/status"):
            polls.append((response.status, response.request.headers.get("if-none-match"),
                          response.headers.get("etag")))

    page.on("response", seen)
    return polls


# For each status request, the delay of the timer that sent it, and each request's start and
# the moment its answer began to arrive, on the browser's own clock: what the test measures
# does not depend on how fast the test process hears of the browser's events on a loaded
# machine. (The served script is minified, so the poll is known by what it fetches, not by
# its function's name.)
RECORD_POLL_TIMERS = """
window.pollDelays = [];
(() => {
  let firing = null;
  const setTimer = window.setTimeout, fetchNow = window.fetch;
  window.setTimeout = function (callback, delay, ...rest) {
    const fire = function () {
      firing = delay;
      try { return callback.apply(this, arguments); } finally { firing = null; }
    };
    return setTimer.call(this, typeof callback === "function" ? fire : callback, delay, ...rest);
  };
  window.fetch = function (resource, ...rest) {
    if (String(resource).split("?")[0].endsWith("/status")) { window.pollDelays.push(firing); }
    return fetchNow.call(this, resource, ...rest);
  };
})();
"""
STATUS_REQUESTS = """() => performance.getEntriesByType("resource")
  .filter((entry) => new URL(entry.name).pathname.endsWith("/status"))
  .map((entry) => [entry.startTime, entry.responseStart])"""


def test_polls_send_the_last_etag_and_an_unchanged_model_is_a_304(
        app: Flask, site: LiveServer, customer: Any) -> None:
    page = customer
    polls = record_polls(page)
    document = page.goto(link(site.url))
    wait_for_phase(page, "waiting")
    # The page itself came gzipped (rendered by Flask; a reload is served in front of it).
    assert document is not None and document.headers.get("content-encoding") == "gzip"
    again = page.reload()
    assert again is not None and again.headers.get("content-encoding") == "gzip"
    wait_for_phase(page, "waiting")
    polls.clear()
    amount = page.locator('[data-field="amount"]').inner_text()
    wait_until(lambda: len(polls) >= 4, 15, what="four polls",
               tick=lambda: page.wait_for_timeout(50))
    first_status, first_sent, tag = polls[0]
    assert first_status == 200 and first_sent is None and tag
    for status, sent, _ in polls[1:4]:
        assert (status, sent) == (304, tag)
    # The last model stands: nothing the page shows was dropped by a bodiless answer.
    expect(page.locator('[data-field="amount"]')).to_have_text(amount)
    expect(page.locator('[data-field="status-box"]')).to_have_attribute("data-phase", "waiting")

    pay(app, site, page, "0.0005")  # a change: a full answer, under a new tag
    wait_for_phase(page, "partial")
    changed = next(p for p in polls[4:] if p[0] == 200)
    assert changed[1] == tag and changed[2] != tag


def test_a_new_phase_shows_within_one_fast_poll_after_the_callback(
        app: Flask, site: LiveServer, customer: Any) -> None:
    page = customer
    page.add_init_script(RECORD_POLL_TIMERS)
    page.goto(link(site.url))
    wait_for_phase(page, "waiting")
    pay(app, site, page, "0.0005")  # part of it: "please send the remaining"
    wait_for_phase(page, "partial")
    asked = len(page.evaluate("window.pollDelays"))
    pay(app, site, page, "0.0007", status="not_confirmed")  # the rest, on its way
    box = page.locator('[data-field="status-box"]')
    # Shown by a poll sent at the fast interval: a third of the slow one is time enough on
    # any machine, and waiting for a slow poll could not make it.
    expect(box).to_have_attribute("data-phase", "confirming", timeout=SLOW_MS // 3)
    # Money on its way: the poll stays fast while the payment is not final.
    wait_until(lambda: len(page.evaluate("window.pollDelays")) >= asked + 3, 15,
               what="fast polls while confirming", tick=lambda: page.wait_for_timeout(50))
    # Every poll was sent a fast interval after the one before (the first, after load; the
    # part payment's page is the server's to draw, so it was loaded anew): the browser's own
    # timers, whatever the machine's speed.
    delays = page.evaluate("window.pollDelays")
    assert delays == [FAST_MS] * len(delays), delays


def test_while_nothing_moves_the_poll_slows_down_step_by_step(
        customer: Any, site: LiveServer) -> None:
    """An invoice waiting for its currency to be picked: nothing is on its way, and each
    poll finds nothing new (a 304), so each waits twice as long as the one before, up to the
    slow interval."""
    app = site.app
    app.config.update(POLL_WAITING_MS=100, POLL_SEEN_MS=800)
    settle(app)
    created = TestShop(site.url).create(ORDER)
    assert created.status_code == 200, created.text
    page = customer
    page.add_init_script(RECORD_POLL_TIMERS)
    page.goto(str(created.json()["data"]["url"]))
    wait_for_phase(page, "choose")
    wait_until(lambda: len(page.evaluate(STATUS_REQUESTS)) >= 7, 30, what="seven polls",
               tick=lambda: page.wait_for_timeout(50))
    delays = page.evaluate("window.pollDelays")
    # The first poll a fast interval after load, the next one after the first answer (a
    # change: fast), then after each 304 twice as long, capped at the slow interval: doubling
    # on would wait 1.6 s, then 3.2 s.
    assert delays[:7] == [100, 100, 200, 400, 800, 800, 800], delays
    # And the browser waited that long: each request starts no sooner than its timer after
    # the answer before it began to arrive (a 304's end may come after its timer is set;
    # timers run late, never early; the browser's clock is coarse to 0.1 ms).
    requests = page.evaluate(STATUS_REQUESTS)
    waited = [later[0] - before[1] for before, later in zip(requests, requests[1:], strict=False)]
    assert all(wait >= delay - 1 for wait, delay in zip(waited, delays[1:], strict=False)), \
        (waited, delays)
