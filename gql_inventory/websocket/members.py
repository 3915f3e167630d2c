"""One subscribe operation of a run (`Member`) and the hand-stepped write it may leave
pending (`Continue`): gql_inventory.websocket.fanout writes without a task per member."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Protocol

from starlette.websockets import WebSocket

from gql_inventory.edge.websocket_protocol import FRAMED_SEND, SendFramed


class HasMembers(Protocol):
    """What a member knows of the run it is in (`gql_inventory.websocket.fanout.Run`)."""

    def leave(self, member: Member) -> None:
        """Remove `member` (idempotent)."""


class Continue:
    """Awaitable finishing a coroutine that was stepped once by hand and suspended on
    `first` (what `asyncio.eager_task_factory` does in Python 3.12)."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, None], first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, None]:
        suspended = self.first
        while True:
            try:
                value = yield suspended
            except BaseException as exc:  # cancellation included: hand it to the coroutine
                try:
                    suspended = self.coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    suspended = self.coro.send(value)
                except StopIteration:
                    return


class Member:
    """One subscribe operation in a run: its socket, its id, the run it is in (`run`,
    which changes when a catch-up hands it over), the server's framed write (`send_framed`,
    None under a server without `gql_inventory.edge.websocket_protocol`), and (while its
    socket is slow) a backlog of encoded messages with the task draining it."""

    __slots__ = (
        "backlog",
        "counted",
        "drain",
        "id_json",
        "on_end",
        "op_id",
        "run",
        "send_framed",
        "skip_through",
        "websocket",
    )

    def __init__(
        self,
        websocket: WebSocket,
        op_id: str,
        on_end: Callable[[Member], None],
        skip_through: int = 0,
    ) -> None:
        self.websocket = websocket
        self.skip_through = skip_through
        self.op_id = op_id
        self.id_json = json.dumps(op_id)
        self.on_end = on_end
        self.run: HasMembers | None = None
        self.backlog: deque[str] | None = None
        self.drain: asyncio.Task[None] | None = None
        self.counted = False
        extensions = websocket.scope.get("extensions") or {}
        self.send_framed: SendFramed | None = extensions.get(FRAMED_SEND)
