"""A real webhook receiver for the delivery tests: a Starlette app under uvicorn on a free
127.0.0.1 port, in the test's event loop, recording every request as it arrives.

Each path answers from a script: a list of status codes used in turn (the last one
repeats), 200 by default; a path in `hanging` holds each request open until `release()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.live import free_port


@dataclass(frozen=True, slots=True)
class Received:
    """One request as it arrived: `path`, lower-cased `headers`, exact `body` bytes."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        """The webhook-id header."""
        return self.headers["webhook-id"]

    @property
    def timestamp(self) -> int:
        """The webhook-timestamp header (seconds)."""
        return int(self.headers["webhook-timestamp"])


@dataclass
class Receiver:
    """Records requests to any path; answers `answers[path]` in turn (see the module)."""

    answers: dict[str, list[int]] = field(default_factory=dict)
    hanging: set[str] = field(default_factory=set)
    requests: list[Received] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _served: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        """The URL of `path` (starting with ``/``) on this receiver."""
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path: str) -> list[Received]:
        """The requests received on `path`, in arrival order."""
        return [r for r in self.requests if r.path == path]

    def release(self) -> None:
        """Let the held requests (and later ones) of hanging paths answer 200."""
        self._released.set()

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        body = await request.body()
        self.requests.append(
            Received(path, {k.lower(): v for k, v in request.headers.items()}, body)
        )
        if path in self.hanging:
            await self._released.wait()
            return Response("released", 200)
        script = self.answers.get(path, [200])
        turn = self._served.get(path, 0)
        self._served[path] = turn + 1
        status = script[min(turn, len(script) - 1)]
        headers = {"location": self.url("/redirected")} if 300 <= status < 400 else None
        return Response(f"answer {status} " + "x" * 3000, status, headers=headers)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        """Serve for the duration of the block."""
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "GET"])])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            log_config=None,  # leave the process's logging alone (tests/test_logs.py)
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        try:
            yield self
        finally:
            self.release()
            server.should_exit = True
            await task
