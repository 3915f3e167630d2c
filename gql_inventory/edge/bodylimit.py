"""A request body size limit for one ASGI route: 413 before reading further.

A `Content-Length` above the limit is answered at once, without reading the body.
A chunked body (or one whose declared length lies) is counted as it streams in;
the moment the count passes the limit the client gets 413 and the app gets no more
of the body (RFC 9110 §15.5.14 "413 Content Too Large").
"""

from __future__ import annotations

import contextlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql_inventory.kit.logs import get_logger

log = get_logger(__name__)


class _BodyTooLarge(Exception):
    """Raised into the app from `receive` once the body passed the limit."""


def error_body(message: str, code: str) -> bytes:
    """A GraphQL-shaped error document: ``{"errors": [{"message", "extensions": {"code"}}]}``."""
    return json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()


class BodyLimit:
    """Wrap an ASGI app so that HTTP bodies above `max_bytes` bytes get 413.

    The 413 carries a GraphQL error with code ``PAYLOAD_TOO_LARGE``. Anything the
    wrapped app tries to send after that is dropped. Websockets pass through.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            log.warning("request.too_large", path=scope.get("path"), declared_bytes=declared)
            await self._refuse(send)
            return

        received = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    log.warning("request.too_large", path=scope.get("path"), read_bytes=received)
                    if not started:
                        await self._refuse(send)
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the client already has its 413
            started = True
            await send(message)

        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send: Send) -> None:
        body = error_body(f"request body larger than {self.max_bytes} bytes", "PAYLOAD_TOO_LARGE")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
