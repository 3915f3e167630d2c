"""Our graphql-transport-ws handler: Strawberry's, with a shutdown that always ends.

Strawberry's handler cancels each operation task when the connection ends (client
close, a protocol error it answers with 4400/4409/4429, our 4008, server shutdown)
and then awaits each task with no bound. A task that lost its cancellation (on
Python 3.11 `asyncio.wait_for` swallows one that races its inner future, CPython
gh-86296) never ends, so the ASGI call never returned: the connection counter, the
hub subscription and its buffer were kept for ever, and a server shutdown waited
for it. Here the tasks are cancelled again until they end (bounded), and nothing is
sent on a connection the server is closing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from starlette.websockets import WebSocket
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message

from gql_inventory.live.wslimit import is_closing, mark_closing
from gql_inventory.logs import get_logger

log = get_logger(__name__)

#: Seconds an operation task gets to end after a cancellation before it is cancelled again.
RECANCEL_SECONDS = 1.0
#: Cancellations tried before giving up on a task (it is then logged and left behind).
MAX_CANCELS = 10


async def reap(tasks: Iterable[asyncio.Task[Any]], *, interval: float = RECANCEL_SECONDS) -> int:
    """Cancel `tasks` and wait until they are done, cancelling again those that swallowed
    the cancellation (every `interval` seconds, at most `MAX_CANCELS` times). Returns how
    many had to be cancelled more than once. If the caller is cancelled meanwhile, the
    tasks are cancelled once more and the cancellation propagates."""
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    again = 0
    attempts = 1
    try:
        while pending:
            _, pending = await asyncio.wait(pending, timeout=interval)
            if not pending:
                break
            if attempts >= MAX_CANCELS:
                log.error("websocket.operation_not_cancellable", tasks=len(pending))
                break
            attempts += 1
            for task in pending:
                again += 1
                log.warning("websocket.operation_cancel_lost", task=task.get_name())
                task.cancel()
    except asyncio.CancelledError:
        for task in pending:
            task.cancel()
        raise
    return again


class InventoryTransportWSHandler(BaseGraphQLTransportWSHandler[Any, None]):
    """graphql-transport-ws (Strawberry's) whose every close path frees its operations."""

    @property
    def _socket(self) -> WebSocket | None:
        ws = getattr(self.websocket, "ws", None)
        return ws if isinstance(ws, WebSocket) else None

    async def shutdown(self) -> None:
        """Stop the init timer and every operation; returns once their tasks are done."""
        socket = self._socket
        if socket is not None:
            mark_closing(socket)
        if self.connection_init_timeout_task is not None:
            self.connection_init_timeout_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.connection_init_timeout_task
        tasks = [op.task for op in self.operations.values() if op.task is not None]
        self.operations.clear()
        await reap(tasks)

    async def send_message(self, message: Message) -> None:
        """Send unless the server is closing the connection (the close frame went first)."""
        socket = self._socket
        if socket is not None and is_closing(socket):
            return
        await super().send_message(message)
