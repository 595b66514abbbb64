"""Page statuses are named once (checkout/states.py), and the invoice's forward-only ranks live
in one table (pagekinds/invoice.py, also invoices.RANK): a query for open pages or a second
rank table written out by hand drifts from the others the day a status is added to one of them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import checkout
from checkout import states
from checkout.pagekinds import deposit
from checkout.services import invoices

PACKAGE = Path(checkout.__file__).parent
STATUSES = frozenset({states.WAITING, states.SEEN, states.CONFIRMED, states.CANCELLED,
                      states.CREATED, states.PENDING, states.PROCESSING, states.FAILED})


def site_modules() -> Iterator[tuple[str, ast.AST]]:
    """The site's modules (the sandbox processor keeps statuses of its own)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] not in ("sandbox", "migrations"):
            yield str(relative), ast.parse(path.read_text(), str(path))


def spelled_out(node: ast.AST) -> set[str]:
    """The page statuses a node writes as string literals."""
    return {n.value for n in ast.walk(node)
            if isinstance(n, ast.Constant) and n.value in STATUSES}


def test_no_query_spells_out_page_statuses() -> None:
    found = []
    for name, tree in site_modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("in_", "not_in") and spelled_out(node):
                found.append(f"{name}:{node.lineno}")
    assert found == []


def test_invoice_ranks_are_one_table() -> None:
    tables = []
    for name, tree in site_modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict) and node.keys and all(
                    isinstance(key, ast.Constant | ast.Name) for key in node.keys):
                keys = {k.value if isinstance(k, ast.Constant) else getattr(states, k.id, None)
                        for k in node.keys if k is not None}
                if keys == set(invoices.RANK):
                    tables.append(name)
    assert tables == ["pagekinds/invoice.py"]


def test_the_open_states_are_the_ones_the_page_model_calls_open() -> None:
    """What the worker asks about and redraws is what the page model calls not final."""
    assert all(not deposit.is_final(status, None) for status in states.OPEN_DEPOSIT)
    assert set(states.UNPAID_INVOICE) < invoices.OPEN
    assert set(states.OPEN_PAGES) == set(states.OPEN_DEPOSIT) | set(states.UNPAID_INVOICE)
