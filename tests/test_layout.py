"""Where code lives (issue 9, item 5): the GraphQL layer the Strawberry way.

Resolvers and the webhook route run no SQL (reads live in the domain packages),
admin fields declare the `IsAdmin` permission instead of calling a check, the Stripe
event builder is development tooling, and ledger rows are typed.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from strawberry.permission import PermissionExtension

from gql_inventory.resolvers.access import IsAdmin
from gql_inventory.schema import build_schema
from gql_inventory.schema.errors import Forbidden

PACKAGE = Path(__file__).resolve().parent.parent / "gql_inventory"

_NOT_YET: set[str] = set()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _layer_modules() -> list[Path]:
    resolvers = [p for p in (PACKAGE / "resolvers").glob("*.py") if p.name not in _NOT_YET]
    return sorted([*resolvers, *(PACKAGE / "webhooks").glob("*.py")])


@pytest.mark.parametrize("path", _layer_modules(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_resolvers_and_the_webhook_route_run_no_sql(path: Path) -> None:
    """SQLAlchemy and the tables are the domain's: the edge calls read and write functions.

    Only the session and connection types (`sqlalchemy.ext.asyncio`) pass through.
    """
    offending = sorted(
        name
        for name in _imports(path)
        if (name.split(".")[0] == "sqlalchemy" and not name.startswith("sqlalchemy.ext.asyncio"))
        or name.startswith("gql_inventory.models")
    )
    assert offending == []


def test_domain_read_modules_do_not_import_strawberry() -> None:
    offending = sorted(
        p.name
        for package in ("domain", "stock", "orders")
        for p in (PACKAGE / package).glob("*.py")
        if any(name.split(".")[0] == "strawberry" for name in _imports(p))
    )
    assert offending == []


ADMIN_FIELDS = {
    ("Query", "stockMovements"),
    ("Mutation", "adjustStock"),
    ("Mutation", "setStock"),
    ("Mutation", "refundOrder"),
    ("Mutation", "cancelOrder"),
}


def _permissions(schema_type: str, field_name: str) -> list[type]:
    schema = build_schema()
    definition = schema.get_type_by_name(schema_type)
    assert definition is not None
    convert = schema.config.name_converter.get_graphql_name
    field = next(f for f in definition.fields if convert(f) == field_name)
    return [
        type(permission)
        for extension in field.extensions
        if isinstance(extension, PermissionExtension)
        for permission in extension.permissions
    ]


@pytest.mark.parametrize(("schema_type", "field_name"), sorted(ADMIN_FIELDS))
def test_admin_fields_declare_the_is_admin_permission(schema_type: str, field_name: str) -> None:
    assert _permissions(schema_type, field_name) == [IsAdmin]


def test_public_fields_declare_no_permission() -> None:
    assert _permissions("Query", "products") == []
    assert _permissions("Mutation", "reserveStock") == []


def test_is_admin_refuses_with_the_forbidden_code() -> None:
    with pytest.raises(Forbidden) as refused:
        IsAdmin().on_unauthorized()
    assert str(refused.value) == "admin token required"
    assert refused.value.extensions == {"code": "FORBIDDEN"}


def test_stripe_event_builder_is_development_tooling() -> None:
    assert importlib.util.find_spec("gql_inventory.webhooks.events") is None
    assert importlib.util.find_spec("gql_inventory.devtools.stripe_events") is not None
    # The served app never loads it.
    probe = (
        "import sys, gql_inventory.app; "
        "print(any(m.startswith('gql_inventory.devtools') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"


def test_schema_modules_hold_no_row_shims() -> None:
    """Types are built from typed rows (dataclasses from the domain), not attribute shims."""
    offending = sorted(
        p.name for p in (PACKAGE / "schema").glob("*.py") if "__getattr__" in p.read_text()
    )
    assert offending == []


@pytest.mark.parametrize("package", ["schema", "resolvers", "webhooks", "devtools"])
def test_graphql_layer_modules_stay_under_400_lines(package: str) -> None:
    long = {
        p.name: n
        for p in (PACKAGE / package).glob("*.py")
        if p.name not in _NOT_YET and (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def _module_lengths() -> dict[str, int]:
    """Lines of every module of the package, migration scripts left out."""
    versions = PACKAGE / "migrations" / "versions"
    return {
        str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
        for p in sorted(PACKAGE.rglob("*.py"))
        if not p.is_relative_to(versions)
    }


def test_no_module_passes_400_lines() -> None:
    """Issue 9's done-when: a module longer than this is split by concern."""
    lengths = _module_lengths()
    assert "cli/__init__.py" in lengths or "cli.py" in lengths  # the walk sees the package
    assert {name: n for name, n in lengths.items() if n > 400} == {}


