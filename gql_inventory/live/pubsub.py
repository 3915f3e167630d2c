"""The one typed wrapper around broadcaster: publish text messages, subscribe to a channel.

Nothing else in the code base touches broadcaster's API. Backends, by URL:

- ``postgres://`` / ``postgresql://``: LISTEN/NOTIFY (the default: the service's
  own database). broadcaster uses one asyncpg connection for LISTEN and NOTIFY, so
  calls on it are serialised here; NOTIFY payloads must stay under 8000 bytes.
- ``redis://`` / ``rediss://``: Redis PUBLISH/SUBSCRIBE.
- ``memory://``: one process only (tests, single-process development).

broadcaster does not report a lost connection (its listener simply goes quiet),
so the owner of a `PubSub` watches liveness itself (the hub sends heartbeats) and
calls `mark_lost()`; a failed publish marks it lost too. `reconnect()` replaces
the underlying connection; subscriptions opened before raise `PubSubLost`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from broadcaster import Broadcast

from gql_inventory.kit.logs import get_logger

log = get_logger(__name__)

POSTGRES_SCHEMES = ("postgres", "postgresql")
#: application_name of the LISTEN connection (find it in pg_stat_activity).
LISTEN_APPLICATION_NAME = "gql-inventory-broadcast"
#: Largest message `publish` accepts (PostgreSQL's NOTIFY limit is 8000 bytes).
MAX_MESSAGE_BYTES = 7900

_OP_TIMEOUT = 10.0
T = TypeVar("T")


async def _bounded(awaitable: Awaitable[T]) -> T:
    """`awaitable`, for at most `_OP_TIMEOUT` seconds (else `TimeoutError`). Not
    `asyncio.wait_for`: on Python 3.11 it can swallow the cancellation that stops the
    hub (CPython gh-86296), which then never stops."""
    async with asyncio.timeout(_OP_TIMEOUT):
        return await awaitable


class PubSubError(Exception):
    """Publishing or subscribing failed (the backend is unreachable or the message too big)."""


class PubSubLost(PubSubError):
    """The backend connection was lost; `reconnect()` and subscribe again."""


def backend_url(broadcast_url: str | None, database_url: str) -> str:
    """The broadcaster URL: `broadcast_url`, or LISTEN/NOTIFY on `database_url`.

    PostgreSQL URLs are normalised to libpq form (``postgresql+asyncpg://`` works too)
    and get an ``application_name`` so the LISTEN connection is recognisable.
    """
    url = broadcast_url or database_url
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in POSTGRES_SCHEMES:
        return url
    query = dict(parse_qsl(parts.query))
    query.setdefault("application_name", LISTEN_APPLICATION_NAME)
    return urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), ""))


def backend_kind(url: str) -> str:
    """``"postgres"``, ``"redis"`` or ``"memory"``."""
    scheme = urlsplit(url).scheme.split("+", 1)[0]
    if scheme in POSTGRES_SCHEMES:
        return "postgres"
    if scheme in ("redis", "rediss"):
        return "redis"
    if scheme == "memory":
        return "memory"
    raise ValueError(f"unsupported BROADCAST_URL scheme {scheme!r}")


def redact(url: str) -> str:
    """`url` without its password, for logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _make_broadcast(url: str) -> Broadcast:
    """broadcaster's `Broadcast` for `url`, with our Redis backend fix."""
    if backend_kind(url) == "redis":
        return Broadcast(backend=_redis_backend(url))
    return Broadcast(url)


def _redis_backend(url: str) -> Any:
    """broadcaster 0.3.1's Redis backend, with two fixes.

    It signals its listener before SUBSCRIBE completes; the listener then finds no
    subscribed channel, stops and never restarts, and the subscription stays silent
    (encode/broadcaster#133 fixed only the restart after an unsubscribe): signal once
    the subscription is in place. And it starts its listener task before connecting,
    while a failed `Broadcast.connect` never calls the backend's `disconnect`: the task
    stayed pending after every failed reconnect (Redis down): cancel it there.
    """
    from broadcaster._backends.redis import RedisBackend

    class OrderedRedisBackend(RedisBackend):
        async def connect(self) -> None:
            try:
                await super().connect()
            except BaseException:
                if self._listener is not None:
                    self._listener.cancel()
                raise

        async def subscribe(self, channel: str) -> None:
            await self._pubsub.subscribe(channel)
            self._ready.set()

    return OrderedRedisBackend(url)


class Subscription:
    """Messages of one channel, in the order the backend delivered them."""

    def __init__(self, subscriber: Any, lost: asyncio.Event) -> None:
        self._subscriber = subscriber
        self._lost = lost

    async def get(self) -> str:
        """The next message. Raises `PubSubLost` once the connection is marked lost."""
        if self._lost.is_set():
            raise PubSubLost("broadcast connection lost")
        getter = asyncio.ensure_future(self._subscriber.get())
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({getter, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            exc = getter.exception()
            if exc is not None:
                raise PubSubLost(f"broadcast subscription ended: {exc!r}") from exc
            event = getter.result()
            return str(event.message)
        raise PubSubLost("broadcast connection lost")


class PubSub:
    """A broadcaster connection that can be replaced when it is lost."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kind = backend_kind(url)
        self._broadcast: Broadcast | None = None
        self._lock = asyncio.Lock()
        self._lost = asyncio.Event()
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """How many times a connection was opened: tells a reconnection from the same one."""
        return self._epoch

    @property
    def connected(self) -> bool:
        """True between a successful `connect()` and the connection being marked lost."""
        return self._broadcast is not None and not self._lost.is_set()

    async def connect(self) -> None:
        """Open the backend connection. Raises `PubSubError` when it is unreachable."""
        broadcast = _make_broadcast(self.url)
        try:
            await _bounded(broadcast.connect())
        except Exception as exc:
            with contextlib.suppress(Exception):
                await _bounded(broadcast.disconnect())
            raise PubSubError(f"cannot connect to {redact(self.url)}: {exc!r}") from exc
        self._broadcast = broadcast
        self._lost = asyncio.Event()
        self._epoch += 1
        log.info("pubsub.connected", backend=self.kind, url=redact(self.url))

    def mark_lost(self, reason: str) -> None:
        """Declare the connection dead: subscriptions raise `PubSubLost`."""
        if not self._lost.is_set():
            log.warning("pubsub.lost", backend=self.kind, reason=reason)
            self._lost.set()

    async def reconnect(self) -> None:
        """Drop the current connection (whatever its state) and open a new one."""
        if self._broadcast is not None:
            self.mark_lost("reconnecting")
        await self._drop()
        await self.connect()

    async def close(self) -> None:
        """Close the connection for good."""
        self.mark_lost("closing")
        await self._drop()

    async def _drop(self) -> None:
        broadcast, self._broadcast = self._broadcast, None
        if broadcast is not None:
            with contextlib.suppress(Exception):
                await _bounded(broadcast.disconnect())

    async def publish(self, channel: str, message: str) -> None:
        """Send `message` to every subscriber of `channel` (in every process).

        Raises `PubSubError` (and marks the connection lost) when the backend fails.
        """
        if len(message.encode()) > MAX_MESSAGE_BYTES:
            raise PubSubError(f"message of {len(message.encode())} bytes is too big")
        broadcast = self._broadcast
        if broadcast is None or self._lost.is_set():
            raise PubSubLost("broadcast connection lost")
        try:
            async with self._lock:
                await _bounded(broadcast.publish(channel, message))
        except Exception as exc:
            if broadcast is self._broadcast:
                self.mark_lost(f"publish failed: {exc!r}")
            raise PubSubLost(f"publish failed: {exc!r}") from exc

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        """Subscribe to `channel` on the current connection; messages sent after entering
        arrive through the `Subscription`. Raises `PubSubLost` when there is no live
        connection."""
        broadcast = self._broadcast
        lost = self._lost
        if broadcast is None or lost.is_set():
            raise PubSubLost("broadcast connection lost")
        stack = contextlib.AsyncExitStack()
        try:
            async with self._lock:
                subscriber = await _bounded(stack.enter_async_context(broadcast.subscribe(channel)))
        except Exception as exc:
            self.mark_lost(f"subscribe failed: {exc!r}")
            with contextlib.suppress(Exception):
                await _bounded(stack.aclose())
            raise PubSubLost(f"subscribe failed: {exc!r}") from exc
        try:
            yield Subscription(subscriber, lost)
        finally:
            # Unsubscribing from a dead connection fails or hangs: bound it, ignore errors.
            with contextlib.suppress(Exception):
                await _bounded(stack.aclose())
