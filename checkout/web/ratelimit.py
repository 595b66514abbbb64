"""Rate limits (Flask-Limiter): generous for people, tight for probes, none for the processor.

Every limit is a setting (`RATELIMIT_*`, from `CHECKOUT_RATELIMIT_*`), with a default that a
real sale does not reach: hundreds of customers behind one carrier NAT share one address,
each opening a link and polling every few seconds. Failures count on their own, tighter
limit: a bot trying signatures on links or callbacks is slowed, the shop's customers are not.
A correctly signed processor callback is never limited, whatever else came from its address.

Limits live in `CHECKOUT_RATELIMIT_STORAGE_URL` (Redis, so that every instance counts
together) or, without it, in each process's memory (`ProcessMemory`).
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any, cast

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from .. import auth
from . import limitstore, request_auth
from .kept import Kept

EXTENSION = "checkout.limiter"
DEFAULTS = {
    "RATELIMIT_LINKS": "1200 per minute",  # terminal links opened, per client address
    "RATELIMIT_BAD_LINKS": "60 per minute",  # of those, refused ones (bad signature, ...)
    "RATELIMIT_PAGES": "3000 per minute",  # page views, receipts, QR images
    "RATELIMIT_STATUS": "20000 per minute",  # status polls (every 3 s per open page)
    "RATELIMIT_FORMS": "120 per minute",  # currency picks, emails, "pay again"
    # "Find my payment" searches: a person finds a lost page in a few tries; a script trying
    # txids and addresses (to learn which are our shops' payments) must not get far.
    "RATELIMIT_FIND": "10 per minute; 50 per hour",
    # Refund claims and their cancellations: a person asks once or twice; a bot trying
    # addresses or amounts is stopped early.
    "RATELIMIT_REFUND": "5 per minute; 20 per hour",
    "RATELIMIT_API": "1200 per minute",  # invoice API calls, per API key
    "RATELIMIT_BAD_API": "60 per minute",  # API calls refused authentication, per address
    "RATELIMIT_BAD_CALLBACKS": "120 per minute",  # callbacks refused (not ours to hear)
}
REFUSED = frozenset({400, 401, 403, 404, 413, 422})
IN_MEMORY = "checkout-memory://"
# Set by the routes answered in front of Flask (front.py), which count their requests before
# Flask sees them: the Flask view then neither counts them again nor forgets a refusal (the
# seconds to wait).
FRONT_COUNTED = "checkout.front.counted"
FRONT_REFUSED = "checkout.front.refused"
# Refused attempts per client address, counted by the views that refuse them (a limit
# checked before the view would refuse whoever comes next from that address, the shop's
# customers and a shop's valid key included): name -> setting.
REFUSALS = "checkout.refusals"
REFUSAL_LIMITS = {"links": "RATELIMIT_BAD_LINKS", "api": "RATELIMIT_BAD_API"}


class ProcessMemory(Storage):
    """Fixed-window counters in this process's memory, swept as they are used.

    `limits`' own memory storage starts a timer thread to expire keys, again and again under
    load: at the status poll's rate that thread churn cost more than the poll itself."""

    STORAGE_SCHEME = ["checkout-memory"]
    SWEEP_EVERY = 60.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: str) -> None:
        self.counters: dict[str, list[float]] = {}  # key: [count, expires at]
        self.lock = threading.Lock()
        self.swept_at = time.time()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self.lock:
            if now - self.swept_at > self.SWEEP_EVERY:
                self._sweep(now)
            counter = self.counters.get(key)
            if counter is None or counter[1] <= now:
                counter = self.counters[key] = [0, now + expiry]
            counter[0] += amount
            return int(counter[0])

    def decr(self, key: str, amount: int = 1) -> int:
        with self.lock:
            counter = self.counters.get(key)
            if counter is None or counter[1] <= time.time():
                return 0
            counter[0] = max(0, counter[0] - amount)
            return int(counter[0])

    def get(self, key: str) -> int:
        counter = self.counters.get(key)
        return 0 if counter is None or counter[1] <= time.time() else int(counter[0])

    def get_expiry(self, key: str) -> float:
        counter = self.counters.get(key)
        return time.time() if counter is None else counter[1]

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self.lock:
            count = len(self.counters)
            self.counters.clear()
        return count

    def clear(self, key: str) -> None:
        with self.lock:
            self.counters.pop(key, None)

    def _sweep(self, now: float) -> None:
        self.counters = {key: c for key, c in self.counters.items() if c[1] > now}
        self.swept_at = now


def client_address() -> str:
    """The client's address as the trusted proxies report it (ProxyFix sets remote_addr)."""
    return request.remote_addr or "unknown"


