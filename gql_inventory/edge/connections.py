"""What the server closes, and when: uvicorn's httptools protocol with our timeouts and caps.

`EdgeHttpProtocol` is uvicorn's `HttpToolsProtocol` (uvicorn parses every byte) with:

- the keep-alive idle limit `KEEP_ALIVE_SECONDS` (75 s: longer than the clients' own, so a
  client never reuses a connection the server is closing);
- a header read timeout (`HEADER_TIMEOUT_SECONDS`, from connect or from a request's
  first byte to the end of its head; uvicorn has none) and a body read timeout
  (`BODY_TIMEOUT_SECONDS`, head to end of body; 408 when the app has not answered yet);
- caps on open connections per client address (`MAX_CONNECTIONS_PER_CLIENT`: surplus
  refused) and per process (`MAX_CONNECTIONS`, default from ``ulimit -n``): at the cap the
  connection idle or waiting for a request head the longest is closed to let a new one in.

Each of these logs an ``http.*`` event when it acts, as does a connection lost with a
request unanswered. `serve` passes the class to uvicorn (``http=``); figures and the why
are in docs/adr/0015-connection-edge.md, what a load balancer must be set to in docs/edge.md.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import weakref
from collections import Counter
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gql_inventory.kit.logs import get_logger
from gql_inventory.settings import Settings, get_settings

log = get_logger(__name__)

#: File descriptors kept out of `MAX_CONNECTIONS`'s default: database pool, broadcast,
#: listening socket, logs and files the app opens.
RESERVED_FILES = 128


def default_max_connections(settings: Settings) -> int:
    """`settings.max_connections`, or unset: the soft ``RLIMIT_NOFILE`` minus
    `RESERVED_FILES` (at least 16); 0 (no cap) when the limit is unlimited."""
    if settings.max_connections is not None:
        return settings.max_connections
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 0
    return max(16, soft - RESERVED_FILES)


class ConnectionGuard:
    """The caps of one uvicorn server (one process): connections per client address, and
    the connections with no request in flight, oldest first (the ones closed at the cap)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.max_connections = default_max_connections(settings)
        self.max_per_client = settings.max_connections_per_client
        self.per_client: Counter[str] = Counter()
        self.waiting: dict[EdgeHttpProtocol, None] = {}  # insertion order = age

    def admit(self, conn: EdgeHttpProtocol, open_connections: int) -> bool:
        """Count a new connection (`open_connections` includes it); False: refuse it."""
        host = conn.client_host
        if host is not None:
            if self.max_per_client and self.per_client[host] >= self.max_per_client:
                log.warning(
                    "http.connection_refused",
                    cause="per-client cap",
                    client=host,
                    open=self.per_client[host],
                    limit=self.max_per_client,
                )
                return False
            self.per_client[host] += 1
            conn.counted = True
        if self.max_connections and open_connections > self.max_connections:
            oldest = next(iter(self.waiting), None)
            if oldest is None:
                log.warning(
                    "http.connection_refused",
                    cause="server cap, every connection busy",
                    client=host,
                    limit=self.max_connections,
                )
                self.forget(conn)
                return False
            log.warning(
                "http.connection_evicted",
                cause="server cap",
                client=oldest.client_host,
                state=oldest.state(),
                limit=self.max_connections,
            )
            oldest.close()
        self.waiting[conn] = None
        return True

    def wait(self, conn: EdgeHttpProtocol) -> None:
        """`conn` has no request in flight (again): it is the newest such connection."""
        self.waiting.pop(conn, None)
        self.waiting[conn] = None

    def busy(self, conn: EdgeHttpProtocol) -> None:
        """`conn` has a request in flight: never closed to make room."""
        self.waiting.pop(conn, None)

    def forget(self, conn: EdgeHttpProtocol) -> None:
        """`conn` is closed (or became a websocket, counted by uvicorn alone)."""
        self.waiting.pop(conn, None)
        if conn.counted and conn.client_host is not None:
            conn.counted = False
            self.per_client[conn.client_host] -= 1
            if self.per_client[conn.client_host] <= 0:
                del self.per_client[conn.client_host]


