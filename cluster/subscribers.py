"""Subscribers through HAProxy: `stockChanged(skus:, after:)` over graphql-transport-ws
(the `gql` client), resumed from their last cursor whenever their connection drops
(docs/resuming.md), every event's level and version recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import WebSocketException

SUBSCRIBE = """subscription($skus: [String!], $after: String) {
  stockChanged(skus: $skus, after: $after) { cursor sku location { id } version } }"""

#: Pause before reconnecting (seconds).
RECONNECT_PAUSE = 0.2

#: A level as events name it: ``(sku, location id)``.
Level = tuple[str, str]


@dataclass
class Subscriber:
    """One subscriber of `skus` from `cursor` on, through `ws_url`.

    `seen` lists the versions received per level, in arrival order; `connects` counts
    the connections that were acknowledged (more than one: it resumed); `errors` the
    GraphQL errors received (a resume refused, e.g. CURSOR_EXPIRED).
    """

    ws_url: str
    skus: list[str]
    cursor: str
    seen: dict[Level, list[int]] = field(default_factory=lambda: defaultdict(list))
    connects: int = 0
    errors: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def last_version(self, level: Level) -> int:
        """The newest version received for `level` (0: none)."""
        versions = self.seen.get(level)
        return versions[-1] if versions else 0

    async def run(self) -> None:
        """Subscribe, and resume after every drop, until cancelled."""
        while True:
            try:
                await self._session()
            except TransportQueryError as exc:
                self.errors.append(_code(exc))
            except (TransportError, WebSocketException, OSError, TimeoutError) as exc:
                del exc  # the connection dropped: resume from the last cursor
            self.connected.clear()
            await asyncio.sleep(RECONNECT_PAUSE)

    async def _session(self) -> None:
        transport = WebsocketsTransport(
            url=self.ws_url,
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            connect_timeout=5,
            ack_timeout=5,
            close_timeout=1,
        )
        async with Client(transport=transport) as session:
            self.connects += 1
            self.connected.set()
            request = GraphQLRequest(
                SUBSCRIBE, variable_values={"skus": self.skus, "after": self.cursor}
            )
            async for data in session.subscribe(request):
                event: dict[str, Any] = data["stockChanged"]
                level = (event["sku"], str(event["location"]["id"]))
                self.seen[level].append(int(event["version"]))
                self.cursor = event["cursor"]


def _code(exc: TransportQueryError) -> str:
    """The `extensions.code` of a GraphQL error (or its message)."""
    errors = exc.errors or []
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        if code:
            return str(code)
    return str(exc)


async def stop_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the subscribers' tasks and wait for them."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
