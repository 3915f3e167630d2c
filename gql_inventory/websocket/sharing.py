"""Which subscribe operations may share one execution, and under which key.

See `gql_inventory.websocket.fanout` for the groups themselves and
docs/adr/0010-shared-subscription-execution.md for the rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    NullValueNode,
    OperationType,
    VariableNode,
    parse,
)
from graphql.utilities import get_operation_ast

from gql_inventory.kit.lru import LRU

#: Root fields that may share: field -> (metrics kind, arguments that need a run of their
#: own when set). Such a field yields nothing when it starts (a late joiner misses
#: nothing) and its events depend only on its arguments and the caller's role.
SHAREABLE: Mapping[str, tuple[str, tuple[str, ...]]] = MappingProxyType(
    {"stockChanged": ("stock", ("after",))}
)
#: Documents longer than this run alone (the shape cache holds the text).
MAX_SHARED_DOCUMENT = 8192

#: (document, operation name, variables as canonical JSON without the cursor, admin?)
GroupKey = tuple[str, str | None, str, bool]
Shape = tuple[str, tuple[str, ...]]
#: Shapes of the 256 documents last asked about (each at most `MAX_SHARED_DOCUMENT`).
_SHAPES: LRU[tuple[str, str | None], Shape | None] = LRU(
    max_bytes=256 * MAX_SHARED_DOCUMENT, max_entry_bytes=MAX_SHARED_DOCUMENT, max_entries=256
)


def shared_shape(query: str, operation_name: str | None) -> Shape | None:
    """``(metrics kind, variables that force a run of its own when non-null)`` when the
    operation may share, else None: it must parse, be a subscription whose only root
    selection is a `SHAREABLE` field without directives, and give its solo-only
    arguments as null or as variables without a non-null default."""
    if len(query) > MAX_SHARED_DOCUMENT:
        return None
    return _SHAPES.memo((query, operation_name), len(query), lambda: _shape(query, operation_name))


def _shape(query: str, operation_name: str | None) -> Shape | None:
    try:
        document = parse(query, no_location=True)
    except GraphQLError:
        return None  # Strawberry answers it (4400)
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation != OperationType.SUBSCRIPTION:
        return None
    selections = operation.selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return None
    field = selections[0]
    spec = SHAREABLE.get(field.name.value)
    if spec is None or field.directives:
        return None
    kind, solo_arguments = spec
    defaults = {
        d.variable.name.value: d.default_value for d in operation.variable_definitions or ()
    }
    solo_variables: list[str] = []
    for argument in field.arguments or ():
        if argument.name.value not in solo_arguments:
            continue
        value = argument.value
        if isinstance(value, VariableNode):
            default = defaults.get(value.name.value)
            if default is not None and not isinstance(default, NullValueNode):
                return None
            solo_variables.append(value.name.value)
        elif not isinstance(value, NullValueNode):
            return None
    return kind, tuple(solo_variables)


def group_key(
    query: str,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    admin: bool,
    *,
    resuming: bool = False,
) -> tuple[GroupKey, str] | None:
    """``(key, metrics kind)``: the key operations share under; None when this one runs
    alone (not shareable, variables that are not JSON). `resuming=False`: None when a
    resume cursor is given; `resuming=True`: only then, with the key of the group it may
    join once caught up (the cursor is left out of the key)."""
    shape = shared_shape(query, operation_name)
    if shape is None or not isinstance(variables or {}, dict):
        return None
    values = dict(variables or {})
    cursor = any(values.pop(name, None) is not None for name in shape[1])
    if cursor != resuming:
        return None
    try:
        canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return (query, operation_name, canonical, admin), shape[0]
