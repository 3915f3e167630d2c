"""The explicit link between a subscription stream and what writes its results
(`StreamLink`): a run of `gql_inventory.websocket.fanout` (given to the stream as
`info.context.fanout`) or `Alone`, for an operation Strawberry's handler runs itself
(docs/adr/0014-explicit-fan-out.md)."""

from __future__ import annotations

from typing import Protocol

from starlette.websockets import WebSocket

from gql_inventory.kit import metrics
from gql_inventory.websocket.limits import SLOW_CLOSE_CODE, close_soon, is_closing


class StreamLink(Protocol):
    """What a subscription stream tells the side that writes its results (a `Run` or
    `Alone`): when it is registered with the hub, which ledger position it yields, when
    it may hand over, and how to close its socket(s) when it overflows."""

    @property
    def closing(self) -> bool:
        """True once the socket(s) the stream writes to are being closed by the server."""
        ...

    @property
    def counted_by_hub(self) -> bool:
        """Whether the hub's subscribers gauge counts the stream (else the run counts its
        members)."""
        ...

    def attached(self) -> None:
        """The stream registered with the hub."""

    def detached(self) -> None:
        """The stream left the hub."""

    def overflowed(self, reason: str) -> None:
        """The stream fell behind the hub: close its socket(s) with 4008 and `reason`."""

    def sending(self, position: int) -> None:
        """The next result is the ledger event at `position`."""

    def sent(self) -> None:
        """One result went out (metrics: `Alone` counts it, a run counts its writes)."""

    def hand_over(self, position: int) -> bool:
        """Everything up to `position` was sent and nothing waits: True when the stream's
        member moved to a live group (the stream then ends without a `complete`)."""


class Alone:
    """The `StreamLink` of an operation that Strawberry's handler runs itself (on the
    connection's own context): closing means closing its websocket."""

    __slots__ = ("kind", "request")

    counted_by_hub = True

    def __init__(self, request: object, kind: str) -> None:
        self.request = request
        self.kind = kind

    @property
    def closing(self) -> bool:
        """True once the server closes the operation's websocket."""
        return isinstance(self.request, WebSocket) and is_closing(self.request)

    def attached(self) -> None:
        """Nothing to do: the hub counts the subscriber."""

    def detached(self) -> None:
        """Nothing to do: the hub counts the subscriber."""

    def overflowed(self, reason: str) -> None:
        """Close the websocket with 4008 and `reason` (once)."""
        if isinstance(self.request, WebSocket):
            close_soon(self.request, SLOW_CLOSE_CODE, reason)

    def sending(self, position: int) -> None:
        """Nothing to do: Strawberry writes the result."""

    def sent(self) -> None:
        """Count one event sent."""
        metrics.EVENTS_SENT.labels(self.kind).inc()

    def hand_over(self, position: int) -> bool:
        """Never: it runs alone to the end."""
        return False
