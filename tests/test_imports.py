"""The module graph of `gql_inventory`: the domain knows nothing of GraphQL, and no
module imports itself back through others.

Imports are read from the source with `ast` (nothing is executed), every one of
them: at module top, inside functions (deferred imports still tie modules
together) and under ``if TYPE_CHECKING:`` (a type-only cycle is still a cycle a
reader has to untangle). Migrations are scripts loaded by Alembic, not modules of
the package graph, and are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import gql_inventory
from gql_inventory.domain.errors import ErrorCode
from gql_inventory.schema.enums import UserErrorCode
from gql_inventory.schema.payloads import USER_ERROR_CODES

_ROOT = Path(gql_inventory.__file__).parent
_GRAPHQL_LIBRARIES = ("strawberry", "starlette", "graphql")
#: The domain packages: stock, orders and the kernel they share.
DOMAIN = ("gql_inventory.domain", "gql_inventory.stock", "gql_inventory.orders")


def _modules() -> dict[str, Path]:
    """``{dotted name: source file}`` of every module under the package (read from disk)."""
    found: dict[str, Path] = {}
    for path in sorted(_ROOT.rglob("*.py")):
        parts = path.relative_to(_ROOT.parent).with_suffix("").parts
        if "migrations" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imported(name: str, path: Path) -> Iterator[str]:
    """Every absolute module name `path` imports (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    """``{module: modules it imports}``: gql_inventory modules and top-level libraries."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for imported in _imported(name, path):
            if imported in modules:
                targets.add(imported)
            elif not imported.startswith("gql_inventory"):
                targets.add(imported.split(".")[0])
        targets.discard(name)
        graph[name] = targets
    return graph


def _reach(graph: dict[str, set[str]], start: str) -> dict[str, list[str]]:
    """Everything reachable from `start`, each with one import chain leading to it."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop()
        for nxt in sorted(graph.get(current, ())):
            if nxt not in chains:
                chains[nxt] = [*chains[current], nxt]
                todo.append(nxt)
    return chains


def test_the_domain_imports_no_graphql_or_web_library() -> None:
    graph = _graph()
    domain = [m for m in graph if any(m.startswith(f"{p}.") or m == p for p in DOMAIN)]
    assert domain, "no domain modules found"
    leaks = []
    for module in domain:
        for target, chain in _reach(graph, module).items():
            if target in _GRAPHQL_LIBRARIES:
                leaks.append(" -> ".join(chain))
    assert leaks == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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
    return found


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` re-exporting its submodules is not a circle: importing
    ``pkg.sub`` runs ``pkg/__init__`` first by Python's rules, whoever imports it. Edges
    from a module to its own parent packages are dropped."""
    return {
        name: {t for t in targets if not name.startswith(f"{t}.")}
        for name, targets in graph.items()
    }


def test_no_import_circle() -> None:
    cycles = _cycles(_without_package_inits(_graph()))
    assert cycles == []


def test_every_domain_error_code_is_a_contract_code() -> None:
    assert set(USER_ERROR_CODES) == set(ErrorCode)
    assert {c.name for c in UserErrorCode} == {c.name for c in ErrorCode}
    assert all(USER_ERROR_CODES[c].value == c.value for c in ErrorCode)
