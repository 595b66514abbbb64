"""What one request spends: SQL statements, commits, HMAC-SHA512 signatures made or checked,
and calls to the processor, counted in the calling thread only (the embedded sandbox serves
the site from a thread of its own, and its work is the processor's, not the route's).

    with budgets.spent(app) as spent:
        client.get(...)
    assert spent.commits == 1

A route's budget test states the most each may be; putting back an old, costlier path (a
second commit, a signature checked twice, a query per merchant) turns it red.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy import event

from checkout import db, processor
from checkout.wire import signing
from kit import direct_reads

# Connection bookkeeping SQLite and the pool run, not the route's work.
HOUSEKEEPING = ("PRAGMA", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@dataclass
class Spent:
    statements: list[str] = field(default_factory=list)
    # Those of `statements` read beside any session, straight from the driver (db.DirectRead).
    direct: list[str] = field(default_factory=list)
    commits: int = 0
    hmacs: int = 0
    processor_calls: list[str] = field(default_factory=list)

    @property
    def queries(self) -> list[str]:
        """The statements that are the route's own work (not pragmas or savepoints)."""
        return [s for s in self.statements if not s.lstrip().upper().startswith(HOUSEKEEPING)]

    @property
    def writes(self) -> list[str]:
        return [s for s in self.queries
                if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]

    def __str__(self) -> str:
        listed = "\n  ".join(self.queries)
        return (f"{len(self.queries)} statements, {self.commits} commits, {self.hmacs} HMACs, "
                f"processor calls {self.processor_calls}:\n  {listed}")


@contextmanager
def spent(app: Flask) -> Iterator[Spent]:
    """Count what the calling thread spends inside the block."""
    engine = app.extensions[db.EXTENSION + ".engine"]
    here = threading.get_ident()
    tally = Spent()

    def mine() -> bool:
        return threading.get_ident() == here

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if mine():
            tally.statements.append(statement)

    def on_direct(statement: str) -> None:
        if mine():
            tally.statements.append(statement)
            tally.direct.append(statement)

    def on_commit(_conn: Any) -> None:
        if mine():
            tally.commits += 1

    real_sign = signing.sign
    real_attempt = processor.ProcessorClient._attempt

    def counted_sign(body: bytes, secret: str) -> str:
        if mine():
            tally.hmacs += 1
        return real_sign(body, secret)

    def counted_attempt(client: processor.ProcessorClient, method: str, path: str,
                        *args: Any, **kwargs: Any) -> Any:
        if mine():
            tally.processor_calls.append(path)
        return real_attempt(client, method, path, *args, **kwargs)

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    signing.sign = counted_sign  # type: ignore[assignment]
    processor.ProcessorClient._attempt = counted_attempt  # type: ignore[method-assign]
    try:
        with direct_reads.heard(engine, on_direct):
            yield tally
    finally:
        processor.ProcessorClient._attempt = real_attempt  # type: ignore[method-assign]
        signing.sign = real_sign  # type: ignore[assignment]
        event.remove(engine, "commit", on_commit)
        event.remove(engine, "before_cursor_execute", on_statement)


