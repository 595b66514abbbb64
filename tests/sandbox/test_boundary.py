"""The sandbox is a world of its own: it imports nothing of the site but the wire format
(`checkout.wire`: signing, PHP json_encode, decimal text), which imports nothing of the site
either. Its worker tasks are added to the worker's list by the app factory, which passes it
the app."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

from flask import Flask

import checkout.sandbox
import checkout.wire

WIRE = Path(checkout.wire.__file__).parent
ALLOWED = {"checkout.wire"} | {f"checkout.wire.{m.stem}" for m in WIRE.glob("*.py")
                                if m.stem != "__init__"}
SANDBOX = Path(checkout.sandbox.__file__).parent


def site_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level >= 2 or (node.level == 0 and (node.module or "").startswith("checkout")):
                base = "checkout" if node.level else node.module or ""
                if node.level >= 2 and node.module:
                    base = f"checkout.{node.module}"
                if base == "checkout":
                    found |= {f"checkout.{a.name}" for a in node.names}
                elif not base.startswith("checkout.sandbox"):
                    found.add(base)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names
                      if a.name.startswith("checkout") and not a.name.startswith(
                          "checkout.sandbox")}
    return found


def test_sandbox_imports_only_the_wire_format() -> None:
    modules = sorted(SANDBOX.rglob("*.py"))
    assert len(modules) > 5
    used = set().union(*(site_imports(m) for m in modules))
    assert used <= ALLOWED, used - ALLOWED
    assert "checkout.wire" in used


def test_the_wire_format_imports_nothing_of_the_site() -> None:
    modules = sorted(WIRE.glob("*.py"))
    assert len(modules) >= 4
    used = set().union(*(site_imports(m) for m in modules))
    assert used <= ALLOWED, used - ALLOWED


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from checkout import db, money\nfrom ..models import Merchant\n")
    assert site_imports(bad) == {"checkout.db", "checkout.money", "checkout.models"}


def test_outside_sandbox_mode_nothing_of_the_sandbox_is_mounted(make_app: Callable[..., Flask],
                                                                 ) -> None:
    app = make_app(SANDBOX=False, PROCESSOR_URL="https://app.cryptoprocessing.com/api/v2")
    client = app.test_client()
    for method, path in (("POST", "/sandbox/simulate/payment"), ("GET", "/sandbox/api/v2/ping"),
                         ("POST", "/sandbox/clock"), ("GET", "/sandbox/shop"),
                         ("POST", "/sandbox/shop/callback")):
        assert client.open(path, method=method, json={}).status_code == 404, path
    assert "sandbox.open_account" not in app.extensions
