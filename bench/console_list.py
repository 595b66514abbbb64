"""`make bench-console`: the back office's payments list over a million pages.

    .venv/bin/python bench/console_list.py [--pages N] [--rounds 7] [--databases sqlite,postgresql]

Fills a fresh database (SQLite in a temporary folder; PostgreSQL in a schema of its own when
CHECKOUT_DATABASE_URL names one, dropped afterwards) with `--pages` pages of 20 merchants
over a year: deposits with their addresses and transactions, invoices with the payer's
email, built by the migrations and filled in executemany batches. Then it times the list's
server side (services/payments_list.listing: the one statement and the rows it makes) for a
page of 100 rows: the first page, a page deep in the walk through its cursor, filtered by
status, currency and merchant, and searched by foreign_id, address, txid and email. Each
figure is the median of `--rounds` runs after a warm-up run, against the target of 50 ms.
It exits 0 either way.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import schema_of_its_own  # noqa: E402  (bench/bench.py, beside this file)
from checkout import db, migrate  # noqa: E402
from checkout.models import (  # noqa: E402
    Deposit,
    DepositAddress,
    Invoice,
    Merchant,
    Page,
)
from checkout.services import payments_list  # noqa: E402
from checkout.services.payments_list import Filters  # noqa: E402

TARGET_MS = 50.0
MERCHANTS = 20
BATCH = 10_000
START = datetime(2025, 1, 1)
YEAR_SECONDS = 365 * 24 * 3600
STATUSES = (("confirmed", 60), ("waiting", 15), ("cancelled", 10), ("failed", 8),
            ("not_confirmed", 4), ("processing", 3))
CURRENCIES = (("BTC", 45), ("ETH", 25), ("USDTT", 20), ("LTC", 9), ("DOGE", 1))


@dataclass(frozen=True)
class Case:
    name: str
    merchants: list[int] | None
    filters: Filters
    after: str | None = None


def weighted(rng: random.Random, table: tuple[tuple[str, int], ...], count: int) -> list[str]:
    return rng.choices([name for name, _ in table], [weight for _, weight in table], k=count)


def fill(engine: Engine, pages: int, seed: int = 17) -> None:
    """`pages` pages, one in three an invoice; each deposit page at an address of its own
    customer (a tenth of the pages' count) with one transaction."""
    rng = random.Random(seed)
    addresses = max(pages // 10, 1)
    with Session(engine) as session:
        session.execute(insert(Merchant), [
            {"client_id": m, "name": f"Bench shop {m}", "api_key": f"key-{m}",
             "api_secret": f"secret-{m}", "created_at": START} for m in range(1, MERCHANTS + 1)])
        for start in range(0, addresses, BATCH):
            session.execute(insert(DepositAddress), [
                {"id": i + 1, "merchant_id": i % MERCHANTS + 1, "foreign_id": f"cust-{i}",
                 "currency": "BTC", "convert_to": "", "address": f"addr-{i}",
                 "created_at": START} for i in range(start, min(start + BATCH, addresses))])
            session.execute(insert(Deposit), [
                {"merchant_id": i % MERCHANTS + 1, "processor_id": i + 1,
                 "address_id": i + 1, "currency": "BTC", "amount": "0.01",
                 "txid": f"{i:064x}", "status": "confirmed", "created_at": START,
                 "updated_at": START} for i in range(start, min(start + BATCH, addresses))])
        session.commit()
        for start in range(0, pages, BATCH):
            rows, invoices = [], []
            size = min(start + BATCH, pages) - start
            statuses = iter(weighted(rng, STATUSES, size))
            currencies = iter(weighted(rng, CURRENCIES, size))
            for i in range(start, start + size):
                created = START + timedelta(seconds=rng.randrange(YEAR_SECONDS))
                kind = "invoice" if i % 3 == 0 else "deposit"
                address = i % addresses
                merchant_id = address % MERCHANTS + 1
                page_id = f"p{i:042d}"
                rows.append({
                    "id": page_id, "kind": kind, "merchant_id": merchant_id,
                    "foreign_id": f"order-{i}", "currency": next(currencies),
                    "amount": "0.01", "amount_paid": "0.01",
                    "address_id": address + 1 if kind == "deposit" else None,
                    "address": f"addr-{address}" if kind == "deposit" else f"inv-addr-{i}",
                    "status": next(statuses), "created_at": created,
                    "updated_at": created, "fiat_currency": "EUR", "is_iframe": False,
                    "model_version": 0})
                if kind == "invoice":
                    invoices.append({
                        "merchant_id": merchant_id, "foreign_id": f"order-{i}",
                        "page_id": page_id, "title": "Order", "currency": "EUR",
                        "amount": "26", "timer": False, "type": "fill_or_kill",
                        "email_user": f"payer-{i}@example.org",
                        "url_success": "https://shop.example/ok",
                        "url_failed": "https://shop.example/failed",
                        "status": rows[-1]["status"], "created_at": created,
                        "updated_at": created})
            # Core inserts (executemany): the ORM's per-row bookkeeping is not what is measured.
            session.execute(Page.__table__.insert(), rows)
            if invoices:
                session.execute(Invoice.__table__.insert(), invoices)
            session.commit()
            print(f"  filled {min(start + BATCH, pages):,} pages", end="\r", flush=True)
    print()


def analyse(engine: Engine) -> None:
    """Fresh statistics, as a database in use has them."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def deep_cursor(engine: Engine, depth: int) -> str:
    """The cursor a person has after walking `depth` rows of the whole list."""
    with Session(engine) as session:
        created_at, page_id = session.execute(
            select(Page.created_at, Page.id).order_by(Page.created_at.desc(), Page.id.desc())
            .offset(depth).limit(1)).one()
    return payments_list.encode_cursor(created_at, page_id)


def cases(engine: Engine, pages: int) -> list[Case]:
    middle = pages // 2
    some = [1, 2, 3]
    return [
        Case("first page, operator", None, Filters()),
        Case("first page, one merchant", [7], Filters()),
        Case("first page, three merchants", some, Filters()),
        Case(f"deep page (row {middle:,}) via cursor", None, Filters(),
             deep_cursor(engine, middle)),
        Case("status=failed", None, Filters(status="failed")),
        Case("status=processing, 3 merchants", some, Filters(status="processing")),
        Case("currency=DOGE", None, Filters(currency="DOGE")),
        Case("merchant=7 (filter)", None, Filters(merchant=7)),
        Case("merchant=7, status, currency", None,
             Filters(merchant=7, status="confirmed", currency="LTC")),
        Case("search foreign_id", None, Filters(q=f"order-{middle + 1}")),
        Case("search address", None, Filters(q=f"addr-{(middle + 1) % max(pages // 10, 1)}")),
        Case("search txid", None, Filters(q=f"{(middle + 1) % max(pages // 10, 1):064x}")),
        Case("search email", None, Filters(q=f"payer-{middle - middle % 3}@example.org")),
    ]


def median_ms(engine: Engine, case: Case, rounds: int) -> tuple[float, int]:
    times = []
    rows = 0
    with Session(engine) as session:
        for attempt in range(rounds + 1):
            started = time.perf_counter()
            found = payments_list.listing(session, case.merchants, case.filters, case.after)
            elapsed = (time.perf_counter() - started) * 1000
            session.rollback()
            rows = len(found.rows)
            if attempt:  # the first run warms the caches
                times.append(elapsed)
    return statistics.median(times), rows


@contextmanager
def database(kind: str, folder: Path) -> Iterator[tuple[str, str]]:
    if kind == "sqlite":
        yield "SQLite", f"sqlite:///{folder / 'console.db'}"
        return
    base = os.environ.get("CHECKOUT_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        raise SystemExit("PostgreSQL needs CHECKOUT_DATABASE_URL=postgresql+psycopg://…")
    with schema_of_its_own(base, "bench_console") as url:
        yield "PostgreSQL", url


def run(kind: str, pages: int, rounds: int, report: Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as folder, \
            database(kind, Path(folder)) as (name, url):
        migrate.upgrade(url, sandbox=False)
        engine = db.make_engine(url, pool_size=1)
        try:
            started = time.perf_counter()
            fill(engine, pages)
            analyse(engine)
            report(f"{name}: {pages:,} pages filled in {time.perf_counter() - started:.0f} s; "
                   f"100 rows a page, median of {rounds} rounds")
            report(f"  {'case':<40} {'rows':>5} {'ms':>8}  target {TARGET_MS:.0f} ms")
            for case in cases(engine, pages):
                ms, rows = median_ms(engine, case, rounds)
                verdict = "meets" if ms < TARGET_MS else "misses"
                report(f"  {case.name:<40} {rows:>5} {ms:>8.2f}  {verdict}")
        finally:
            engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    default = "sqlite,postgresql" if os.environ.get("CHECKOUT_DATABASE_URL", "").startswith(
        "postgresql") else "sqlite"
    parser.add_argument("--databases", default=default)
    options = parser.parse_args()
    for kind in options.databases.split(","):
        run(kind.strip(), options.pages, options.rounds, print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
