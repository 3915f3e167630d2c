"""The edge's per-request work in one schema extension with one hook: limits, the
document cache, variables PostgreSQL cannot store, error masking and the latency metric.

strawberry builds every extension anew per request and, for each of its four phases,
wraps each extension's hook in a context manager: seven small extensions cost more
than the parse they saved (``{ __typename }``: 97 µs in `Schema.execute` with seven,
see docs/adr/0011-request-path.md). `EdgeRequest` does it all from `on_operation`:

- a document seen before (the SHA-256 of its text, `DocumentCache`) comes with its
  validation result, so a repeat skips parsing, the cost rule and validation;
- a new one is parsed (`MAX_TOKENS`), measured (`schema.cost`, linear, before
  graphql-core's quadratic field-merge rule) and validated here, and both the
  document and its errors are cached; a text that does not parse is left to
  strawberry, which parses it again and reports the error (never cached);
- strawberry then finds the document and the errors in place and skips its own
  parsing and validation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from graphql import ASTValidationRule, DocumentNode, GraphQLError, parse
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from gql_inventory.schema.cost import Limits, cost_errors
from gql_inventory.schema.edge import DocumentCache, EdgeErrors, unstorable_variables_error
from gql_inventory.schema.timing import observe_operation


@dataclass(frozen=True)
class EdgeConfig:
    """What every request of one schema shares: `limits` (depth, aliases, selections),
    the extra validation `rules`, `max_tokens` of a document, the `Retry-After` seconds
    of an outage's 503, and the `cache` (None: every request parses and validates)."""

    limits: Limits
    rules: tuple[type[ASTValidationRule], ...]
    max_tokens: int
    retry_after: int
    cache: DocumentCache | None


class EdgeRequest(EdgeErrors):
    """One request's edge work (see the module); build one per request from `config`."""

    def __init__(self, config: EdgeConfig) -> None:
        super().__init__(config.retry_after)
        self.config = config

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        context = self.execution_context
        self._prepare(context)
        error = unstorable_variables_error(context.variables)
        if error is not None:  # execution is skipped; validation errors still come first
            context.result = GraphQLExecutionResult(data=None, errors=[error])
        yield from super().on_operation()  # masking and the outage's 503
        observe_operation(context, time.perf_counter() - started)

    def _process_result(self, result: object) -> None:
        """Mask `result.errors` (when it has any): strawberry's own check is an isinstance
        against a runtime-checkable Protocol, ~10 µs a request; this reads the attribute."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def _prepare(self, context: ExecutionContext) -> None:
        config = self.config
        context.parse_options["max_tokens"] = config.max_tokens
        context.validation_rules = context.validation_rules + config.rules
        query = context.query
        if not query or context.graphql_document is not None:
            return
        cache = config.cache
        key = DocumentCache.key(query) if cache is not None else None
        entry = cache.get(key) if cache is not None and key is not None else None
        if entry is not None and entry.errors is not None:
            document, errors = entry.document, entry.errors
        else:
            try:
                document = parse(query, max_tokens=config.max_tokens)
            except Exception:  # strawberry parses it again and reports the error
                return
            errors = self._validate(context, document)
            if cache is not None and key is not None:
                stored = cache.put(key, document, len(query))
                if stored is not None:
                    stored.errors = errors
        context.graphql_document = document
        context.pre_execution_errors = list(errors)

    def _validate(self, context: ExecutionContext, document: DocumentNode) -> list[GraphQLError]:
        """The cost rule first (linear); graphql-core's validation only when it passes."""
        errors = cost_errors(document, self.config.limits)
        if errors:
            return errors
        return validate_document(context.schema._schema, document, context.validation_rules)


__all__ = ["EdgeConfig", "EdgeRequest"]
