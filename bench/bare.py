"""The floor: a bare Flask app that answers the site's routes with the site's own bytes.

    gunicorn --pythonpath bench bare:app      (BENCH_BARE_SPEC names the answers' file)

`bench/bench.py` records what the site answered (status, every header the app set, body)
for each path it loads and starts this app under the same gunicorn settings: the same
bytes on the wire, apart from what the server itself adds (`Date`, `Server`, lengths). Whatever
the site spends beyond this is the site's own work: database, models, templates, checks.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from flask import Flask, Response, request

app = Flask("bare")


def _load(path: str) -> dict[str, dict[str, Any]]:
    with open(path, encoding="utf-8") as file:
        spec: dict[str, dict[str, Any]] = json.load(file)
    for answer in spec.values():
        answer["body"] = base64.b64decode(answer["body"])
    return spec


ANSWERS = _load(os.environ["BENCH_BARE_SPEC"])


def answer(key: str) -> Response:
    found = ANSWERS.get(key)
    if found is None:
        return Response(b"not recorded\n", status=404, mimetype="text/plain")
    response = Response(found["body"], status=found["status"])
    response.headers.clear()
    for name, value in found["headers"]:
        response.headers.add(name, value)
    return response


@app.get("/p/<page_id>")
def page(page_id: str) -> Response:
    return answer(f"/p/{page_id}")


@app.get("/p/<page_id>/status")
def status(page_id: str) -> Response:
    return answer(f"/p/{page_id}/status")


@app.get("/p/<page_id>/qr.<fmt>")
def qr(page_id: str, fmt: str) -> Response:
    return answer(f"/p/{page_id}/qr.{fmt}")


@app.get("/terminal")
def terminal_link() -> Response:
    return answer("/terminal")


@app.post("/callbacks/coinspaid")
def callback() -> Response:
    request.get_data()  # the site reads (and hashes) every body; the floor reads it too
    return answer("POST /callbacks/coinspaid")
