"""The graphql-core executor the schema uses: strawberry's, without a subscription leak.

graphql-core 3.3 runs each subscription event on a shallow copy of the
subscription's executor, and the copy shares the executor's memo of collected
subfields (`_relevant_sub_fields`). The memo is keyed by the identity of
per-event field lists, so every event adds entries that live as long as the
subscription: a few KB per event per subscriber, without bound. Each event here
gets its own memo (and stream-usage map), which the event's execution alone uses.
"""

from __future__ import annotations

from typing import Any

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

_PER_EXECUTION_MEMOS = ("_relevant_sub_fields", "_stream_usages")


class SubscriptionSafeExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context with a fresh subfield memo per subscription event."""

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        for name in _PER_EXECUTION_MEMOS:
            memo = getattr(self, name, None)
            if memo is not None:
                setattr(executor, name, type(memo)())
        return executor
