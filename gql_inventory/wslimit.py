"""A cap on open websocket connections per process (`MAX_WEBSOCKET_CONNECTIONS`)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from gql_inventory import metrics
from gql_inventory.logs import get_logger

log = get_logger(__name__)

#: Close code of a connection refused at the limit ("Try Again Later").
TRY_AGAIN_LATER = 1013


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
