"""`EdgeWebSocketProtocol` under a real uvicorn server: the framed write reaches the client
as the text it frames, says GONE once the connection has closed, and a closed
connection's protocol is freed by reference counting alone (no cycle through its scope:
docs/adr/0010-shared-subscription-execution.md, "Memory back on leave")."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
import websockets

from gql_inventory.edge.websocket_protocol import (
    FRAMED_SEND,
    EdgeWebSocketProtocol,
    FramedText,
    Sent,
)
from tests.support.live import eventually, free_port


class _App:
    """Accepts a websocket, writes one framed message, waits for the client to leave,
    then tries to write again; keeps a weak reference to the connection's protocol."""

    def __init__(self) -> None:
        self.protocols: list[weakref.ref[Any]] = []
        self.after_close: list[Sent] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        send_framed = scope["extensions"][FRAMED_SEND]
        self.protocols.append(weakref.ref(send_framed.__self__))
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        assert send_framed(FramedText.of('{"é":"framed once"}')) is Sent.SENT
        while (await receive())["type"] != "websocket.disconnect":
            pass
        self.after_close.append(send_framed(FramedText.of("late")))


@contextlib.asynccontextmanager
async def _serving(app: _App) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws=EdgeWebSocketProtocol, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:

        async def started() -> bool:
            return server.started

        await eventually(started, what="uvicorn to start")
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await task


async def test_framed_write_and_a_closed_connection_freed_without_the_collector() -> None:
    app = _App()
    gc.disable()
    try:
        async with _serving(app) as url:
            async with websockets.connect(url, compression=None) as ws:
                assert await ws.recv() == '{"é":"framed once"}'

            async def closed() -> bool:
                return bool(app.after_close)

            await eventually(closed, what="the app to see the client leave")
            assert app.after_close == [Sent.GONE]

            async def freed() -> bool:
                return all(ref() is None for ref in app.protocols)

            await eventually(freed, what="the closed connection's protocol to be freed")
    finally:
        gc.enable()
