"""How the schema executes: strawberry's executor without a subscription leak, and error logs.

graphql-core 3.3 runs each subscription event on a shallow copy of the
subscription's executor, and the copy shares the executor's memo of collected
subfields (`_relevant_sub_fields`). The memo is keyed by the identity of
per-event field lists, so every event adds entries that live as long as the
subscription: a few KB per event per subscriber, without bound. Each event here
gets its own memo (and stream-usage map), which the event's execution alone uses.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLError, GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext

from gql_inventory.kit.logs import get_logger
from gql_inventory.kit.outage import is_database_outage
from gql_inventory.schema.errors import should_mask

log = get_logger(__name__)

T = TypeVar("T")

_PER_EXECUTION_MEMOS = ("_relevant_sub_fields", "_stream_usages")


class SubscriptionSafeExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context with a fresh subfield memo per subscription event,
    and resolver helpers (`info.async_helpers`) that reach it through a weak reference."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # graphql-core binds the helpers to the executor: a reference cycle that kept every
        # request's executor, context and request for the cyclic collector (~70 objects a
        # request). Weakly bound, they go when the request does.
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=_weakly(self.gather_async_work), track=_weakly(self.track_async_work)
        )

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        for name in _PER_EXECUTION_MEMOS:
            memo = getattr(self, name, None)
            if memo is not None:
                setattr(executor, name, type(memo)())
        return executor


def _weakly(method: Callable[..., T]) -> Callable[..., T]:
    """`method`, called through a weak reference to its object (`ReferenceError` once
    the object is gone)."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any, **kwargs: Any) -> T:
        bound = ref()
        if bound is None:
            raise ReferenceError("the execution these helpers belong to is over")
        return bound(*args, **kwargs)

    return call


class InventorySchema(strawberry.Schema):
    """strawberry's Schema, logging client errors as one line and the rest with a traceback.

    A client error (a parse or validation error, or a `PublicError` such as FORBIDDEN or
    BAD_CURSOR) is the caller's mistake, not ours: one ``graphql.client_error`` line at
    INFO with its code. A database outage is ``graphql.database_unavailable`` at WARNING
    (the client gets 503). Anything else is a bug: ``graphql.error`` at ERROR with the
    traceback (the client sees it masked).
    """

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        operation = execution_context.operation_name if execution_context else None
        for error in errors:
            original = error.original_error
            path = ".".join(str(p) for p in error.path) if error.path else None
            if not should_mask(error):
                code = (error.extensions or {}).get("code", "GRAPHQL_VALIDATION_FAILED")
                log.info(
                    "graphql.client_error",
                    code=code,
                    message=error.message,
                    path=path,
                    operation=operation,
                )
            elif original is not None and is_database_outage(original):
                log.warning(
                    "graphql.database_unavailable",
                    error=f"{type(original).__name__}: {original}",
                    path=path,
                    operation=operation,
                )
            else:
                log.error(
                    "graphql.error",
                    message=error.message,
                    path=path,
                    operation=operation,
                    exc_info=original,
                )
