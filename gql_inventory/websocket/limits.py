"""The websocket edge of one process: a cap on open connections (`MAX_WEBSOCKET_CONNECTIONS`),
the registry of open connections, and closing them with 1001 when the server shuts down."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger

log = get_logger(__name__)

#: Close code of a connection refused at the limit ("Try Again Later", RFC 6455 registry).
TRY_AGAIN_LATER = 1013
#: Close code sent to every open websocket when the server shuts down (RFC 6455 7.4.1).
GOING_AWAY = 1001
#: Close code of a subscriber too slow for its stream (not fatal for graphql-ws clients:
#: they reconnect, and resume with their cursor).
SLOW_CLOSE_CODE = 4008
#: Scope key set once the server has started closing a connection (nothing more is sent).
_SCOPE_CLOSING = "gql_inventory.closing"
#: Scope key of the task closing the connection (`close_soon`).
_SCOPE_CLOSE_TASK = "gql_inventory.close_task"

SignalHandler = Callable[[int, FrameType | None], Any]


def mark_closing(websocket: WebSocket) -> bool:
    """Flag the connection as being closed by the server; False if it already was."""
    if websocket.scope.get(_SCOPE_CLOSING):
        return False
    websocket.scope[_SCOPE_CLOSING] = True
    return True


def is_closing(websocket: WebSocket) -> bool:
    """True once the server closes the connection (or the close frame is sent)."""
    return bool(websocket.scope.get(_SCOPE_CLOSING)) or (
        websocket.application_state != WebSocketState.CONNECTED
    )


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # already gone: nothing to tell
        await websocket.close(code=code, reason=reason[:120])


def close_soon(websocket: WebSocket, code: int, reason: str) -> bool:
    """Start closing `websocket` with `code` and `reason` (cut to 120 characters) unless
    the server already closes it; nothing is sent on it afterwards (`is_closing`).
    Returns False when it was already closing."""
    if not mark_closing(websocket):
        return False
    # The connection's scope keeps the task alive until it is done (no module registry).
    websocket.scope[_SCOPE_CLOSE_TASK] = asyncio.get_running_loop().create_task(
        _close(websocket, code, reason)
    )
    return True


class WebSocketLimit:
    """ASGI wrapper: at most `limit` websockets at once; the next ones are accepted and
    closed at once with code 1013 and a reason, so clients back off and retry."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.open = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        if self.open >= self.limit:
            metrics.WEBSOCKETS_REFUSED.inc()
            log.warning("websocket.refused", open=self.open, limit=self.limit)
            websocket = WebSocket(scope, receive, send)
            offered = list(scope.get("subprotocols") or [])
            await websocket.accept(subprotocol=offered[0] if offered else None)
            await websocket.close(
                TRY_AGAIN_LATER, "server at its websocket connection limit; retry later"
            )
            return
        self.open += 1
        metrics.WEBSOCKET_CONNECTIONS.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.open -= 1
            metrics.WEBSOCKET_CONNECTIONS.dec()


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's `malloc_trim(0)` (None elsewhere): hands free heap pages back to the OS."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


