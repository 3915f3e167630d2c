"""State is passed explicitly (issue 15, docs/adr/0014-explicit-fan-out.md): no
`ContextVar` anywhere in the package (the subscription fan-out's group and the response
cache's read trace travel as arguments), and the websocket edge keeps no module-level
registry (shared groups live on the GraphQL view and are handed to each connection's
handler)."""

from __future__ import annotations

import ast
from pathlib import Path

import gql_inventory

_ROOT = Path(gql_inventory.__file__).parent
#: Packages a subscription's state passes through.
FAN_OUT = ("websocket", "live", "resolvers")
#: Calls that make a mutable container.
_MUTABLE_CALLS = {
    "dict",
    "list",
    "set",
    "deque",
    "defaultdict",
    "OrderedDict",
    "WeakKeyDictionary",
    "WeakValueDictionary",
    "WeakSet",
    "ContextVar",
}


def _sources(package: str) -> list[Path]:
    return sorted((_ROOT / package).rglob("*.py"))


def test_no_context_variable_anywhere() -> None:
    found = []
    for package in (".",):
        for path in _sources(package):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                name = None
                if isinstance(node, ast.Name):
                    name = node.id
                elif isinstance(
                    node, ast.Attribute
                ):  # structlog.contextvars (its logs) is not ours
                    name = node.attr if node.attr == "ContextVar" else None
                elif isinstance(node, ast.alias):
                    name = node.name.rpartition(".")[2]
                if name in ("ContextVar", "contextvars"):
                    found.append(f"{path.relative_to(_ROOT)}:{getattr(node, 'lineno', '?')}")
    assert found == []


def _mutable(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp):
        return True
    if isinstance(value, ast.SetComp):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        return name in _MUTABLE_CALLS
    return False


def test_no_module_level_mutable_registry_in_the_websocket_edge() -> None:
    found = []
    for path in _sources("websocket"):
        for node in ast.parse(path.read_text(), str(path)).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if _mutable(value):
                found.append(f"{path.relative_to(_ROOT)}:{node.lineno}")
    assert found == []
