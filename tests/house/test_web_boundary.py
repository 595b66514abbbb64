"""Only the web layer speaks HTTP: checkout/web/ parses the request and builds the answer.

Below it (services, page kinds, the domain modules) nothing takes flask's `request`, renders a
template, aborts, redirects or builds a `Response` (flask's or werkzeug's): a workflow that
did could not be run by the worker, a CLI command or a test without a request, and would
decide HTTP shapes the web layer is meant to own. The app factory (`checkout/__init__.py`)
wires the layers together and the sandbox is a processor world of its own (its rule:
tests/sandbox/test_boundary.py); both may. Any import, at the top of a module or inside a
function, counts, and so does `flask.request` reached through `import flask`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import checkout

PACKAGE = Path(checkout.__file__).parent
HTTP_NAMES = frozenset({"Blueprint", "render_template", "request", "jsonify", "make_response",
                        "redirect", "abort", "send_file", "Response"})
# Where a Response class can be taken from: building one is speaking HTTP as much as
# rendering is.
RESPONSE_MODULES = frozenset({"werkzeug", "werkzeug.wrappers", "werkzeug.wrappers.response",
                              "werkzeug.sansio.response", "flask.wrappers"})
ALLOWED = ("web/", "sandbox/")  # folders of the package, besides the factory
FACTORY = "__init__.py"


def speaks_http(module: str, name: str) -> bool:
    if module == "flask" or (module.startswith("flask.") and module != "flask.wrappers"):
        return name in HTTP_NAMES
    return module in RESPONSE_MODULES and name == "Response"


def http_imports(source: str, filename: str) -> list[str]:
    """`filename:line: name (from module)` for every HTTP name this source takes."""
    tree = ast.parse(source, filename)
    found: list[str] = []
    aliases: dict[str, str] = {}  # `import flask as f`: f -> flask
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [f"{filename}:{node.lineno}: {alias.name} (from {node.module})"
                      for alias in node.names if speaks_http(node.module, alias.name)]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "flask" or alias.name in RESPONSE_MODULES:
                    aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node.value)
            if dotted in aliases and speaks_http(aliases[dotted], node.attr):
                found.append(f"{filename}:{node.lineno}: {node.attr} (from {aliases[dotted]})")
    return sorted(found)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def outside_web(root: Path) -> list[Path]:
    """The package's modules that are not the web layer, the factory or the sandbox."""
    modules = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative != FACTORY and not relative.startswith(ALLOWED):
            modules.append(path)
    return modules


def boundary_report(root: Path) -> list[str]:
    return [hit for path in outside_web(root)
            for hit in http_imports(path.read_text(), f"{root.name}/{path.relative_to(root)}")]


# ---------------------------------------------------------------- the rule


def test_only_the_web_layer_imports_http() -> None:
    assert boundary_report(PACKAGE) == []


def test_the_rule_reads_the_whole_package() -> None:
    """A rule that read nothing would pass: the modules below web/ are all read, web/ not."""
    read = {p.relative_to(PACKAGE).as_posix() for p in outside_web(PACKAGE)}
    assert {"money.py", "i18n.py", "services/invoices.py", "urls.py"} <= read
    assert not any(name.startswith(("web/", "sandbox/")) for name in read)
    assert "__init__.py" not in read and "services/__init__.py" in read
    # ...and the web layer itself does speak HTTP: the checker would see it there.
    assert http_imports((PACKAGE / "web" / "customer.py").read_text(), "customer.py")


# ---------------------------------------------------------------- the checker itself


def test_every_http_name_is_named_with_its_file_and_line() -> None:
    source = ("from flask import current_app, request\n"
              "from werkzeug.wrappers import Response\n"
              "def f():\n"
              "    from flask import render_template, abort\n"
              "    return render_template('x.html')\n")
    assert http_imports(source, "shop/model.py") == [
        "shop/model.py:1: request (from flask)",
        "shop/model.py:2: Response (from werkzeug.wrappers)",
        "shop/model.py:4: abort (from flask)",
        "shop/model.py:4: render_template (from flask)",
    ]


def test_http_reached_through_the_module_counts_too() -> None:
    source = "import flask as f\nimport werkzeug\nx = f.request.args\ny = werkzeug.Response()\n"
    assert http_imports(source, "m.py") == ["m.py:3: request (from flask)",
                                            "m.py:4: Response (from werkzeug)"]


def test_what_is_not_http_passes() -> None:
    """App config, the app context, translations, typing and exceptions are no answer."""
    source = ("from flask import Flask, current_app, g, has_request_context, url_for\n"
              "from flask.typing import ResponseReturnValue\n"
              "from flask_babel import gettext\n"
              "from werkzeug.exceptions import BadRequest\n"
              "from werkzeug.wrappers import Request\n"
              "import requests\nr = requests.Response()\n")
    assert http_imports(source, "m.py") == []


def test_a_module_outside_web_is_named_and_web_is_left_alone(tmp_path: Path) -> None:
    package = tmp_path / "shop"
    for name, source in {"__init__.py": "from flask import Blueprint\n",
                         "web/__init__.py": "", "web/pages.py": "from flask import request\n",
                         "sandbox/api.py": "from flask import jsonify\n",
                         "services/__init__.py": "",
                         "services/orders.py": "def f():\n    from flask import redirect\n",
                         "money.py": "import decimal\n"}.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(source)
    assert boundary_report(package) == ["shop/services/orders.py:2: redirect (from flask)"]