def api_key() -> str:
    """Per API key (a shop's own server), falling back to the address for unsigned calls."""
    key = request.headers.get("X-Processing-Key")
    return f"key:{key[:128]}" if key else f"addr:{client_address()}"


def refused(response: Response) -> bool:
    return response.status_code in REFUSED


def signed_callback() -> bool:
    """The processor's own, correctly signed: exempt from every limit. The body is bounded
    as the view's already (inputs.py set its route's limit before any view runs)."""
    raw = request.get_data(cache=True, parse_form_data=False)
    return not isinstance(request_auth.authenticate_request(raw), auth.Refusal)


def limit_views(app: Flask, limiter: Limiter, setting: str, *endpoints: str,
                **options: Any) -> None:
    """Wrap registered views with one limit each (the limiter is per app, so are limits).
    A name no view has is a mistake in the table, not a route to skip: the app refuses to
    start rather than run with a limit silently missing."""
    value = str(app.config[setting])
    for endpoint in endpoints:
        view = app.view_functions.get(endpoint)
        if view is None:
            raise LookupError(f"{setting}: no view named {endpoint!r} to limit")
        app.view_functions[endpoint] = cast(Any, limiter.limit(value, **options)(view))


class Throttled(TooManyRequests):
    """Past one of our limits, `seconds` before the next try is let through. Raised, so that
    errors.py answers it in the shape its route's client reads."""

    def __init__(self, seconds: int) -> None:
        super().__init__(retry_after=seconds)
        self.seconds = seconds


def seconds_to_wait(exc: TooManyRequests) -> int:
    """Ours carry it; Flask-Limiter's own (a view's limit) is the limit just hit."""
    return exc.seconds if isinstance(exc, Throttled) else retry_after()


def retry_after() -> int:
    limiter: Limiter | None = current_app.extensions.get(EXTENSION)
    limit = limiter.current_limit if limiter is not None else None
    if limit is None:
        return 60
    return max(1, math.ceil(limit.reset_at - time.time()))


# Counted in front of Flask in a shared storage, a process takes its counts in blocks of
# this share of the limit; a table of blocks past this many addresses drops the used up.
BLOCK_SHARE = 100
BLOCKS_KEPT = 4096
WINDOW_MARGIN = 1.0


class FrontLimit:
    """A route's limit as front.py counts it, before Flask runs, in the limiter's own storage
    (shared when it is Redis), under the route's own name.

    In a shared storage each process takes its counts in blocks (`block`: a hundredth of the
    limit) and hands them out from its memory: one round trip to Redis a block, not one a
    poll. A block is taken only from what the shared count has left, so the site never lets
    more through than the limit; what a process took and has not used when the window ends
    made the others refuse a little early (by at most one block for each other process),
    never late. Limits under 200 a window count one by one, exactly."""

    def __init__(self, limiter: Limiter, value: str, route: str) -> None:
        self.strategy = limiter.limiter
        self.item: RateLimitItem = parse(value)
        self.route = route
        self.block = block_size(self.item, self.strategy)
        # address: [counts left, window's end], the least recently used out past BLOCKS_KEPT
        # (a block dropped is counts unused: refusals a little early, never late). Spent
        # under `lock`: a block's count changes in place.
        self.blocks: Kept[str, list[float]] = Kept(BLOCKS_KEPT)
        self.lock = threading.Lock()

    def hit(self, address: str) -> bool:
        if self.block == 1:
            return self.strategy.hit(self.item, "checkout", self.route, address)
        now = time.time()
        with self.lock:
            held = self.blocks.get(address)
            if held is not None and held[0] >= 1 and held[1] > now:
                held[0] -= 1
                return True
        return self.take_block(address, now)

    def take_block(self, address: str, now: float) -> bool:
        """Take the next block from the shared count (what is left of it, near the limit)
        and spend one of it."""
        storage = self.strategy.storage
        key = self.item.key_for("checkout", self.route, address)
        total = storage.incr(key, self.item.get_expiry(), amount=self.block)
        granted = min(self.block, self.item.amount - (total - self.block))
        if granted <= 0:
            return False
        # Its end, a little early: the storage may round it, and counts of this window must
        # not be spent in the next.
        ends = float(storage.get_expiry(key)) - min(WINDOW_MARGIN,
                                                    self.item.get_expiry() / 10)
        with self.lock:
            held = self.blocks.get(address)
            if held is not None and held[1] > now:  # another thread took one meanwhile
                held[0] += granted - 1
            else:
                self.blocks.put(address, [granted - 1, ends])
        return True

    def test(self, address: str) -> bool:
        """Whether one more would be allowed; counts nothing."""
        return self.strategy.test(self.item, "checkout", self.route, address)

    def retry_after(self, address: str) -> int:
        stats = self.strategy.get_window_stats(self.item, "checkout", self.route, address)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def count(self, environ: dict[str, Any]) -> bool:
        """Count the request; False (and the refusal noted for Flask) past the limit."""
        address = environ.get("REMOTE_ADDR") or "unknown"
        allowed = self.hit(address)  # counted only once this returns: then Flask must not
        environ[FRONT_COUNTED] = True
        if allowed:
            return True
        environ[FRONT_REFUSED] = self.retry_after(address)
        return False


