"""Real servers and real websocket clients for the live-subscription tests.

`LiveServer` runs `gql-inventory serve` (the app under uvicorn, as users run it) in a
subprocess on a free loopback port against the test database; `GraphQLWS` speaks
graphql-transport-ws over `websockets`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_inventory.live.cursors import decode_cursor, encode_cursor

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "admin-secret"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
#: Generous bound of every wait (never a timing assertion).
WAIT = 60.0

EVENT_FIELDS = (
    "cursor sku location { id name } kind onHandDelta reservedDelta onHand reserved "
    "available version occurredAt movementId"
)
STOCK_CHANGED = f"""subscription($skus: [String!], $after: String) {{
  stockChanged(skus: $skus, after: $after) {{ {EVENT_FIELDS} }} }}"""
STOCK_CURSOR = "{ stockCursor }"
RESERVE_LINES = """mutation($lines: [StockLineInput!]!) { reserveStock(input: {lines: $lines}) {
  reservation { id } userErrors { code sku } } }"""


def position_of(event: dict[str, Any]) -> int:
    """The ledger position inside an event's cursor."""
    return decode_cursor("stock", event["cursor"])


def cursor_at(position: int) -> str:
    """A stock cursor for `position`."""
    return encode_cursor("stock", position)


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = WAIT, what: str = "condition"
) -> None:
    """Poll `check` until it holds (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class LiveServer:
    """`gql-inventory serve` in a subprocess (``--workers 2`` passes through; with
    uvicorn's ``--ws-*`` options, plain uvicorn with the edge protocols, the websocket one
    unless ``--ws`` names another), its data folder
    and pid file beside `log_path`. `open_files`: the
    subprocess's RLIMIT_NOFILE (soft and hard), as a deployment's ``ulimit -n``."""

    def __init__(
        self, database_url: str, log_path: Path, *, open_files: int | None = None, **env: str
    ) -> None:
        self.port = free_port()
        self.open_files = open_files
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ADMIN_TOKENS": ADMIN_TOKEN,
            "EXPIRY_INTERVAL_SECONDS": "0",
            "GRAPHIQL": "false",
            "LOG_LEVEL": "INFO",
            "BROADCAST_HEARTBEAT_SECONDS": "0.5",
            "DATA_DIR": str(log_path.with_suffix(".data") / "pgdata"),  # serve.pid goes beside
            **env,
        }
        if "BROADCAST_URL" not in env:
            self.env.pop("BROADCAST_URL", None)  # the default: LISTEN/NOTIFY on the database
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    async def start(self, *serve_args: str) -> LiveServer:
        """Start and wait until `/readyz` answers 200."""
        self._spawn(serve_args)
        async with httpx.AsyncClient(base_url=self.http_url) as client:

            async def ready() -> bool:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"server exited:\n{self.log()}")
                with contextlib.suppress(httpx.HTTPError):
                    return (await client.get("/readyz")).status_code == 200
                return False

            await eventually(ready, what="server start")
        return self

    def _spawn(self, serve_args: tuple[str, ...]) -> None:
        self._log = self.log_path.open("ab")
        limit = self.open_files

        def set_limits() -> None:  # in the child, before exec
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        address = ["--host", "127.0.0.1", "--port", str(self.port)]
        if any(arg.startswith("--ws-") for arg in serve_args):
            # uvicorn's websocket options, which `serve` does not offer: plain uvicorn,
            # with the edge protocol named as a user would (docs/edge.md)
            command = ["uvicorn", "gql_inventory.app:create_app", "--factory", "--http"]
            command += ["gql_inventory.edge.connections:EdgeHttpProtocol", "--log-level", "warning"]
            if "--ws" not in serve_args:  # the edge's websocket protocol too, unless named
                command += ["--ws", "gql_inventory.edge.websocket_protocol:EdgeWebSocketProtocol"]
        else:
            command = ["gql_inventory.cli", "serve"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", *command, *address, *serve_args],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=set_limits if limit is not None else None,
        )

    def log(self) -> str:
        """What the server wrote so far."""
        return self.log_path.read_text(errors="replace")

    async def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL if it lingers."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(process.wait), 20)
            except TimeoutError:
                process.kill()
                await asyncio.to_thread(process.wait)
        if self._log is not None:
            self._log.close()

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, admin: bool = False
    ) -> dict[str, Any]:
        """POST an operation; the response body (data and errors)."""
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if admin else {}
        async with httpx.AsyncClient(base_url=self.http_url, timeout=WAIT) as client:
            response = await client.post(
                "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def metric(self, name: str, labels: str = "") -> float:
        """One sample of `/metrics` (0 when absent)."""
        async with httpx.AsyncClient(base_url=self.http_url, timeout=WAIT) as client:
            body = (await client.get("/metrics")).text
        pattern = re.escape(name + (("{" + labels + "}") if labels else "")) + r" (\S+)"
        found = re.search("^" + pattern + "$", body, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    async def stock_cursor(self) -> str:
        """`Query.stockCursor`."""
        body = await self.graphql(STOCK_CURSOR)
        cursor: str = body["data"]["stockCursor"]
        return cursor


async def reserve_on(server: LiveServer, *lines: tuple[str, int]) -> dict[str, Any]:
    """`reserveStock` of ``(sku, quantity)`` lines over HTTP on a live server; the payload
    (``reservation { id }`` and ``userErrors { code sku }``), errors not checked."""
    body = await server.graphql(
        RESERVE_LINES, {"lines": [{"sku": sku, "quantity": q} for sku, q in lines]}
    )
    payload: dict[str, Any] = body["data"]["reserveStock"]
    return payload


class ServerFactory:
    """Starts servers for one test and stops them all afterwards."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.database_url = database_url
        self.tmp_path = tmp_path
        self.servers: list[LiveServer] = []

    async def start(
        self, *serve_args: str, open_files: int | None = None, **env: str
    ) -> LiveServer:
        """A new `serve` process (env: settings overrides such as BROADCAST_URL;
        `open_files`: its ``ulimit -n``)."""
        log = self.tmp_path / f"server-{len(self.servers)}.log"
        server = LiveServer(self.database_url, log, open_files=open_files, **env)
        self.servers.append(server)
        return await server.start(*serve_args)

    async def stop_all(self) -> None:
        """Stop every server started."""
        for server in self.servers:
            await server.stop()


