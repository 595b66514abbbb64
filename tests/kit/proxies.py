"""A real network between the site and the embedded processor that misbehaves on one path:
it forwards every call, and for calls to `path` either hangs up instead of answering (an
answer lost on the way) or holds the answer until released (a call still in flight when its
caller is killed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import requests
from flask import Flask

from checkout import processor
from kit.live import PeerServer

DROP, HOLD = "drop", "hold"


class Proxy:
    def __init__(self, target: str, path: str, mode: str = DROP) -> None:
        self.target, self.path, self.mode = target, path, mode
        self.forwarded = 0  # calls to `path` that reached the processor
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length")}
                answer = requests.request(method, proxy.target + self.path, data=body,
                                          headers=headers, timeout=30)
                if self.path.endswith(proxy.path):
                    proxy.forwarded += 1
                    if proxy.mode == DROP:
                        self.close_connection = True  # hang up: the answer never arrives
                        return
                    proxy.release.wait(60)
                try:
                    self.send_response(answer.status_code)
                    self.send_header("Content-Type", answer.headers.get("Content-Type", ""))
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)
                except OSError:
                    pass  # the caller is gone (killed): nobody reads the answer

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self._forward("POST")

            def do_GET(self) -> None:  # noqa: N802
                self._forward("GET")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = PeerServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.processor_url = self.url + processor.SANDBOX_PATH
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def between(app: Flask, target: str, path: str, mode: str = DROP) -> Iterator[Proxy]:
    """The site's calls to the processor go through a proxy misbehaving on `path`."""
    proxy = Proxy(target, path, mode)
    app.config["PROCESSOR_URL"] = proxy.processor_url
    try:
        yield proxy
    finally:
        app.config["PROCESSOR_URL"] = None
        proxy.close()
