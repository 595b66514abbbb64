"""gunicorn's access log, written by a thread of its own: `--logger-class
checkout.accesslog.QueuedAccessLog` (as `make run` starts the site).

gunicorn writes each access line in the request's thread, after the answer: the line's
fields gathered (every request and response header, the whole WSGI environment), formatted,
and written and flushed to its stream. That was a tenth of a status poll's time, and a
stream that stops taking lines (a full pipe) held every request thread. Here the request
thread only hands the request's objects to a queue; one thread per worker process formats
and writes the lines, in the order the requests ended, with the time each one ended. The
queue is bounded: a writer that falls that far behind makes requests wait, as gunicorn's own
logger always did, rather than holding lines without end. Lines still queued when the worker
exits are written first.

Operators who log at the proxy instead leave `--access-logfile` out: nothing is logged
per request, and nothing is queued.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time
import traceback
from typing import Any

from gunicorn import glogging

# Lines a worker may hold before its requests wait for the writer.
QUEUED = 10_000
# How long an exiting worker waits to write the lines still queued.
DRAIN_SECONDS = 5.0
_STOP = None


class QueuedAccessLog(glogging.Logger):
    """gunicorn's Logger, with access lines written off the request thread."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.lines: queue.Queue[tuple[Any, ...] | None] = queue.Queue(QUEUED)
        self.writer_pid: int | None = None
        self.starting = threading.Lock()

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.enabled():
            return
        # Each request has its own response, request and environ objects: nothing the
        # line reads changes once the request is done.
        self.pending().put((resp, req, environ, request_time, time.time()))

    def enabled(self) -> bool:
        """As gunicorn decides (its newer releases say so themselves): an access log is
        configured, so its logger has somewhere to write."""
        said = getattr(self, "access_log_enabled", None)
        return bool(self.access_log.handlers) if said is None else bool(said)

    def pending(self) -> queue.Queue[tuple[Any, ...] | None]:
        """The queue of this process, its writer started on the first line: the logger is
        made in gunicorn's master, and a thread does not cross a fork into the workers."""
        if self.writer_pid != os.getpid():
            with self.starting:
                if self.writer_pid != os.getpid():
                    self.lines = queue.Queue(QUEUED)
                    writer = threading.Thread(target=self.write, args=(self.lines,),
                                              name="access-log", daemon=True)
                    writer.start()
                    atexit.register(drain, self.lines, writer)
                    self.writer_pid = os.getpid()
        return self.lines

    def write(self, lines: queue.Queue[tuple[Any, ...] | None]) -> None:
        while (entry := lines.get()) is not _STOP:
            resp, req, environ, request_time, ended = entry
            try:
                atoms = self.atoms(resp, req, environ, request_time)
                atoms["t"] = time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(ended))
                self.access_log.info(self.cfg.access_log_format,
                                     self.atoms_wrapper_class(atoms))
            except Exception:
                self.error(traceback.format_exc())


def drain(lines: queue.Queue[tuple[Any, ...] | None], writer: threading.Thread) -> None:
    """At the worker's exit: the queued lines written, then the writer stopped."""
    lines.put(_STOP)
    writer.join(DRAIN_SECONDS)
