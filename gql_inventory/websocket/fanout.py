"""Subscription runs: identical operations are executed once per event, and the same
bytes are written to every socket, only the operation id differing.

A `Run` executes one subscription (Strawberry's `schema.stream`, one task per run) on
behalf of its members, with a GraphQL context of its own whose `fanout` is the run: the
explicit object the stream talks to (`StreamLink`), never a context variable.

- `SharedGroup`: subscribe operations with the same document, operation name, variables
  and role (admin or storefront); kept in `SharedSubscriptions`, the registry of one
  GraphQL view (made by the view, handed to each connection's handler).
- `CatchUp`: a shareable operation with a resume cursor runs alone (its own ledger
  replay), writes paced by its socket, and hands its member over to the live group of
  its key once caught up (`hand_over`).
- `gql_inventory.websocket.link.Alone`: the same link for an operation Strawberry runs
  itself (one that cannot share).

Each result is encoded and framed once per operation id and written to every member
socket in turn, in slices between which the loop runs (`SLICE`). A write goes through the
server's framed write (`gql_inventory.edge.websocket_protocol`; elsewhere, the ASGI send
stepped once by hand) and costs no task when the socket takes it at once; a socket whose
transport is paused gets a bounded backlog and one drain task until it catches up; a
backlog past `limit` closes the socket with 4008, like an overflowing subscriber buffer
(docs/adr/0006-websocket-close-paths.md). Which operations may share, and under which
key: `gql_inventory.websocket.sharing` (docs/adr/0010-shared-subscription-execution.md,
docs/adr/0014-explicit-fan-out.md, docs/adr/0022-framed-fan-out.md).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from strawberry.types.execution import ExecutionResult, PreExecutionError

from gql_inventory.edge.websocket_protocol import FramedText, Sent
from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.websocket.limits import SLOW_CLOSE_CODE, close_soon, is_closing
from gql_inventory.websocket.members import Continue, Member
from gql_inventory.websocket.sharing import GroupKey

log = get_logger(__name__)

#: Members written to between two turns of the event loop (~20 us each: ADR 0022).
SLICE = 250

#: How a run starts its execution: Strawberry's result stream, for a context whose
#: `fanout` is the given run.
StreamFactory = Callable[["Run"], Awaitable[AsyncIterator[Any]]]


class Run:
    """One execution of a subscription and the members it writes to (the `StreamLink`
    its stream gets as `info.context.fanout`). Subclasses: `SharedGroup`, `CatchUp`."""

    #: Whether writes wait for a slow socket before the next result is pulled (a run
    #: with one member, replaying: backpressure instead of a 4008 close).
    paced = False
    #: Whether the shared-subscription gauges count this run and its members.
    shared = False
    counted_by_hub = False

    def __init__(self, registry: SharedSubscriptions, key: GroupKey, kind: str) -> None:
        self.registry = registry
        self.key = key
        self.kind = kind
        self.members: dict[Member, None] = {}
        self.live = False
        self.closing = False
        self.executions = 0
        #: Ledger position of the event being executed (`sending`).
        self.position = 0
        self.task: asyncio.Task[None] | None = None

    def start(self, stream: StreamFactory) -> None:
        """Run the subscription (`stream(self)` gives Strawberry's result stream)."""
        self.task = asyncio.get_running_loop().create_task(
            self._run(stream), name=f"subscription-{type(self).__name__}"
        )

    def join(self, member: Member) -> None:
        """Add a member; it gets every result from the next one on."""
        self.members[member] = None
        member.run = self
        if self.shared:
            metrics.SHARED_MEMBERS.inc()
        if self.live:
            self._count(member)

    def leave(self, member: Member) -> None:
        """Remove a member (idempotent); the last one out stops the execution."""
        if self._release(member):
            self._drop_backlog(member)
            if not self.members:
                self.registry.forget(self)
                task, self.task = self.task, None  # no cycle through its traceback
                if task is not None:
                    task.cancel()

    def _release(self, member: Member) -> bool:
        """Take `member` out (its gauges); False when it was not in."""
        if self.members.pop(member, False) is False:
            return False
        if self.shared:
            metrics.SHARED_MEMBERS.dec()
        self._uncount(member)
        return True

    # ---------------------------------------------------------------- stream side

    def attached(self) -> None:
        """The execution registered with the hub: members count as subscribers now."""
        self.live = True
        for member in self.members:
            self._count(member)

    def detached(self) -> None:
        """The execution left the hub."""
        self.live = False
        for member in self.members:
            self._uncount(member)

    def overflowed(self, reason: str) -> None:
        """The execution fell behind the hub: close every member with 4008 and `reason`."""
        self.closing = True
        for member in list(self.members):
            self._close_slow(member, reason)

    def sending(self, position: int) -> None:
        """The next result is the ledger event at `position` (members that caught up
        alone past it skip it)."""
        self.position = position

    def sent(self) -> None:
        """Nothing to do: the run counts what it writes."""

    def hand_over(self, position: int) -> bool:
        """Only a `CatchUp` hands over."""
        return False

    # ---------------------------------------------------------------- execution

    async def _run(self, stream: StreamFactory) -> None:
        first = True
        try:
            source = await stream(self)
            try:
                async for result in source:
                    if first and isinstance(result, PreExecutionError):
                        self._broadcast_final("error", [e.formatted for e in result.errors or ()])
                        return
                    first = False
                    if isinstance(result, ExecutionResult):
                        await self._broadcast_next(result)
                        if self.paced:
                            await self._wait_for_sockets()
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

    async def _wait_for_sockets(self) -> None:
        """Until every member's backlog is written (a cancelled drain included)."""
        drains = {m.drain for m in self.members if m.drain is not None}
        if drains:
            await asyncio.wait(drains)

    async def _broadcast_next(self, result: ExecutionResult) -> None:
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        if result.extensions:
            payload["extensions"] = result.extensions
        body = ',"type":"next","payload":' + self.registry.encode(payload) + "}"
        self.executions += 1
        if self.shared:
            metrics.SHARED_EXECUTIONS.inc()
        written = 0
        position = self.position
        # One frame per operation id (clients number their operations alike: most
        # members share one), the same bytes written to each of their sockets.
        frames: dict[str, FramedText] = {}
        members = list(self.members)
        for start in range(0, len(members), SLICE):
            if start:
                # Let the loop run between slices (a request, the change's own response):
                # the last sockets wait, the first ones do not.
                await asyncio.sleep(0)
            for member in members[start : start + SLICE]:
                if member not in self.members or member.skip_through >= position:
                    continue  # left meanwhile, or caught up alone past this event
                framed = frames.get(member.id_json)
                if framed is None:
                    framed = frames[member.id_json] = FramedText.of(
                        '{"id":' + member.id_json + body
                    )
                if self._write(member, framed):
                    written += 1
        metrics.EVENTS_SENT.labels(self.kind).inc(written)

    def _broadcast_final(self, kind: str, payload: Any) -> None:
        """The last message of every member's operation (`error` or `complete`)."""
        tail = ',"type":"' + kind + '"'
        if payload is not None:
            tail += ',"payload":' + self.registry.encode(payload)
        for member in list(self.members):
            self._write(member, FramedText.of('{"id":' + member.id_json + tail + "}"))
            self._release(member)
            member.on_end(member)

    def _write(self, member: Member, message: FramedText) -> bool:
        """Send `message` now if the socket takes it at once, else queue it (bounded)."""
        if is_closing(member.websocket):
            return False
        if member.backlog is not None:
            if len(member.backlog) >= self.registry.limit:
                self._close_slow(member, _slow_reason(self.registry.limit))
                return False
            member.backlog.append(message.text)
            metrics.QUEUED_EVENTS.inc()
            return True
        if member.send_framed is not None:
            sent = member.send_framed(message)
            if sent is Sent.SENT:
                return True
            if sent is Sent.GONE:
                return False  # the connection is going: its handler cleans up
            # Paused: this message is the first of a backlog, sent by the drain.
            member.backlog = deque([message.text])
            metrics.QUEUED_EVENTS.inc()
            pending: Continue | None = None
        else:
            # A server without the framed write: uvicorn's ASGI send, stepped once by hand.
            coro = member.websocket.send_text(message.text)
            try:
                suspended = coro.send(None)
            except StopIteration:
                return True
            except Exception:  # the connection is going: its handler cleans up
                return False
            member.backlog = deque()
            pending = Continue(coro, suspended)
        member.drain = asyncio.get_running_loop().create_task(
            self._drain(member, pending), name="shared-subscription-drain"
        )
        return True

    async def _drain(self, member: Member, pending: Continue | None) -> None:
        try:
            if pending is not None:
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
        log.warning(
            "live.slow_subscriber_dropped", buffer_size=self.registry.limit, shared=self.shared
        )
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


class SharedGroup(Run):
    """The members of one shared subscription (same key) and the one task executing it."""

    shared = True


class CatchUp(Run):
    """A shareable subscription with a resume cursor, run alone for its one member (its
    own ledger replay, writes paced by the socket) until it has caught up; then its member
    moves to the live group of `key` (docs/adr/0010-shared-subscription-execution.md)."""

    paced = True

    def hand_over(self, position: int) -> bool:
        """Move the member to the live group of the key, skipping what that group sends
        up to `position` (already sent here), when there is such a group and nothing
        waits for the socket; True when moved. Nothing runs between the check and the
        join, and the group registered with the hub before: no event falls between."""
        group = self.registry.live_group(self.key)
        if group is None or any(m.backlog is not None for m in self.members):
            return False
        for member in list(self.members):
            self._release(member)
            member.skip_through = position
            group.join(member)
        return True


def _slow_reason(limit: int) -> str:
    return (
        f"subscriber too slow: more than {limit} events waiting; "
        "reconnect and resume with your last cursor"
    )


class SharedSubscriptions:
    """The shared groups of one process (one registry per GraphQL view, which hands it to
    each connection's handler).

    `limit`: messages a slow socket may have waiting before it is closed (4008);
    `encode`: the JSON encoder of the view (a str per value).
    """

    def __init__(self, limit: int, encode: Callable[[Any], str]) -> None:
        self.limit = limit
        self.encode = encode
        self._groups: dict[GroupKey, SharedGroup] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def join(self, key: GroupKey, kind: str, member: Member, stream: StreamFactory) -> Run:
        """Add `member` to the group of `key`, starting the group (with `stream`) when
        there is none."""
        group = self._groups.get(key)
        if group is None or group.closing:
            group = SharedGroup(self, key, kind)
            self._groups[key] = group
            metrics.SHARED_GROUPS.inc()
            group.join(member)
            group.start(stream)
        else:
            group.join(member)
        return group

    def catch_up(self, key: GroupKey, kind: str, member: Member, stream: StreamFactory) -> Run:
        """Start a `CatchUp` run for `member` (a resuming subscription), which joins the
        group of `key` once caught up."""
        run = CatchUp(self, key, kind)
        run.join(member)
        run.start(stream)
        return run

    def live_group(self, key: GroupKey) -> SharedGroup | None:
        """The group of `key` if it is registered with the hub and not closing."""
        group = self._groups.get(key)
        return group if group is not None and group.live and not group.closing else None

    def forget(self, run: Run) -> None:
        """Drop `run` from the registry (idempotent; a catch-up is never in it)."""
        if self._groups.get(run.key) is run:
            del self._groups[run.key]
            metrics.SHARED_GROUPS.dec()
