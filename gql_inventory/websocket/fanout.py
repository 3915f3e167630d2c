"""Shared subscriptions: identical operations are executed once per event, and the same
bytes are written to every socket, only the operation id differing.

Subscribe operations with the same document, operation name, variables and role
(admin or storefront) form a `SharedGroup`. The group runs the subscription once
(Strawberry's `schema.stream`, one task per group), encodes each result once, and
writes it to every member socket in turn. A write that completes at once (the
usual case: uvicorn writes to the transport without waiting) costs no task; a
socket whose transport is paused gets a bounded backlog and one drain task until it
catches up; a backlog past `limit` closes the socket with 4008, like an overflowing
subscriber buffer (docs/adr/0006-websocket-close-paths.md). Which operations may
share, and under which key: `gql_inventory.websocket.sharing`
(docs/adr/0010-shared-subscription-execution.md).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from typing import Any

from starlette.websockets import WebSocket
from strawberry.types.execution import ExecutionResult, PreExecutionError

from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.websocket.limits import SLOW_CLOSE_CODE, close_soon, is_closing
from gql_inventory.websocket.sharing import GroupKey

log = get_logger(__name__)

#: The group whose execution is running in this task (None: a per-operation run).
_CURRENT: contextvars.ContextVar[SharedGroup | None] = contextvars.ContextVar(
    "gql_inventory_shared_group", default=None
)

#: The resuming subscription running alone in this task, to hand over once caught up.
_CATCH_UP: contextvars.ContextVar[CatchUp | None] = contextvars.ContextVar(
    "gql_inventory_catch_up", default=None
)

StreamFactory = Callable[[], Coroutine[Any, Any, AsyncIterator[Any]]]


def current_group() -> SharedGroup | None:
    """The shared group whose subscription is executing in this task, if any."""
    return _CURRENT.get()


def current_catch_up() -> CatchUp | None:
    """The hand-over of the resuming subscription running in this task, if any."""
    return _CATCH_UP.get()


class CatchUp:
    """A subscription with a resume cursor runs alone (its own ledger replay); once it
    has sent everything dispatched so far it may join the live group of its key.

    `join(group, position)` makes the operation a member that skips what the group
    sends up to `position` (the subscriber already sent it).
    """

    __slots__ = ("join", "key", "registry")

    def __init__(
        self,
        registry: SharedSubscriptions,
        key: GroupKey,
        join: Callable[[SharedGroup, int], None],
    ) -> None:
        self.registry = registry
        self.key = key
        self.join = join

    def enter(self) -> None:
        """Make this the hand-over of the current task (its operation's run)."""
        _CATCH_UP.set(self)

    def try_join(self, position: int) -> bool:
        """Join the live group of the key, if there is one (call it when every event up
        to `position` was sent and none is waiting); True when joined: the caller's
        stream ends without a `complete`."""
        group = self.registry.live_group(self.key)
        if group is None:
            return False
        self.join(group, position)
        return True


class _Continue:
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
    """One subscribe operation in a group: its socket, its id, and (while its socket
    is slow) a backlog of encoded messages with the task draining it."""

    __slots__ = (
        "backlog",
        "counted",
        "drain",
        "id_json",
        "on_end",
        "op_id",
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
        self.backlog: deque[str] | None = None
        self.drain: asyncio.Task[None] | None = None
        self.counted = False


class SharedGroup:
    """The members of one shared subscription and the one task executing it."""

    def __init__(self, registry: SharedSubscriptions, key: GroupKey, kind: str) -> None:
        self.registry = registry
        self.key = key
        self.kind = kind
        self.members: dict[Member, None] = {}
        self.live = False
        self.closing = False
        self.executions = 0
        #: Ledger position of the event being executed (set by the resolver).
        self.position = 0
        self.task: asyncio.Task[None] | None = None

    def start(self, stream: StreamFactory) -> None:
        """Run the subscription (`stream()` gives Strawberry's result stream)."""
        self.task = asyncio.get_running_loop().create_task(
            self._run(stream), name="shared-subscription"
        )

    def join(self, member: Member) -> None:
        """Add a member; it gets every result from the next one on."""
        self.members[member] = None
        metrics.SHARED_MEMBERS.inc()
        if self.live:
            self._count(member)

    def leave(self, member: Member) -> None:
        """Remove a member (idempotent); the last one out stops the execution."""
        if self.members.pop(member, False) is not False:
            metrics.SHARED_MEMBERS.dec()
            self._uncount(member)
            self._drop_backlog(member)
            if not self.members:
                self.registry.forget(self)
                task, self.task = self.task, None  # no cycle through its traceback
                if task is not None:
                    task.cancel()

    # ---------------------------------------------------------------- resolver side

    def went_live(self) -> None:
        """The execution registered with the hub: members count as subscribers now."""
        self.live = True
        for member in self.members:
            self._count(member)

    def stopped(self) -> None:
        """The execution left the hub."""
        self.live = False
        for member in self.members:
            self._uncount(member)

    def overflowed(self, reason: str) -> None:
        """The execution fell behind the hub: close every member with 4008 and `reason`."""
        self.closing = True
        for member in list(self.members):
            self._close_slow(member, reason)

    # ---------------------------------------------------------------- execution

    async def _run(self, stream: StreamFactory) -> None:
        _CURRENT.set(self)
        first = True
        try:
            source = await stream()
            try:
                async for result in source:
                    if first and isinstance(result, PreExecutionError):
                        self._broadcast_final("error", [e.formatted for e in result.errors or ()])
                        return
                    first = False
                    if isinstance(result, ExecutionResult):
                        self._broadcast_next(result)
            finally:
                aclose = getattr(source, "aclose", None)
                if aclose is not None:
                    await aclose()
            self._broadcast_final("complete", None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("live.shared_subscription_failed", error=repr(exc), exc_info=exc)
            self._broadcast_final("complete", None)
        finally:
            self.registry.forget(self)

    def _broadcast_next(self, result: ExecutionResult) -> None:
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        if result.extensions:
            payload["extensions"] = result.extensions
        body = ',"type":"next","payload":' + self.registry.encode(payload) + "}"
        self.executions += 1
        metrics.SHARED_EXECUTIONS.inc()
        written = 0
        position = self.position
        for member in list(self.members):
            if member.skip_through >= position:
                continue  # a member that caught up alone already sent it
            if self._write(member, '{"id":' + member.id_json + body):
                written += 1
        metrics.EVENTS_SENT.labels(self.kind).inc(written)

    def _broadcast_final(self, kind: str, payload: Any) -> None:
        """The last message of every member's operation (`error` or `complete`)."""
        tail = ',"type":"' + kind + '"'
        if payload is not None:
            tail += ',"payload":' + self.registry.encode(payload)
        for member in list(self.members):
            self._write(member, '{"id":' + member.id_json + tail + "}")
            del self.members[member]
            metrics.SHARED_MEMBERS.dec()
            self._uncount(member)
            member.on_end(member)

    def _write(self, member: Member, text: str) -> bool:
        """Send `text` now if the socket takes it at once, else queue it (bounded)."""
        if is_closing(member.websocket):
            return False
        if member.backlog is not None:
            if len(member.backlog) >= self.registry.limit:
                self._close_slow(member, _slow_reason(self.registry.limit))
                return False
            member.backlog.append(text)
            metrics.QUEUED_EVENTS.inc()
            return True
        coro = member.websocket.send_text(text)
        try:
            suspended = coro.send(None)
        except StopIteration:
            return True
        except Exception:  # the connection is going: its handler cleans up
            return False
        member.backlog = deque()
        member.drain = asyncio.get_running_loop().create_task(
            self._drain(member, _Continue(coro, suspended)), name="shared-subscription-drain"
        )
        return True

    async def _drain(self, member: Member, pending: _Continue) -> None:
        try:
            await pending
            while member.backlog:
                text = member.backlog.popleft()
                metrics.QUEUED_EVENTS.dec()
                if is_closing(member.websocket):
                    break
                await member.websocket.send_text(text)
        except Exception:  # the connection is going: its handler cleans up
            pass
        finally:
            if member.drain is asyncio.current_task():
                member.drain = None
                self._clear_backlog(member)

    def _close_slow(self, member: Member, reason: str) -> None:
        """Close a member with 4008; it leaves at once (its backlog freed), before its
        connection ends."""
        self.leave(member)
        metrics.SLOW_SUBSCRIBERS_DROPPED.inc()
        log.warning("live.slow_subscriber_dropped", buffer_size=self.registry.limit, shared=True)
        close_soon(member.websocket, SLOW_CLOSE_CODE, reason)

    def _drop_backlog(self, member: Member) -> None:
        drain, member.drain = member.drain, None
        if drain is not None:
            drain.cancel()
        self._clear_backlog(member)

    @staticmethod
    def _clear_backlog(member: Member) -> None:
        if member.backlog is not None:
            metrics.QUEUED_EVENTS.dec(len(member.backlog))
            member.backlog = None

    def _count(self, member: Member) -> None:
        if not member.counted:
            member.counted = True
            metrics.SUBSCRIBERS.labels(self.kind).inc()

    def _uncount(self, member: Member) -> None:
        if member.counted:
            member.counted = False
            metrics.SUBSCRIBERS.labels(self.kind).dec()


def _slow_reason(limit: int) -> str:
    return (
        f"subscriber too slow: more than {limit} events waiting; "
        "reconnect and resume with your last cursor"
    )


class SharedSubscriptions:
    """The shared groups of one process (one registry per GraphQL view).

    `limit`: messages a slow socket may have waiting before it is closed (4008);
    `encode`: the JSON encoder of the view (a str per value).
    """

    def __init__(self, limit: int, encode: Callable[[Any], str]) -> None:
        self.limit = limit
        self.encode = encode
        self._groups: dict[GroupKey, SharedGroup] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def join(
        self, key: GroupKey, kind: str, member: Member, stream: Callable[[], StreamFactory]
    ) -> SharedGroup:
        """Add `member` to the group of `key`, starting the group (with `stream()`'s
        factory) when there is none."""
        group = self._groups.get(key)
        if group is None or group.closing:
            group = SharedGroup(self, key, kind)
            self._groups[key] = group
            metrics.SHARED_GROUPS.inc()
            group.join(member)
            group.start(stream())
        else:
            group.join(member)
        return group

    def live_group(self, key: GroupKey) -> SharedGroup | None:
        """The group of `key` if it is registered with the hub and not closing."""
        group = self._groups.get(key)
        return group if group is not None and group.live and not group.closing else None

    def forget(self, group: SharedGroup) -> None:
        """Drop `group` from the registry (idempotent)."""
        if self._groups.get(group.key) is group:
            del self._groups[group.key]
            metrics.SHARED_GROUPS.dec()