def test_the_package_root_holds_wiring_only() -> None:
    """Issue 15: at most 8 modules at the root; everything else lives in a folder named
    after its job, each with a one-line docstring in its ``__init__.py``."""
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= 8, root
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.parent.name}/__init__.py has no docstring"


#: The domain packages, which never commit (issue 15): the caller owns the transaction.
_DOMAIN_DIRS = ("domain", "stock", "orders")
_COMMITS = re.compile(r"\.commit\(|\bCOMMIT\b|\.transaction\(|\.begin\(")
_LEVEL_WRITES = re.compile(r"UPDATE\s+stock_levels|update\(StockLevel\)", re.IGNORECASE)
_LEVEL_LOCKS = re.compile(
    r"FROM\s+stock_levels\b[^;\"]*?FOR\s+UPDATE|StockLevel\)[^;]*with_for_update", re.IGNORECASE
)


@pytest.mark.parametrize("package", _DOMAIN_DIRS)
def test_the_domain_never_commits(package: str) -> None:
    """No COMMIT, no transaction opened (`transaction(`, `begin(`) under the domain."""
    found = {
        str(p.relative_to(PACKAGE)): _COMMITS.findall(p.read_text())
        for p in sorted((PACKAGE / package).rglob("*.py"))
    }
    assert {name: hits for name, hits in found.items() if hits} == {}


def _modules_matching(pattern: re.Pattern[str]) -> list[str]:
    versions = PACKAGE / "migrations"
    return sorted(
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if not p.is_relative_to(versions) and pattern.search(p.read_text())
    )


def test_one_module_changes_stock_levels() -> None:
    """Exactly one module holds SQL that updates `stock_levels` (issue 15, ADR 0013)."""
    assert _modules_matching(_LEVEL_WRITES) == ["stock/ledger.py"]


def test_one_module_locks_stock_levels_for_a_change() -> None:
    """...and the same module is the only one that locks levels FOR UPDATE."""
    assert _modules_matching(_LEVEL_LOCKS) == ["stock/ledger.py"]


def test_reserve_stock_has_one_result_type() -> None:
    """The resolver gets one shape whatever the request (keyed or not, batched or alone)."""
    from typing import get_type_hints

    from gql_inventory.domain.rows import ReservationRow
    from gql_inventory.reserving.front import reserve_stock

    assert get_type_hints(reserve_stock)["return"] is ReservationRow
    source = (PACKAGE / "resolvers" / "reservations.py").read_text()
    assert "isinstance(reserved" not in source


def test_the_stripe_route_verifies_calls_one_use_case_and_answers() -> None:
    """Issue 15: the handler table, the savepoint and its rewind, and payment-event writes
    are the domain's (`orders.stripe_events`); the route is short."""
    route = PACKAGE / "webhooks" / "stripe.py"
    source = route.read_text()
    assert len(source.splitlines()) < 120
    for domain_work in ("begin_nested", "rewind", "record_payment_event", "HANDLERS"):
        assert domain_work not in source, domain_work
    called = {
        name for name in _imports(route) if name.startswith("gql_inventory.orders.stripe_events.")
    }
    assert "gql_inventory.orders.stripe_events.apply_event" in called


def _package_modules() -> dict[str, ast.AST]:
    return {
        str(p.relative_to(PACKAGE)): ast.parse(p.read_text())
        for p in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in p.parts
    }


def test_one_lru() -> None:
    """Issue 15: one least-recently-used store (`kit.lru.LRU`); `lru_cache` only for the
    process's one settings object."""
    ordered, memoized = set(), set()
    for name, tree in _package_modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Name | ast.Attribute):
                word = node.id if isinstance(node, ast.Name) else node.attr
                if word in ("OrderedDict", "move_to_end", "popitem"):
                    ordered.add(name)
                if word == "lru_cache":
                    memoized.add(name)
    assert ordered == {"kit/lru.py"}
    assert memoized == {"settings.py"}


def test_one_re_cancel_loop() -> None:
    """Issue 15: cancelling until a task ends is written once (`kit.tasks.reap`)."""
    looping = set()
    for name, tree in _package_modules().items():
        for loop in ast.walk(tree):
            if not isinstance(loop, ast.While):
                continue
            for node in ast.walk(loop):
                call = node.func if isinstance(node, ast.Call) else None
                if isinstance(call, ast.Attribute) and call.attr == "cancel":
                    looping.add(name)
    assert looping == {"kit/tasks.py"}


def test_one_location_source() -> None:
    """Issue 15: events and queries read locations from the catalog snapshot (through
    `readmodel.loaders`); no per-process TTL location cache."""
    assert importlib.util.find_spec("gql_inventory.readmodel.locations") is None
    assert "monotonic" not in (PACKAGE / "schema" / "events.py").read_text()
