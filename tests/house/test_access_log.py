"""`make run`'s access log costs the request thread next to nothing: with gunicorn started as
the Makefile starts it, a stdout that takes no more lines (a full pipe) holds no request,
and every line still reaches stdout afterwards, one per request, in order, with the ones
still queued when the site stops."""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

import requests
from kit.gunicorn import serving
from kit.live import wait_until
from kit.site import bench_harness

# Far more lines than the pipe below holds (about 30 of these): gunicorn's own logger, which
# writes in the request thread, stops every request thread at the first full pipe.
REQUESTS = 200
LAST = 5
PIPE_BYTES = 4096
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, Linux, Python >= 3.10
LINE = re.compile(r'^127\.0\.0\.1 .*"GET /favicon\.ico\?n=(\d+) HTTP/1\.1" 204 ', re.M)


def test_a_stdout_that_takes_no_lines_holds_no_request_and_loses_no_line(
        database_url: str, tmp_path: Path) -> None:
    flags = bench_harness().gunicorn_flags()  # the Makefile's `run` recipe
    assert "--access-logfile" in flags
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, PIPE_BYTES)
    os.set_blocking(read_end, False)
    written = bytearray()
    ended = [False]

    def read() -> str:
        try:
            while chunk := os.read(read_end, 65536):
                written.extend(chunk)
            ended[0] = True  # every process holding the pipe has exited
        except BlockingIOError:
            pass
        return written.decode()

    try:
        with requests.Session() as session, serving(database_url, tmp_path, *flags,
                                                    stdout=write_end) as url:
            os.close(write_end)  # the site's copy stays open: EOF once it has stopped
            write_end = -1
            # Nothing reads the pipe meanwhile; each request is bounded, never waited for.
            for n in range(REQUESTS):
                assert session.get(f"{url}/favicon.ico?n={n}", timeout=10).status_code == 204
            wait_until(lambda: len(LINE.findall(read())) == REQUESTS,
                       what=f"{REQUESTS} access lines")
            for n in range(REQUESTS, REQUESTS + LAST):  # queued as the site stops
                assert session.get(f"{url}/favicon.ico?n={n}", timeout=10).status_code == 204
        wait_until(lambda: bool(read()) and ended[0], what="the site's stdout closed")
        assert [int(n) for n in LINE.findall(written.decode())] == list(range(REQUESTS + LAST))
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
