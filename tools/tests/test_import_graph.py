"""The house plan (issue 18, item 3): no import cycle among the nixecs modules.

Every import counts, at module level or inside a function (a lazy import is still a
dependency: `commands` calling into `aws.commands` while `aws.commands` calls into `commands`
is a cycle whichever of them defers its import). Imports under `if TYPE_CHECKING:` are
annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "nixecs"


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module → the nixecs modules it imports (a `from P import m` of a submodule: P.m)."""
    paths = {_module_name(p, package.parent): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    if node.module:
                        base.append(node.module)
                    source = ".".join(base)
                else:
                    source = node.module or ""
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in paths else source
                    for alias in node.names
                ]
            graph[name] |= {t for t in targets if t in paths and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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
            connect(node)
    return found


def test_no_import_cycle_among_nixecs_modules() -> None:
    graph = import_graph()
    assert {"nixecs.cli", "nixecs.fleet.loader", "nixecs.host.boot"} <= set(graph)  # real
    assert cycles(graph) == []


def test_a_cycle_through_a_lazy_import_is_found(tmp_path: Path) -> None:
    """The checker itself: a function-level import closing a loop is a cycle; one under
    TYPE_CHECKING is not."""
    root = tmp_path / "nixecs"
    (root / "aws").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "aws/__init__.py").write_text("")
    (root / "commands.py").write_text("def f():\n    from .aws.commands import g\n")
    (root / "aws/commands.py").write_text("def g():\n    from ..commands import f\n")
    (root / "model.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .view import V\n"
    )
    (root / "view.py").write_text("from . import model\n")
    graph = import_graph(root)
    assert graph["nixecs.view"] == {"nixecs.model"}
    assert cycles(graph) == [["nixecs.aws.commands", "nixecs.commands"]]
