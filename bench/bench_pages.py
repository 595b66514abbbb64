"""Customer-page throughput against a bare Flask app, in-process, one thread.

    .venv/bin/python bench/bench_pages.py [--requests 2000]

Prints requests per second for each route, the ratio to a bare Flask app answering a JSON
dict of the same shape (the floor any Flask site pays), and the weight of the page.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, jsonify
from werkzeug.serving import make_server

from checkout import create_app, merchants, migrate, terminal

SECRET = "bench-secret"


def bare_app(model: dict[str, object]) -> Flask:
    app = Flask("bare")

    @app.get("/status")
    def status() -> object:
        return jsonify(model)

    return app


def rate(call: Callable[[], object], count: int) -> float:
    for _ in range(min(50, count)):  # warm caches and connection pools
        call()
    start = time.perf_counter()
    for _ in range(count):
        call()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    count = parser.parse_args().requests

    folder = Path(tempfile.mkdtemp(prefix="checkout-bench-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    migrate.upgrade(url)
    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(folder), "SANDBOX": True,
                      "PROCESSOR_URL": None, "SECRET_KEY": "bench"})
    # The page is opened over real HTTP, because the site takes the address from the
    # embedded processor through its own client.
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["PUBLIC_URL"] = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    with app.app_context():
        merchants.add(merchants.NewMerchant(11, "Bench shop", "bench-key", SECRET,
                                            ("shop.example",)))
    client = app.test_client()
    query = urlencode(terminal.encode_link(
        {"client_id": 11, "currency": "BTC", "foreign_id": "bench-1", "amount": "0.00123",
         "convert_to": "EUR", "url_back": "https://shop.example/back"}, SECRET))
    opened = client.get(f"/terminal?{query}")
    assert opened.status_code == 303, opened.status_code
    page = opened.headers["Location"]
    model = client.get(f"{page}/status").get_json()
    server.shutdown()

    bare = bare_app(model).test_client()
    floor = rate(lambda: bare.get("/status"), count)
    html = client.get(page).data
    css = client.get("/static/checkout.css").data
    js = client.get("/static/checkout.js").data
    svg = client.get(f"{page}/qr.svg").data

    print(f"{'route':<22}{'req/s':>10}{'vs bare Flask':>16}")
    print(f"{'bare Flask /status':<22}{floor:>10.0f}{1.0:>15.2f}x")
    for name, path in [("/healthz", "/healthz"), ("<page>/status", f"{page}/status"),
                       ("<page> (HTML)", page), ("<page>/qr.svg", f"{page}/qr.svg")]:
        per_second = rate(lambda path=path: client.get(path), count)
        print(f"{name:<22}{per_second:>10.0f}{per_second / floor:>15.2f}x")
    print(f"page weight: HTML {len(html)} B, CSS {len(css)} B, JS {len(js)} B, "
          f"QR SVG {len(svg)} B, total {len(html) + len(css) + len(js) + len(svg)} B")


if __name__ == "__main__":
    main()