class HeapTrimmer:
    """Once `threshold` websockets have closed since the last trim, trim the C heap
    `delay` seconds later, in a worker thread (never on the event loop, and without a
    cyclic collection): the memory of many departed connections goes back to the OS
    instead of staying in the process's free lists (docs/adr/0014-explicit-fan-out.md)."""

    def __init__(self, threshold: int = 500, delay: float = 2.0) -> None:
        self.threshold = threshold
        self.delay = delay
        self.trims = 0
        self._closed = 0
        self._pending: asyncio.TimerHandle | None = None
        self._running: asyncio.Future[float] | None = None
        self._trim = _malloc_trim()

    def closed(self) -> None:
        """One websocket closed."""
        self._closed += 1
        if (
            self._closed >= self.threshold
            and self._pending is None
            and self._running is None
            and self._trim is not None
        ):
            self._pending = asyncio.get_running_loop().call_later(self.delay, self._start)

    def _start(self) -> None:
        self._pending = None
        self._closed = 0
        running = asyncio.get_running_loop().run_in_executor(None, self._timed_trim)
        self._running = running
        running.add_done_callback(self._finished)

    def _timed_trim(self) -> float:
        """Runs in a worker thread (ctypes releases the GIL); the trim's milliseconds."""
        started = time.perf_counter()
        if self._trim is not None:
            self._trim()
        return (time.perf_counter() - started) * 1000

    def _finished(self, running: asyncio.Future[float]) -> None:
        self._running = None
        if running.cancelled():
            return
        error = running.exception()
        if error is not None:
            log.info("websocket.heap_trim_failed", error=repr(error))
            return
        self.trims += 1
        log.debug("websocket.heap_trimmed", ms=round(running.result(), 3))


class OpenWebSockets:
    """The GraphQL websockets this process serves right now, so that a shutdown can close
    each with 1001 ("going away") instead of dropping it; many closing hand their memory
    back (`HeapTrimmer`)."""

    def __init__(self) -> None:
        self._sockets: set[WebSocket] = set()
        self._empty = asyncio.Event()
        self._empty.set()
        self.trimmer = HeapTrimmer()

    def __len__(self) -> int:
        return len(self._sockets)

    @contextlib.contextmanager
    def track(self, websocket: WebSocket) -> Iterator[None]:
        """Register `websocket` for the duration of the block (its handler's lifetime)."""
        self._sockets.add(websocket)
        self._empty.clear()
        try:
            yield
        finally:
            self._sockets.discard(websocket)
            if not self._sockets:
                self._empty.set()
            self.trimmer.closed()

    async def going_away(self, grace: float, reason: str = "server shutting down") -> int:
        """Close every open websocket with 1001 and `reason`, then wait up to `grace`
        seconds for their handlers to finish (clients answer the close at once; the
        handlers then free their subscriptions). Returns how many were closed."""
        closing = [ws for ws in list(self._sockets) if mark_closing(ws)]
        for websocket in closing:
            with contextlib.suppress(Exception):  # already gone: nothing to tell
                await websocket.close(GOING_AWAY, reason)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._empty.wait()
        log.info("websocket.going_away", closed=len(closing), left=len(self._sockets))
        return len(closing)


@contextlib.asynccontextmanager
async def going_away_on_signal(sockets: OpenWebSockets, grace: float) -> AsyncIterator[None]:
    """While the block runs (the app's lifespan), SIGTERM/SIGINT first close every open
    websocket with 1001 (`OpenWebSockets.going_away`) and only then reach the server's
    own handler (uvicorn's graceful shutdown, which would close them with 1012).

    ASGI has no "shutdown is starting" event before the server closes connections (the
    lifespan shutdown comes after), so this chains the handler that the server installed.
    Does nothing outside the main thread or when no server installed a handler (Python's
    defaults are left alone).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous: dict[int, SignalHandler] = {}
    for sig in signals:
        handler = signal.getsignal(sig)
        if callable(handler) and handler is not signal.default_int_handler:
            previous[sig] = handler
    tasks: set[asyncio.Task[None]] = set()
    started = False

    async def close_then_forward(sig: int, frame: FrameType | None) -> None:
        try:
            await sockets.going_away(grace)
        finally:
            previous[sig](sig, frame)

    def on_signal(sig: int, frame: FrameType | None) -> None:
        nonlocal started
        if started:  # a second signal: no more grace
            previous[sig](sig, frame)
            return
        started = True

        def spawn() -> None:
            task = loop.create_task(close_then_forward(sig, frame), name="websockets-going-away")
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.call_soon_threadsafe(spawn)

    for number in previous:
        signal.signal(number, on_signal)
    try:
        yield
    finally:
        for number, handler in previous.items():
            if signal.getsignal(number) is on_signal:
                signal.signal(number, handler)
