"""Waiting with a bound, and the site served over real HTTP on a free port."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from flask import Flask
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

# How long a test waits for something that takes well under a second on an idle machine
# before it calls it lost. It only turns a hang into a failure: a loaded machine (2 cores,
# pytest-xdist, other builds) may be 50 times slower, and that must not fail a test.
PATIENCE = 120.0


class PeerServer(ThreadingHTTPServer):
    """A test's HTTP peer (a shop's webhook, a processor, a proxy), one thread a request,
    to which a client hanging up mid-answer is an ordinary event, not a traceback. Printing
    one formats its carets with `ast.parse` (Python 3.11), and that interpreter's AST depth
    check is shared between threads: a parse in the test's own thread at the same moment
    (Werkzeug compiling a new app's URL rules) failed with "AST constructor recursion depth
    mismatch" in a CI run."""

    daemon_threads = True
    HANG_UPS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], self.HANG_UPS):
            return
        super().handle_error(request, client_address)


def wait_until(condition: Callable[[], bool], seconds: float = PATIENCE, *, what: str = "",
               tick: Callable[[], None] | None = None) -> None:
    """Return as soon as `condition()` holds; fail after `seconds` (a safety bound, never a
    measure of speed). A fixed sleep is too short on a loaded machine and time lost on an
    idle one. `tick` pauses between checks: browser tests pass the page's own wait, since
    Playwright hands page events (requests) to Python only while it is called."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what or condition}"
        if tick is None:
            time.sleep(0.02)
        else:
            tick()


class _TrackedHandler(WSGIRequestHandler):
    """Notes its connection on the server while it serves it (see LiveWSGIServer)."""

    server: LiveWSGIServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.lock:
            self.server.connections.discard(self.connection)
        super().finish()


class LiveWSGIServer(ThreadedWSGIServer):
    """A threaded werkzeug server that closes the connections it still reads when it is
    closed. A browser opens connections ahead of need (werkzeug closes each after one
    answer, the browser keeps the spares): each kept a request thread reading it, holding a
    finished test's app, for as long as the browser lived."""

    def __init__(self, host: str, app: Any) -> None:
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        super().__init__(host, 0, app, handler=_TrackedHandler)

    def server_close(self) -> None:
        with self.lock:
            held = list(self.connections)
        for connection in held:
            with contextlib.suppress(OSError):  # the client closed it meanwhile
                connection.shutdown(socket.SHUT_RDWR)
        super().server_close()


@dataclass
class LiveServer:
    url: str
    app: Flask
    server: LiveWSGIServer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_live_server(app: Flask, host: str = "127.0.0.1") -> LiveServer:
    """Serve `app` over real HTTP on a free port, in a thread; PUBLIC_URL points at it.
    Stop it with `stop()` (or shutdown() and server_close()) on every path."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        return app(environ, start_response)

    server = LiveWSGIServer(host, wsgi)
    url = f"http://{host}:{server.server_port}"
    app.config["PUBLIC_URL"] = url
    # A short poll interval: shutdown() waits for it at every test teardown.
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return LiveServer(url=url, app=app, server=server)
