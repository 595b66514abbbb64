"""Page kinds are asked, never named: outside checkout/pagekinds/, no code compares a `kind`
(a `.kind` attribute or a variable of that name) with a string literal; it takes
`KINDS[page.kind]` and asks it. Every kind in KINDS implements the declared interface.

And the Page row keeps nothing that nobody reads: a column only ever written (or copied from
one page to the next) is state that drifts silently.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import checkout
from checkout.models import Page
from checkout.pagekinds import KINDS, PageKind, base

PACKAGE = Path(checkout.__file__).parent
ROOT = PACKAGE.parent
KINDS_PACKAGE = PACKAGE / "pagekinds"


# ---------------------------------------------------------------------------------------------
# No string comparison of a kind outside pagekinds/


def names_a_kind(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "kind") or (
        isinstance(node, ast.Name) and node.id == "kind")


def is_text(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):  # kind in ("deposit", ...)
        return any(is_text(element) for element in node.elts)
    if isinstance(node, ast.JoinedStr):
        return True
    return False


def kind_comparisons(source: str, filename: str = "<source>") -> list[int]:
    """Lines where a kind is compared (==, !=, in, not in, is, ...) with a string literal, on
    either side; a `match kind:` with string cases counts too."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(names_a_kind(side) for side in sides) and any(is_text(s) for s in sides):
                found.append(node.lineno)
        elif isinstance(node, ast.Match) and names_a_kind(node.subject) and any(
                isinstance(case.pattern, ast.MatchValue) and is_text(case.pattern.value)
                for case in node.cases):
            found.append(node.lineno)
    return sorted(found)


def site_sources() -> Iterator[Path]:
    """The site's modules outside pagekinds/ (the sandbox processor is another program)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] not in ("sandbox", "pagekinds"):
            yield path


def test_the_checker_finds_kind_comparisons_in_every_form() -> None:
    source = '''
if page.kind == "invoice": pass
if "deposit" != row.kind: pass
if kind in ("deposit", "invoice"): pass
query = select(Page).where(Page.kind == "deposit")
match page.kind:
    case "invoice": pass
framable = page.is_iframe or KINDS[page.kind].framable
same = Page.kind == page.kind
other = page.status == "waiting"
'''
    assert kind_comparisons(source) == [2, 3, 4, 5, 6]


def test_no_module_outside_pagekinds_compares_a_kind_with_a_string() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}" for path in site_sources()
             for line in kind_comparisons(path.read_text(), str(path))]
    assert found == []


# ---------------------------------------------------------------------------------------------
# Every kind implements the interface


INTERFACE = [name for name in dir(base.PageKind)
             if not name.startswith("_") and name not in dir(object)]


def test_the_interface_declares_what_a_kind_is_and_shows() -> None:
    assert {"name", "template", "model", "labels", "open_states", "final_states", "ranks",
            "is_final"} <= set(INTERFACE)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_implements_the_interface(name: str) -> None:
    kind = KINDS[name]
    assert isinstance(kind, PageKind)
    assert [member for member in INTERFACE if not hasattr(kind, member)] == []
    assert kind.name == name
    assert (PACKAGE.parent / "templates" / kind.template).is_file()
    # Ranks cover the final states the processor reports, open states are never final.
    assert not any(kind.is_final(state, None) for state in kind.open_states)
    assert kind.final_states <= set(kind.ranks)
    assert set(kind.labels()) >= {"paid", "overpaid"}


def test_a_kind_is_found_by_the_name_a_page_stores() -> None:
    assert {kind.name for kind in KINDS.values()} == {"deposit", "invoice"}


# ---------------------------------------------------------------------------------------------
# No write-only Page column


def page_columns() -> list[str]:
    return [column.key for column in Page.__table__.columns]


def with_parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def copied_into_a_page(node: ast.Attribute, parents: dict[ast.AST, ast.AST]) -> bool:
    """`Page(..., col=page.col)`: the value only moves to the next page's same column."""
    keyword = parents.get(node)
    call = parents.get(keyword) if isinstance(keyword, ast.keyword) else None
    return (isinstance(keyword, ast.keyword) and keyword.arg == node.attr
            and isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
            and call.func.id == "Page")


def of_a_page(node: ast.Attribute) -> bool:
    """Read from a page by its name (`page.x`, `Page.x`, `self.page.x`, `pages[0].x`): an
    invoice's `title` is not its page's."""
    return "page" in ast.unparse(node.value).lower()


def python_reads(tree: ast.AST) -> set[str]:
    """Attributes of a page read (loaded) anywhere in the module, not counting a copy into
    the next Page."""
    parents = with_parents(tree)
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)
            and of_a_page(node) and not copied_into_a_page(node, parents)}


def read_columns() -> set[str]:
    """Columns read somewhere: site code (not the model or the migrations that declare
    them), tests, benchmarks, templates."""
    read: set[str] = set()
    for folder in ("checkout", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts or path == PACKAGE / "models.py" \
                    or "sandbox" in path.relative_to(ROOT).parts[:2]:
                continue
            read |= python_reads(ast.parse(path.read_text(), str(path)))
    for path in (ROOT / "templates").rglob("*.html"):
        read |= set(re.findall(r"\bpage\.(\w+)", path.read_text()))
    return read


def test_the_read_finder_tells_a_read_from_a_write_and_a_copy() -> None:
    tree = ast.parse("page.title = 'x'\nPage(convert_to=page.convert_to)\nshow(page.address)\n"
                     "show(invoice.description)\nselect(Page.tag)\n")
    assert python_reads(tree) == {"address", "tag"}


def test_every_page_column_is_read_somewhere() -> None:
    read = read_columns()
    assert [column for column in page_columns() if column not in read] == []


# ---------------------------------------------------------------------------------------------
# Names that say what they return


def test_no_function_is_named_describe() -> None:
    """`describe` meant four things (a currency's page facts, a callback's search fields, an
    operator's line, a merchant's branding): each has the name of what it returns."""
    found = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in sorted(PACKAGE.rglob("*.py"))
             if path.relative_to(PACKAGE).parts[0] != "sandbox"
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") == "describe"]
    assert found == []
