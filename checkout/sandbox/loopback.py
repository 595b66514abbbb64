"""The embedded processor's own door: each process serves it to itself on a loopback port.

The site's processor client used to call the sandbox at the site's public address, so every
call queued for one of the site's own workers while holding another: under gunicorn's
defaults (one sync worker) each call waited on itself until the client's timeout, and 20
first clicks on 16 threads starved the pool the same way. Now the first call in a process
starts a small threaded HTTP server on 127.0.0.1 (a port the system picks), in a daemon
thread, serving only the sandbox API of the same app. It is still real HTTP through the same
client as production, and it never waits on the site's workers, whatever gunicorn runs. All
sandbox state is in the database, so the servers of several processes answer alike.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .api import bp as api_bp

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

EXTENSION = "sandbox.loopback"
HOST = "127.0.0.1"
# The public origin of the request that made the call (scheme://host[:port]). The sandbox
# writes it into what it hands back (invoice URLs) and where it sends callbacks, as it did
# when it was reached at that origin; only the door reads it, and only the site sends it.
ORIGIN_HEADER = "X-Checkout-Origin"
# How often an idle server looks for a stop request: what `stop` may wait.
POLL_SECONDS = 0.05
_lock = threading.Lock()


class _QuietHandler(WSGIRequestHandler):
    """The client logs every call with its timing already; one line per call is enough."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class _Door:
    pid: int
    server: BaseWSGIServer

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_port}"


def _sandbox_only(app: Flask) -> Any:
    """The app, for the sandbox API's paths alone, seen at the caller's public origin."""
    prefix = str(api_bp.url_prefix)

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path != prefix and not path.startswith(prefix + "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain"),
                                             ("Content-Length", "9")])
            return [b"not here\n"]
        origin = urlsplit(environ.pop("HTTP_" + ORIGIN_HEADER.upper().replace("-", "_"), ""))
        if origin.scheme in ("http", "https") and origin.netloc:
            environ["wsgi.url_scheme"] = origin.scheme
            environ["HTTP_HOST"] = origin.netloc
        return app(environ, start_response)

    return wsgi


def base_url(app: Flask) -> str:
    """Where this process reaches `app`'s sandbox (started at the first call)."""
    door: _Door | None = app.extensions.get(EXTENSION)
    if door is not None and door.pid == os.getpid():
        return door.url
    with _lock:
        door = app.extensions.get(EXTENSION)
        if door is not None and door.pid != os.getpid():
            # Inherited through a fork: its thread stayed in the parent, only the socket came.
            door.server.socket.close()
            door = None
        if door is None:
            server = make_server(HOST, 0, _sandbox_only(app), threaded=True,
                                 request_handler=_QuietHandler)
            threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,),
                             name="sandbox-loopback", daemon=True).start()
            door = _Door(os.getpid(), server)
            app.extensions[EXTENSION] = door
        return door.url


def stop(app: Flask) -> None:
    """Stop this process's server for `app`, if it runs (tests build many apps)."""
    with _lock:
        door: _Door | None = app.extensions.pop(EXTENSION, None)
    if door is None:
        return
    if door.pid == os.getpid():
        door.server.shutdown()
    door.server.server_close()


def endpoint(app: Flask, origin: str) -> tuple[str, dict[str, str]]:
    """The base URL of the sandbox API for a call made on behalf of `origin`, and the
    headers that carry that origin to it."""
    return base_url(app) + str(api_bp.url_prefix), {ORIGIN_HEADER: origin}