_guards: weakref.WeakKeyDictionary[ServerState, ConnectionGuard] = weakref.WeakKeyDictionary()


def _guard_of(server_state: ServerState) -> ConnectionGuard:
    guard = _guards.get(server_state)
    if guard is None:
        guard = _guards[server_state] = ConnectionGuard(get_settings())
    return guard


class EdgeHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus the timeouts and caps of this module's docstring.

    Only uvicorn's hooks are overridden (connection made/lost, parser callbacks, the
    keep-alive handler); every call goes on to uvicorn's own code.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = _guard_of(server_state)
        settings = self.guard.settings
        self.timeout_keep_alive = settings.keep_alive_seconds
        self.header_timeout = settings.header_timeout_seconds
        self.body_timeout = settings.body_timeout_seconds
        self.client_host: str | None = None
        self.counted = False
        self.deadline: asyncio.TimerHandle | None = None

    def state(self) -> str:
        """``idle`` (between requests) or ``reading head`` (connected or mid-head)."""
        return "idle" if self.timeout_keep_alive_task is not None else "reading head"

    def close(self) -> None:
        """Close the connection (its `connection_lost` does the rest)."""
        self._cancel_deadline()
        self.guard.busy(self)
        if not self.transport.is_closing():
            self.transport.close()

    # -- connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.client_host = self.client[0] if self.client else None
        if not self.guard.admit(self, len(self.connections)):
            transport.close()
            return
        self._arm(self.header_timeout, self._header_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self.guard.forget(self)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            log.warning(
                "http.request_unanswered",
                cause=f"connection lost: {exc!r}" if exc else "client closed the connection",
                client=self.client_host,
                path=cycle.scope.get("path"),
                response_started=cycle.response_started,
            )
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self._cancel_deadline()
        self.guard.forget(self)
        super().handle_websocket_upgrade()

    # -- parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.deadline is None:  # a new connection's deadline runs from connect
            self._arm(self.header_timeout, self._header_timed_out)

    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        self.guard.busy(self)
        super().on_headers_complete()
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm(self.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # idle again, keep-alive armed
            self.guard.wait(self)

    # -- timeouts
    def timeout_keep_alive_handler(self) -> None:
        """The idle limit passed: close, unless a request's bytes arrived meanwhile (the
        event loop ran this timer before reading them); then leave it to be served."""
        if self._has_unread_bytes():
            log.info("http.keep_alive_race", client=self.client_host, outcome="served")
            self.timeout_keep_alive_task = None
            return
        self.guard.busy(self)
        super().timeout_keep_alive_handler()

    def _header_timed_out(self) -> None:
        self.deadline = None
        log.warning(
            "http.header_timeout",
            client=self.client_host,
            seconds=self.header_timeout,
            state="connected, nothing sent" if self.cycle is None else "mid-head",
        )
        self.close()

    def _body_timed_out(self) -> None:
        self.deadline = None
        cycle = self.cycle
        log.warning(
            "http.body_timeout",
            client=self.client_host,
            seconds=self.body_timeout,
            path=cycle.scope.get("path"),
            answered=not cycle.response_started,
        )
        if cycle.response_started:
            self.close()
            return
        cycle.keep_alive = False  # uvicorn closes the connection after the 408
        self.loop.create_task(self._answer_408())

    async def _answer_408(self) -> None:
        """408 through uvicorn's own response writer; then the app's answer, if any, is
        dropped and the app reads a disconnect."""
        cycle = self.cycle
        body = b"Request body not received in time."
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await cycle.send({"type": "http.response.start", "status": 408, "headers": headers})
        await cycle.send({"type": "http.response.body", "body": body})
        cycle.disconnected = True
        cycle.message_event.set()

    def _arm(self, seconds: float, callback: Any) -> None:
        self._cancel_deadline()
        if seconds > 0:
            self.deadline = self.loop.call_later(seconds, callback)

    def _cancel_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _has_unread_bytes(self) -> bool:
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            with socket.fromfd(sock.fileno(), sock.family, sock.type) as dup:
                return bool(dup.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except OSError:
            return False
