"""Parts of the HTTP edge: a byte-bounded document cache, text that PostgreSQL cannot
store, and errors (masking, database outages as 503); `schema.prepared` runs them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    StringValueNode,
)
from starlette.responses import Response
from strawberry.extensions import MaskErrors

from gql_inventory.kit.lru import LRU
from gql_inventory.kit.outage import is_database_outage
from gql_inventory.schema.errors import PublicError, ServiceUnavailable, should_mask

# Estimated memory of a cached document: the source text it keeps, plus its AST and
# token list (tracemalloc: ~395 bytes a token for a 4,800-token query, rounded up),
# plus a fixed part.
_BYTES_PER_TOKEN = 450
_ENTRY_OVERHEAD = 2048
#: A document's key: the SHA-256 digest of its text (`bytes` is a property below).
_Key = bytes


@dataclass
class _Entry:
    document: DocumentNode
    size: int
    errors: list[GraphQLError] | None = None


class DocumentCache:
    """Parsed documents and their validation errors, keyed by the SHA-256 of the text.

    Bounded by `max_bytes`, an estimate of the memory held (the text, 450 bytes a
    token, 2 KiB an entry); least recently used entries go first. One cache per
    schema, since validation depends on the schema's rules.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: LRU[_Key, _Entry] = LRU(max_bytes=max_bytes, max_entry_bytes=max_bytes // 8)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Estimated bytes held."""
        return self._entries.bytes

    @staticmethod
    def key(query: str) -> _Key:
        """SHA-256 digest of the query text (lone surrogates kept as they are)."""
        return hashlib.sha256(query.encode("utf-8", "surrogatepass")).digest()

    def get(self, key: _Key) -> _Entry | None:
        """The entry for `key`, marked as just used; None if absent."""
        return self._entries.get(key)

    def put(self, key: _Key, document: DocumentNode, query_bytes: int) -> _Entry | None:
        """Keep `document`; None (not kept) if it alone would take over an eighth of it all."""
        size = _ENTRY_OVERHEAD + query_bytes + _BYTES_PER_TOKEN * _tokens(document)
        entry = _Entry(document, size)
        return entry if self._entries.put(key, entry, size) else None


def _tokens(document: DocumentNode) -> int:
    """Tokens the document keeps (graphql-core links them all from its location)."""
    count = 0
    token = document.loc.start_token if document.loc else None
    while token is not None:
        count += 1
        token = token.next
    return count


def unstorable(text: str) -> bool:
    """True if PostgreSQL text cannot hold `text`: a NUL, or a lone UTF-16 surrogate."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _unstorable_path(value: Any) -> str | None:
    """Dotted path (``lines.0.sku``, ``""`` for the value itself) of the first bad string."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            if unstorable(item):
                return path
        elif isinstance(item, dict):
            pending.extend((f"{path}.{k}" if path else str(k), v) for k, v in item.items())
        elif isinstance(item, list):
            pending.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(item))
    return None


def _invalid_text(message: str, nodes: Any = None) -> GraphQLError:
    return GraphQLError(message, nodes, extensions={"code": "INVALID_INPUT"})


class UnstorableLiterals(ASTValidationRule):
    """Refuses string literals with NUL or lone surrogates (code ``INVALID_INPUT``)."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if unstorable(node.value):
            self.report_error(_invalid_text("text may not contain NUL or lone surrogates", node))


def unstorable_variables_error(variables: dict[str, Any] | None) -> GraphQLError | None:
    """The error for the first variable holding text PostgreSQL cannot store, or None.

    It names the variable and the path in it (``Variable $input at lines.0.sku: ...``),
    code ``INVALID_INPUT``; the request is refused before execution, nothing runs.
    (Without this a NUL reached asyncpg and came back masked.)
    """
    for name, value in (variables or {}).items():
        path = _unstorable_path(value)
        if path is not None:
            where = f"${name}" + (f" at {path}" if path else "")
            return _invalid_text(f"Variable {where}: text may not contain NUL or lone surrogates")
    return None


class EdgeErrors(MaskErrors):
    """`MaskErrors` with our rule (`should_mask`), and database outages made public.

    An error caused by an unreachable database becomes ``SERVICE_UNAVAILABLE``
    (with ``retryAfter`` seconds) and the HTTP answer 503 with `Retry-After`.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__(should_mask_error=should_mask)
        self.retry_after = retry_after

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        outage = False
        public: list[GraphQLError] = []
        for error in errors:
            original = error.original_error
            if (
                original is not None
                and not isinstance(original, PublicError)
                and is_database_outage(original)
            ):
                outage = True
                replacement = ServiceUnavailable(self.retry_after)
                error = GraphQLError(
                    replacement.message,
                    nodes=error.nodes,
                    source=error.source,
                    positions=error.positions,
                    path=error.path,
                    original_error=replacement,
                    extensions=replacement.extensions,
                )
            public.append(error)
        if outage:
            response = getattr(self.execution_context.context, "response", None)
            if isinstance(response, Response):
                response.status_code = 503
                response.headers["Retry-After"] = str(self.retry_after)
        return super()._process_errors(public)
