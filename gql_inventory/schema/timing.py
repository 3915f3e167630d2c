"""Request latency per GraphQL operation (`gql_inventory_graphql_operation_seconds`)."""

from __future__ import annotations

from strawberry.types import ExecutionContext

from gql_inventory.kit import metrics


def observe_operation(context: ExecutionContext, seconds: float) -> None:
    """Observe one operation's time (parsing, validation and execution) in seconds,
    labelled by operation name (`kit.metrics.operation_label`: named operations only,
    bounded) and type (query, mutation, subscription; ``unknown`` when the document
    did not parse). `schema.prepared.EdgeRequest` calls it once per request."""
    try:
        kind = context.operation_type.value
    except Exception:  # no parsed document: nothing to tell the type by
        kind = "unknown"
    metrics.GRAPHQL_LATENCY.labels(metrics.operation_label(context.operation_name), kind).observe(
        seconds
    )
