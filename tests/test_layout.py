"""The tests' own layout: each test module lives in the folder of the layer it specifies
(web/, services/, pagekinds/, domain/, sandbox/, browser/, house/), and what tests share
lives in the kit package: no test module imports another test module, so moving or renaming
one never breaks a second, and a helper is written once."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# Test code a test module may import: the kit, and the conftest modules pytest loads anyway.
SHARED = "kit"
GUARD = Path(__file__).name


def imported(module: ast.Module, package: tuple[str, ...]) -> list[tuple[int, str]]:
    """Every module an import statement names (inside functions too), as an absolute dotted
    name; relative imports are resolved against `package`, the importing module's package."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            name = ".".join([*base, *([node.module] if node.module else [])])
            if node.module is None:
                names.extend((node.lineno, f"{name}.{alias.name}") for alias in node.names)
            else:
                names.append((node.lineno, name))
    return names


def names_of_test_code(root: Path) -> set[str]:
    """The top-level names under which the tests' own modules import (tests/ is on the path)."""
    return {path.stem if path.is_file() else path.name
            for path in root.iterdir()
            if (path.suffix == ".py") or (path.is_dir() and (path / "__init__.py").exists())}


def allowed(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == SHARED or parts[-1] == "conftest"


def violations(root: Path) -> list[str]:
    """What breaks the layout under `root`: a test module left flat in it (but the guard), and
    any test or kit module importing test code other than the kit and conftest modules."""
    found = [f"{path.name}: a test module flat in tests/; put it in the folder of its layer"
             for path in sorted(root.glob("test_*.py")) if path.name != GUARD]
    ours = names_of_test_code(root)
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        package = relative.parent.parts
        module = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, name in imported(module, package):
            if name.split(".")[0] in ours and not allowed(name):
                found.append(f"{relative}:{line}: imports {name}; share it through {SHARED}/")
    return found


def test_no_test_module_imports_another_and_none_is_left_flat() -> None:
    assert violations(TESTS) == []


def test_the_check_finds_a_test_importing_a_test_and_a_flat_test(tmp_path: Path) -> None:
    def write(relative: str, text: str = "") -> None:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    write("conftest.py")
    write(GUARD)
    for folder in ("kit", "web", "services"):
        write(f"{folder}/__init__.py")
    write("kit/shops.py", "from conftest import X\n")
    write("web/conftest.py")
    write("web/test_pages.py", "from kit.shops import Shop\nfrom conftest import X\n"
                               "from .conftest import Y\nfrom web.conftest import Z\n")
    assert violations(tmp_path) == []

    write("services/test_deliveries.py",
          "def helper():\n    from web.test_pages import open_link\n")
    write("services/test_worker.py", "from . import test_deliveries\n")
    write("kit/links.py", "import web.test_pages\n")
    write("test_flat.py")
    assert violations(tmp_path) == [
        "test_flat.py: a test module flat in tests/; put it in the folder of its layer",
        "kit/links.py:1: imports web.test_pages; share it through kit/",
        "services/test_deliveries.py:2: imports web.test_pages; share it through kit/",
        "services/test_worker.py:1: imports services.test_deliveries; share it through kit/",
    ]
