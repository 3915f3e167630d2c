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
(`gql_inventory.websocket.fanout`): executed once per event for all of them, without a task
per operation (docs/adr/0010-shared-subscription-execution.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError
from starlette.websockets import WebSocket
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    SubscribeMessage,
)

from gql_inventory.kit.logs import get_logger
from gql_inventory.kit.tasks import reap as tasks_reap
from gql_inventory.websocket.fanout import (
    CatchUp,
    Member,
    SharedGroup,
    SharedSubscriptions,
    StreamFactory,
)
from gql_inventory.websocket.limits import is_closing, mark_closing
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
    """A WebSocket with `websocket`'s path and headers but no connection: what a group's
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


_registries: weakref.WeakKeyDictionary[Any, SharedSubscriptions] = weakref.WeakKeyDictionary()


def shared_subscriptions(view: Any, limit: int) -> SharedSubscriptions:
    """The registry of shared groups of one GraphQL view (made on first use; `limit` is
    the backlog of a slow socket before it is closed with 4008)."""
    registry = _registries.get(view)
    if registry is None:
        registry = SharedSubscriptions(limit, view.encode_json_string)
        _registries[view] = registry
    return registry


class InventoryTransportWSHandler(BaseGraphQLTransportWSHandler[Any, None]):
    """graphql-transport-ws (Strawberry's) whose every close path frees its operations,
    and whose identical subscriptions share one execution."""

    _shared: dict[str, tuple[Member, Any]] | None = None
    _resuming: dict[str, tuple[GroupKey, str]] | None = None

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
        self._leave_all()
        await reap(tasks)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        """Strawberry's, then forget the finished init timer (memory per connection)."""
        await super().handle_connection_init(message)
        task = self.connection_init_timeout_task
        if task is not None and task.done():
            self.connection_init_timeout_task = None

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """Strawberry's, except that a shareable operation joins its shared group (one
        with a resume cursor runs alone until caught up: `run_operation`)."""
        op_id = message["id"]
        if self._resuming:
            self._resuming.pop(op_id, None)
        shared = self._shared_key(message)
        if shared is None:
            resuming = self._shared_key(message, resuming=True)
            if resuming is not None:
                if self._resuming is None:
                    self._resuming = {}
                self._resuming[op_id] = resuming
            await super().handle_subscribe(message)
            return
        key, kind = shared
        if op_id in self.operations:
            await self.websocket.close(code=4409, reason=f"Subscriber for {op_id} already exists")
            return
        limit = self.max_subscriptions_per_connection
        if limit is not None and len(self.operations) >= limit:
            error = GraphQLError("Subscription limit reached")
            await self.send_message({"id": op_id, "type": "error", "payload": [error.formatted]})
            return
        socket = self._socket
        assert socket is not None  # _shared_key is None without one
        payload = message["payload"]
        # The group keeps the document and variables: the member shares its key's text.
        operation = Operation(self, op_id, key[0], None, key[1])
        self.operations[op_id] = operation
        member = Member(socket, op_id, self._ended)
        registry = self._registry()
        variables = payload.get("variables")
        group = registry.join(key, kind, member, lambda: self._stream_factory(operation, variables))
        if self._shared is None:
            self._shared = {}
        self._shared[op_id] = (member, group)

    async def run_operation(self, operation: Operation[Any, None]) -> None:
        """Strawberry's; a resuming shareable subscription may hand itself over to its
        group once caught up (`gql_inventory.websocket.fanout.CatchUp`)."""
        resuming = self._resuming.pop(operation.id, None) if self._resuming else None
        if resuming is not None:
            CatchUp(
                self._registry(),
                resuming[0],
                lambda group, position: self._joined(operation, group, position),
            ).enter()
        await super().run_operation(operation)

    def _joined(self, operation: Operation[Any, None], group: SharedGroup, position: int) -> None:
        """A caught-up operation becomes a member of `group` (skipping up to `position`);
        its own stream then ends without a `complete`."""
        socket = self._socket
        assert socket is not None  # only websocket operations resume
        op_id = operation.id
        member = Member(socket, op_id, self._ended, position)
        operation.completed = True
        operation.task = None
        group.join(member)
        if self._shared is None:
            self._shared = {}
        self._shared[op_id] = (member, group)

    def _registry(self) -> SharedSubscriptions:
        return shared_subscriptions(self.view, self.context.settings.subscriber_buffer_size)

    async def cleanup_operation(self, operation_id: str) -> None:
        """A client `complete` (or the end of the connection): leave the shared group, or
        cancel the operation's own task (Strawberry's)."""
        shared = self._shared.pop(operation_id, None) if self._shared else None
        if shared is not None:
            self.operations.pop(operation_id, None)
            member, group = shared
            group.leave(member)
            return
        await super().cleanup_operation(operation_id)

    def _shared_key(
        self, message: SubscribeMessage, *, resuming: bool = False
    ) -> tuple[GroupKey, str] | None:
        """``(group key, metrics kind)`` when `message` may share (`resuming`: once its
        resume cursor's catch-up is done), else None."""
        if not self.connection_acknowledged or self._socket is None:
            return None
        payload = message.get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return None
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        if variables is not None and not isinstance(variables, dict):
            return None
        if operation_name is not None and not isinstance(operation_name, str):
            return None
        return group_key(
            payload["query"], operation_name, variables, self.context.is_admin, resuming=resuming
        )

    def _stream_factory(
        self, operation: Operation[Any, None], variables: dict[str, Any] | None
    ) -> StreamFactory:
        """How the group starts: Strawberry's stream of the operation, with a context of
        its own on a detached copy of the founder's request (the same headers and
        connection parameters: the same role). It keeps no reference to the founder's
        connection, which may leave before the group ends."""
        socket = self._socket
        assert socket is not None
        request = detached(socket)
        params = getattr(self.context, "connection_params", None)
        view, schema, root_value = self.view, self.schema, self.root_value
        query, operation_name = operation.query, operation.operation_name

        async def stream() -> Any:
            context = await view.get_context(request, request)
            context.connection_params = params
            return await schema.stream(
                query,
                variable_values=variables,
                context_value=context,
                root_value=root_value,
                operation_name=operation_name,
            )

        return stream

    def _ended(self, member: Member) -> None:
        """The group sent the member's last message (complete or error)."""
        op_id = member.op_id
        if self._shared and self._shared.get(op_id, (None,))[0] is member:
            del self._shared[op_id]
            self.operations.pop(op_id, None)

    def _leave_all(self) -> None:
        shared, self._shared = self._shared, None
        for member, group in (shared or {}).values():
            group.leave(member)

    async def send_message(self, message: Message) -> None:
        """Send unless the server is closing the connection (the close frame went first)."""
        socket = self._socket
        if socket is not None and is_closing(socket):
            return
        await super().send_message(message)
