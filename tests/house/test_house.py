"""The package's house rules: no import loop in checkout/, counting every import.

An import hidden inside a function still makes a loop: the two modules cannot be read, tested
or moved apart, and the loop only waits for the wrong import order to break at start-up. So
every Import and ImportFrom counts, at the top of a module or deep in a function, relative or
absolute. A loop is named file by file, with the names each module takes from the next.

Layers (LAYERS): a module may import its own layer and those below, never one above: the
blueprints (HTTP) over services/ (workflows) over the domain modules, the app factory over
all. The sandbox's own rule (it imports only the site's wire format) is
tests/sandbox/test_boundary.py.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import checkout

PACKAGE = Path(checkout.__file__).parent
# Dotted package prefix -> layer number; a module may import only layers <= its own. The
# longest matching prefix wins. The package's own __init__ (the app factory) wires every
# layer together and stands above them all.
DOMAIN, PAGEKINDS, SERVICES, WEB, FACTORY = 0, 1, 2, 3, 9
# A CLI command that calls a service is an entry point as a view is: it stands with web/.
COMMANDS = ("demo", "user_commands")
LAYERS: dict[str, int] = {"checkout": DOMAIN, "checkout.pagekinds": PAGEKINDS,
                          "checkout.services": SERVICES, "checkout.web": WEB,
                          **{f"checkout.{name}": WEB for name in COMMANDS}}


@dataclass(frozen=True)
class Edge:
    source: str  # dotted module names
    target: str
    names: tuple[str, ...]  # what the source takes from the target
    line: int


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package rooted at `root` (a directory with __init__.py)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def base_of(module: str, path: Path, level: int) -> str:
    """The package that a relative import of `level` dots starts from."""
    parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    return ".".join(parts[:len(parts) - (level - 1)])


def attributes_used(tree: ast.AST, name: str) -> tuple[str, ...]:
    """`name.X` wherever `name` (a module bound by an import) is used."""
    return tuple(sorted({node.attr for node in ast.walk(tree)
                         if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                         and node.value.id == name}))


def imports(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Edge]:
    """The modules of the package that `module` imports, wherever in it the import stands."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    used = attributes_used(tree, alias.asname) if alias.asname else ()
                    yield Edge(module, alias.name, used or (alias.name,), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = base_of(module, path, node.level)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target not in modules:
                continue
            taken: list[str] = []
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in modules:  # `from . import pages`: an edge to pages itself
                    used = attributes_used(tree, alias.asname or alias.name)
                    yield Edge(module, submodule, used or (alias.name,), node.lineno)
                else:
                    taken.append(alias.name)
            if taken:
                yield Edge(module, target, tuple(taken), node.lineno)


def import_graph(root: Path) -> dict[str, dict[str, Edge]]:
    modules = module_names(root)
    graph: dict[str, dict[str, Edge]] = {name: {} for name in modules}
    for name, path in modules.items():
        for edge in imports(name, path, modules):
            if edge.target == name:
                continue
            known = graph[name].get(edge.target)
            names = tuple(sorted(set(edge.names) | set(known.names if known else ())))
            graph[name][edge.target] = Edge(name, edge.target, names,
                                            known.line if known else edge.line)
    return graph


def loops(graph: dict[str, dict[str, Edge]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def shortest_cycle(graph: dict[str, dict[str, Edge]], component: list[str]) -> list[Edge]:
    """One cycle through the component's first module, as few steps as there are."""
    start = component[0]
    members = set(component)
    came_from: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target, edge in sorted(graph[node].items()):
                if target not in members:
                    continue
                if target == start:
                    cycle = [edge]
                    while cycle[0].source != start:
                        cycle.insert(0, came_from[cycle[0].source])
                    return cycle
                if target not in came_from:
                    came_from[target] = edge
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def file_of(module: str, root: Path) -> str:
    return module_names(root)[module].relative_to(root.parent).as_posix()


def step(edge: Edge, root: Path) -> str:
    return (f"  {file_of(edge.source, root)}:{edge.line} -> {file_of(edge.target, root)}: "
            f"{', '.join(edge.names)}")


def describe(graph: dict[str, dict[str, Edge]], component: list[str], root: Path) -> str:
    """The loop's files, one way round it, and (when there is more) every import inside it:
    breaking the way round may leave another."""
    files = ", ".join(file_of(m, root) for m in component)
    cycle = shortest_cycle(graph, component)
    inside = [e for m in component for t, e in sorted(graph[m].items()) if t in component]
    lines = [f"import loop of {len(component)} modules ({files}); one way round:",
             *(step(e, root) for e in cycle)]
    if len(inside) > len(cycle):
        lines += ["every import inside it:", *(step(e, root) for e in inside)]
    return "\n".join(lines)


def loop_report(root: Path) -> str:
    graph = import_graph(root)
    return "\n".join(describe(graph, component, root) for component in loops(graph))


def layer_of(module: str) -> int:
    if module == PACKAGE.name:
        return FACTORY
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[prefix]


def upward_imports(root: Path) -> list[str]:
    graph = import_graph(root)
    return [f"{file_of(e.source, root)}:{e.line} -> {file_of(e.target, root)}: "
            f"{', '.join(e.names)} (layer {layer_of(e.source)} imports layer "
            f"{layer_of(e.target)})"
            for edges in graph.values() for e in edges.values()
            if layer_of(e.target) > layer_of(e.source)]


# ---------------------------------------------------------------- the rules


def test_no_import_loop_in_the_package() -> None:
    report = loop_report(PACKAGE)
    assert not report, "\n" + report


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert not upward_imports(PACKAGE)


def test_every_name_in_the_layer_table_is_a_module_of_the_package() -> None:
    """A misspelt or moved name would leave its module in the layer below, unguarded."""
    modules = module_names(PACKAGE)
    assert sorted(name for name in LAYERS if name not in modules) == []


def test_the_layer_table_places_the_factory_services_blueprints_and_domain() -> None:
    assert layer_of("checkout.services.opening") == SERVICES
    assert layer_of("checkout.web.customer") == WEB
    assert layer_of("checkout") == FACTORY and layer_of("checkout.money") == DOMAIN


# ---------------------------------------------------------------- the checker itself


def write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "shop"
    for name, source in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return package


def test_a_loop_through_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "__init__.py": "def create():\n    from . import pages\n",
        "pages.py": "from . import limits\n\ndef show():\n    return limits.refuse()\n",
        "limits.py": "def refuse():\n    from .pages import error_page\n    return error_page()\n",
        "money.py": "",
    })
    report = loop_report(package)
    assert "import loop of 2 modules (shop/limits.py, shop/pages.py)" in report
    assert "shop/limits.py:2 -> shop/pages.py: error_page" in report
    assert "shop/pages.py:1 -> shop/limits.py: refuse" in report
    assert "money" not in report and "__init__" not in report


def test_absolute_and_deeper_imports_count_too(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "__init__.py": "",
        "worker.py": "import shop.sub.tasks as tasks\nx = tasks.ALL\n",
        "sub/__init__.py": "",
        "sub/tasks.py": "def run():\n    from .. import worker\n    worker.loop()\n",
    })
    assert loops(import_graph(package)) == [["shop.sub.tasks", "shop.worker"]]
    assert "shop/sub/tasks.py:2 -> shop/worker.py: loop" in loop_report(package)


def test_a_tree_without_a_loop_passes(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "__init__.py": "def create():\n    from . import pages, limits\n",
        "pages.py": "from . import limits\nfrom .money import plain\n",
        "limits.py": "from . import money\n\ndef refuse():\n    from .money import plain\n",
        "money.py": "import decimal\n",
    })
    assert loop_report(package) == ""


def test_an_import_from_a_higher_layer_is_named(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    package = write_package(tmp_path, {
        "__init__.py": "", "web/__init__.py": "", "web/pages.py": "",
        "model.py": "def f():\n    from .web import pages\n",
    })
    monkeypatch.setitem(LAYERS, "shop", 0)
    monkeypatch.setitem(LAYERS, "shop.web", 1)
    assert upward_imports(package) == [
        "shop/model.py:2 -> shop/web/pages.py: pages (layer 0 imports layer 1)"]
