"""Which requests the response cache may keep: one query operation whose root fields are
all on the whitelist of stock and catalog reads (read-model answers only, no secrets).

A whitelist, not a blacklist: a root field added to `Query` later is not cached until it
is named here, and a field is named here only when its resolvers read through
`gql_inventory.readmodel.loaders` (which mark every SQL fallback in the request's trace).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)

from gql_inventory.kit.lru import LRU

#: Root fields of `Query` whose answers come from the read model (projection + snapshot).
READ_FIELDS = frozenset({"product", "products", "variant", "variants", "locations"})

_ROOT_TYPE = "Query"
_ALWAYS = frozenset({"__typename"})


class ReadOperations:
    """Classifies request bodies; verdicts per (document text, operation name) are kept
    for the `memo_entries` most recent documents of at most `memo_text` characters each.

    `fields` is the root-field whitelist; `max_tokens` bounds the parse (as the schema's).
    """

    def __init__(
        self,
        fields: frozenset[str] = READ_FIELDS,
        *,
        max_tokens: int | None = None,
        memo_entries: int = 512,
        memo_text: int = 8192,
    ) -> None:
        self.fields = fields | _ALWAYS
        self.max_tokens = max_tokens
        self.memo_entries = memo_entries
        self.memo_text = memo_text
        self._memo: LRU[tuple[str, str | None], bool] = LRU(
            max_bytes=memo_entries * memo_text, max_entry_bytes=memo_text, max_entries=memo_entries
        )

    def post(self, body: bytes) -> bool:
        """True for a JSON object body naming a whitelisted read (``query``, optional
        ``operationName`` and ``variables``; no ``extensions``)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return False
        return isinstance(data, dict) and self._request(data)

    def get(self, query_string: bytes) -> bool:
        """The same for a GET query string (``variables`` as JSON text), read as Starlette
        reads it (latin-1, blank values kept, the last of repeated names)."""
        params: dict[str, Any] = dict(
            parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        )
        raw = params.get("variables")
        if raw:
            try:
                params["variables"] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return False
        return self._request(params)

    def _request(self, data: Mapping[str, Any]) -> bool:
        query = data.get("query")
        name = data.get("operationName")
        variables = data.get("variables")
        if not isinstance(query, str) or not (name is None or isinstance(name, str)):
            return False
        if not (variables is None or isinstance(variables, dict)) or data.get("extensions"):
            return False
        return self.document(query, name)

    def document(self, query: str, operation_name: str | None) -> bool:
        """True when the operation `operation_name` picks (the only one when None) is a
        query whose root selections, through fragments, are all whitelisted fields."""
        return self._memo.memo(
            (query, operation_name), len(query), lambda: self._classify(query, operation_name)
        )

    def _classify(self, query: str, operation_name: str | None) -> bool:
        try:
            document = parse(query, no_location=True, max_tokens=self.max_tokens)
        except GraphQLError:
            return False
        operation = _operation(document, operation_name)
        if operation is None or operation.operation != OperationType.QUERY:
            return False
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        return self._roots_allowed(operation.selection_set, fragments, set())

    def _roots_allowed(
        self,
        selections: SelectionSetNode,
        fragments: dict[str, FragmentDefinitionNode],
        seen: set[str],
    ) -> bool:
        """Whether every root selection is whitelisted. `seen`: fragments already walked
        (or being walked), shared across the whole walk, so each fragment is visited once
        however often it is spread: a fragment bomb (fragments spreading each other twice,
        n deep) costs n visits, not 2^n (tests/test_edge_graphql.py)."""
        for node in selections.selections:
            if isinstance(node, FieldNode):
                if node.name.value not in self.fields:
                    return False
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                if condition is not None and condition.name.value != _ROOT_TYPE:
                    return False
                if not self._roots_allowed(node.selection_set, fragments, seen):
                    return False
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = fragments.get(name)
                if fragment is None or fragment.type_condition.name.value != _ROOT_TYPE:
                    return False
                if name in seen:
                    continue  # already walked (or a cycle: validation refuses it anyway)
                seen.add(name)
                if not self._roots_allowed(fragment.selection_set, fragments, seen):
                    return False
            else:
                return False
        return True


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    named = [o for o in operations if o.name is not None and o.name.value == name]
    return named[0] if len(named) == 1 else None