def block_size(item: RateLimitItem, strategy: Any) -> int:
    """How many counts a process takes from the shared count at once: 1 where counting
    costs no round trip (this process's memory), or where the strategy is not a fixed
    window (counts taken ahead would not fit its window)."""
    if (not isinstance(strategy, FixedWindowRateLimiter)
            or not isinstance(strategy.storage, limitstore.FallbackStorage)):
        return 1
    return max(1, item.amount // BLOCK_SHARE)


def front_limit(app: Flask, setting: str, route: str) -> FrontLimit | None:
    """None when limits are off."""
    limiter: Limiter | None = app.extensions.get(EXTENSION)
    if limiter is None or not limiter.enabled:
        return None
    return FrontLimit(limiter, str(app.config[setting]), route)


def count_refusal(name: str) -> None:
    """Count one refused attempt from this client's address: Throttled once past the limit."""
    limit: FrontLimit | None = current_app.extensions.get(REFUSALS, {}).get(name)
    address = client_address()
    if limit is None or limit.hit(address):
        return
    raise Throttled(limit.retry_after(address))


def refused_too_often(name: str) -> None:
    """Throttled for an address whose refused attempts are used up (nothing counted): asked
    before work a refusal would waste, such as looking up a key that a bot made up."""
    limit: FrontLimit | None = current_app.extensions.get(REFUSALS, {}).get(name)
    address = client_address()
    if limit is None or limit.test(address):
        return
    raise Throttled(limit.retry_after(address))


def front_counted() -> bool:
    return bool(request.environ.get(FRONT_COUNTED))


def front_refusal() -> None:
    """Throttled, for a request that front.py refused and left to its Flask view."""
    retry = request.environ.get(FRONT_REFUSED)
    if retry is not None:
        raise Throttled(int(retry))


def init_app(app: Flask) -> None:
    """Limits on the customer routes, the API and refused callbacks; call after blueprints."""
    for name, value in DEFAULTS.items():
        app.config.setdefault(name, os.environ.get(f"CHECKOUT_{name}", value))
    app.config.setdefault("RATELIMIT_STORAGE_URI",
                          os.environ.get("CHECKOUT_RATELIMIT_STORAGE_URL") or IN_MEMORY)
    # A shared storage that stops answering must not stop the site (limitstore.py).
    app.config["RATELIMIT_STORAGE_URI"] = limitstore.with_fallback(
        str(app.config["RATELIMIT_STORAGE_URI"]))
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    limiter = Limiter(client_address, app=app, key_prefix="checkout")
    app.extensions[EXTENSION] = limiter
    # Every limit here is a view's own, checked as the view is called; the limiter's check
    # before every request looks for default and application-wide limits, and there are none
    # to find: it cost a page view a tenth of its time.
    checks = app.before_request_funcs.get(None, [])
    wide = app.config.get("RATELIMIT_DEFAULT") or app.config.get("RATELIMIT_APPLICATION")
    if limiter._check_request_limit in checks and not wide:  # not there when limits are off
        checks.remove(limiter._check_request_limit)
    limit_views(app, limiter, "RATELIMIT_LINKS", "pages.landing", "pages.terminal_link",
                exempt_when=front_counted)
    if limiter.enabled:
        app.extensions[REFUSALS] = {
            name: FrontLimit(limiter, str(app.config[setting]), f"refused-{name}")
            for name, setting in REFUSAL_LIMITS.items()}
    limit_views(app, limiter, "RATELIMIT_PAGES", "pages.show", "pages.receipt",
                "pages.qr_image", "find.form", exempt_when=front_counted)
    limit_views(app, limiter, "RATELIMIT_FIND", "find.search")
    limit_views(app, limiter, "RATELIMIT_STATUS", "pages.status", exempt_when=front_counted)
    limit_views(app, limiter, "RATELIMIT_FORMS", "pages.pick", "pages.give_email",
                "pages.pay_again")
    limit_views(app, limiter, "RATELIMIT_REFUND", "pages.claim_refund", "pages.cancel_refund")
    limit_views(app, limiter, "RATELIMIT_API", "api.invoices_create", "api.invoices_cancel",
                key_func=api_key)
    limit_views(app, limiter, "RATELIMIT_BAD_CALLBACKS", "callbacks.receive",
                deduct_when=refused, exempt_when=signed_callback)