async def wait_positioned(engine: AsyncEngine) -> int:
    """Wait until the relay has positioned every committed movement; the top position."""

    async def done() -> bool:
        async with engine.connect() as conn:
            left = (
                await conn.execute(
                    text("SELECT count(*) FROM stock_movements WHERE position IS NULL")
                )
            ).scalar_one()
        return int(left) == 0

    await eventually(done, what="the relay to position every movement")
    async with engine.connect() as conn:
        top = (
            await conn.execute(text("SELECT coalesce(max(position), 0) FROM stock_movements"))
        ).scalar_one()
    return int(top)


async def wait_hub_at(server: LiveServer, position: int) -> None:
    """Wait until `server`'s hub has dispatched `position` (a subscription registered
    after that receives nothing older: wait_positioned only checks the database)."""

    async def dispatched() -> bool:
        return await server.metric("gql_inventory_hub_position") >= position

    await eventually(dispatched, what=f"the hub to dispatch position {position}")


class GraphQLWS:
    """A graphql-transport-ws client over one websocket connection."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._pending: dict[str, list[dict[str, Any]]] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, url: str, payload: dict[str, Any] | None = None, **kwargs: Any
    ) -> AsyncIterator[GraphQLWS]:
        """Open, send connection_init, expect connection_ack.

        No client-side flow control by default: a client that leaves with unread
        messages must still read the server's close frame (else closing waits for
        `close_timeout`).
        """
        kwargs.setdefault("max_queue", None)
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"], **kwargs) as ws:  # type: ignore[list-item]
            client = cls(ws)
            await ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
            ack = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert ack["type"] == "connection_ack", ack
            yield client

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None, op_id: str | None = None
    ) -> str:
        """Start an operation; its id."""
        op_id = op_id or uuid.uuid4().hex[:8]
        payload = {"query": query, "variables": variables or {}}
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
        return op_id

    async def complete(self, op_id: str) -> None:
        """Stop an operation."""
        await self.ws.send(json.dumps({"id": op_id, "type": "complete"}))

    async def message(self, op_id: str, within: float = WAIT) -> dict[str, Any]:
        """The next message (next, error or complete) of operation `op_id`."""
        queued = self._pending.get(op_id)
        if queued:
            return queued.pop(0)
        deadline = time.monotonic() + within
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), max(deadline - time.monotonic(), 0.01))
            message = json.loads(raw)
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            if message.get("id") == op_id:
                return message  # type: ignore[no-any-return]
            self._pending.setdefault(message.get("id", ""), []).append(message)

    async def data(self, op_id: str, within: float = WAIT) -> dict[str, Any]:
        """The next `next` payload's data of `op_id`; fails on error/complete."""
        message = await self.message(op_id, within)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def events(self, op_id: str, count: int, field: str = "stockChanged") -> list[Any]:
        """The next `count` events of a subscription."""
        return [(await self.data(op_id))[field] for _ in range(count)]

    async def error(self, op_id: str) -> dict[str, Any]:
        """The `error` message of an operation refused before it started."""
        message = await self.message(op_id)
        assert message["type"] == "error", message
        first: dict[str, Any] = message["payload"][0]
        return first
