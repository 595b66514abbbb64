"""A scripted processor: a real HTTP server that answers each request with the next scripted
reply and records what it was sent."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from kit.live import PeerServer


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedServer:
    """A real HTTP server that records each request and answers from a script.

    The last scripted reply repeats, so a server scripted with one 503 keeps failing.
    """

    def __init__(self, port: int = 0) -> None:
        self.seen: list[Seen] = []
        self.replies: list[Reply] = [Reply(200, b'{"data":[]}')]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                outer.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                reply = outer.replies.pop(0) if len(outer.replies) > 1 else outer.replies[0]
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self.httpd = PeerServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/api/v2"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,),
                                       daemon=True)
        self.thread.start()

    def script(self, *replies: tuple[int, str | bytes] | Reply) -> None:
        self.replies = [r if isinstance(r, Reply) else
                        Reply(r[0], r[1].encode() if isinstance(r[1], str) else r[1])
                        for r in replies]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
