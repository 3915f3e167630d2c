"""Request latency per GraphQL operation (`gql_inventory_graphql_operation_seconds`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from gql_inventory import metrics


class OperationLatency(SchemaExtension):
    """Observes each request's execution time in seconds, labelled by operation name
    (`metrics.operation_label`: named operations only, bounded) and type (query,
    mutation, subscription; ``unknown`` when the document did not parse)."""

    def on_operation(self) -> Iterator[None]:
        """Time the whole operation: parsing, validation and execution."""
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        context = self.execution_context
        try:
            kind = context.operation_type.value
        except Exception:  # no parsed document: nothing to tell the type by
            kind = "unknown"
        metrics.GRAPHQL_LATENCY.labels(
            metrics.operation_label(context.operation_name), kind
        ).observe(elapsed)
