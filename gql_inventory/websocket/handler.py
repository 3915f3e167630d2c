"""Our graphql-transport-ws handler: Strawberry's, with a shutdown that always ends.

Strawberry's handler cancels each operation task when the connection ends (client
close, a protocol error it answers with 4400/4409/4429, our 4008, server shutdown)
and then awaits each task with no bound. A task that lost its cancellation (on
Python 3.11 `asyncio.wait_for` swallows one that races its inner future, CPython
gh-86296) never ends, so the ASGI call never returned: the connection counter, the
hub subscription and its buffer were kept for ever, and a server shutdown waited
for it. Here the tasks are cancelled again until they end (bounded), and nothing is
sent on a connection the server is closing.

Identical subscribe operations (same document, variables and role) join a shared group
(`gql_inventory.websocket.fanout`): executed once per event for all of them. Strawberry's
own `handle_subscribe` checks every subscribe message (acknowledged connection, unique id,
the per-connection limit); only `run_operation`, the hook that executes an accepted
operation, is ours: a shareable one joins its group (or starts its catch-up) and its task
ends at once (docs/adr/0010-shared-subscription-execution.md,
docs/adr/0014-explicit-fan-out.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from starlette.websockets import WebSocket
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
)

from gql_inventory.context import Context
from gql_inventory.kit.logs import get_logger
from gql_inventory.kit.tasks import reap as tasks_reap
from gql_inventory.websocket.fanout import Run, SharedSubscriptions, StreamFactory
from gql_inventory.websocket.limits import is_closing, mark_closing
from gql_inventory.websocket.members import Member
from gql_inventory.websocket.sharing import GroupKey, group_key

log = get_logger(__name__)

#: Seconds an operation task gets to end after a cancellation before it is cancelled again.
RECANCEL_SECONDS = 1.0
#: Cancellations tried before giving up on a task (it is then logged and left behind).
MAX_CANCELS = 10


async def reap(tasks: Iterable[asyncio.Task[Any]], *, interval: float = RECANCEL_SECONDS) -> int:
    """`kit.tasks.reap` with this edge's pace: every `interval` seconds, `MAX_CANCELS`
    cancellations at most (a task still running is logged and left behind)."""
    return await tasks_reap(tasks, interval=interval, max_cancels=MAX_CANCELS)


async def _no_receive() -> Any:
    raise RuntimeError("a shared group's request receives nothing")


async def _no_send(message: Any) -> None:
    raise RuntimeError("a shared group's request sends nothing")


def detached(websocket: WebSocket) -> WebSocket:
    """A WebSocket with `websocket`'s path and headers but no connection: what a run's
    context sees as its request (the role comes from the headers)."""
    scope = websocket.scope
    return WebSocket(
        {
            "type": "websocket",
            "path": scope.get("path", "/"),
            "headers": list(scope.get("headers", ())),
            "query_string": scope.get("query_string", b""),
        },
        _no_receive,
        _no_send,
    )


@runtime_checkable
class FanoutView(Protocol):
    """A GraphQL view that keeps the shared subscriptions of its process (the app's)."""

    fanout: SharedSubscriptions


class InventoryTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws (Strawberry's) whose every close path frees its operations,
    and whose identical subscriptions share one execution."""

    _members: dict[str, Member] | None = None

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
        members, self._members = self._members, None
        for member in (members or {}).values():
            if member.run is not None:
                member.run.leave(member)
        await reap(tasks)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        """Strawberry's, then forget the finished init timer (memory per connection)."""
        await super().handle_connection_init(message)
        task = self.connection_init_timeout_task
        if task is not None and task.done():
            self.connection_init_timeout_task = None

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """Strawberry's, except for a shareable subscription: it joins its shared group
        (or, with a resume cursor, starts a catch-up run that joins once caught up), and
        this task ends at once."""
        plan = self._plan(operation)
        registry = self._registry()
        socket = self._socket
        if plan is None or registry is None or socket is None:
            await super().run_operation(operation)
            return
        (key, kind), resuming, variables = plan
        member = Member(socket, operation.id, self._ended)
        if self._members is None:
            self._members = {}
        self._members[operation.id] = member
        # The run keeps the document and variables: the operation keeps neither.
        operation.query, operation.variables, operation.task = key[0], None, None
        stream = self._stream_factory(key[0], operation.operation_name, variables)
        if resuming:
            registry.catch_up(key, kind, member, stream)
        else:
            registry.join(key, kind, member, stream)

    def _plan(
        self, operation: Operation[Context, None]
    ) -> tuple[tuple[GroupKey, str], bool, dict[str, Any] | None] | None:
        """``((group key, metrics kind), resuming, variables)`` when `operation` may share
        (resuming: it has a resume cursor, and joins once caught up), else None."""
        variables = operation.variables
        name = operation.operation_name
        if variables is not None and not isinstance(variables, dict):
            return None
        if name is not None and not isinstance(name, str):
            return None
        if not isinstance(operation.query, str):
            return None
        admin = self.context.is_admin
        for resuming in (False, True):
            found = group_key(operation.query, name, variables, admin, resuming=resuming)
            if found is not None:
                return found, resuming, variables
        return None

    def _registry(self) -> SharedSubscriptions | None:
        view = self.view
        return view.fanout if isinstance(view, FanoutView) else None

    async def cleanup_operation(self, operation_id: str) -> None:
        """A client `complete` (or the end of the connection): leave the shared group, or
        cancel the operation's own task (Strawberry's)."""
        member = self._members.pop(operation_id, None) if self._members else None
        if member is not None:
            self.operations.pop(operation_id, None)
            if member.run is not None:
                member.run.leave(member)
            return
        await super().cleanup_operation(operation_id)

    def _stream_factory(
        self, query: str, operation_name: str | None, variables: dict[str, Any] | None
    ) -> StreamFactory:
        """How a run starts: Strawberry's stream of the operation, with a context of its
        own (`fanout` = the run) on a detached copy of the founder's request (the same
        headers and connection parameters: the same role). It keeps no reference to the
        founder's connection, which may leave before the run ends."""
        socket = self._socket
        assert socket is not None
        request = detached(socket)
        params = self.context.connection_params
        slots = self.context.replay_slots  # the connection's, not the run context's own
        view, schema, root_value = self.view, self.schema, self.root_value

        async def stream(run: Run) -> Any:
            context = await view.get_context(request, request)
            context.connection_params = params
            context.fanout = run
            context.replay_slots = slots
            return await schema.stream(
                query,
                variable_values=variables,
                context_value=context,
                root_value=root_value,
                operation_name=operation_name,
            )

        return stream

    def _ended(self, member: Member) -> None:
        """The run sent the member's last message (complete or error)."""
        op_id = member.op_id
        if self._members and self._members.get(op_id) is member:
            del self._members[op_id]
            self.operations.pop(op_id, None)

    async def send_message(self, message: Message) -> None:
        """Send unless the server is closing the connection (the close frame went first)."""
        socket = self._socket
        if socket is not None and is_closing(socket):
            return
        await super().send_message(message)
