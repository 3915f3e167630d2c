"""uvicorn's websocket protocol (the websockets sans-I/O one) with an ASGI extension for
fan-outs: a text message framed once is written to each socket as the same bytes.

`EdgeWebSocketProtocol` puts its `send_framed` into every connection's
``scope["extensions"][FRAMED_SEND]``; `FramedText.of` frames a message with websockets'
own `Frame` (a server's frame: unmasked). A write goes straight to the transport when the
socket takes it, with no coroutine, no ASGI message and no framing per socket; a
connection that negotiated an extension (per-message deflate) frames its own copy through
its websockets connection, as uvicorn's `send` does. `serve` passes the class to uvicorn
(``ws=``); plain uvicorn: ``--ws gql_inventory.edge.websocket_protocol:EdgeWebSocketProtocol``.
Why and the figures: docs/adr/0022-framed-fan-out.md.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State

#: Key of `EdgeWebSocketProtocol.send_framed` in a websocket scope's ``extensions``.
FRAMED_SEND = "gql_inventory.framed_send"


class Sent(enum.Enum):
    """What `send_framed` did with a message."""

    #: Written to the transport (the kernel has it, or the transport buffers it).
    SENT = "sent"
    #: Not written: the transport is paused (past its high-water mark); send it with an
    #: awaited ASGI ``websocket.send`` once the writer may go on.
    PAUSED = "paused"
    #: Not written: the connection is closing or gone.
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class FramedText:
    """A text message and its websocket frame (bytes on the wire), made once."""

    text: str
    frame: bytes

    @classmethod
    def of(cls, text: str) -> FramedText:
        """`text` framed by websockets as a server frames it (FIN, unmasked, no extension)."""
        return cls(text, Frame(Opcode.TEXT, text.encode()).serialize(mask=False))


#: The type of `EdgeWebSocketProtocol.send_framed` (as found in a scope).
SendFramed = Callable[[FramedText], Sent]


class EdgeWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's `WebSocketsSansIOProtocol`, offering `send_framed` to the app."""

    def handle_connect(self, event: Request) -> None:
        """uvicorn's; then the extension goes into the new connection's scope."""
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # none when the handshake was refused
        if scope is not None:
            scope["extensions"][FRAMED_SEND] = self.send_framed

    def connection_lost(self, exc: Exception | None) -> None:
        """uvicorn's; then the extension leaves the scope, whose bound method would hold the
        protocol in a cycle (scope -> method -> protocol -> scope) that only the cyclic
        collector frees (docs/adr/0010-shared-subscription-execution.md)."""
        super().connection_lost(exc)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"].pop(FRAMED_SEND, None)

    def send_framed(self, message: FramedText) -> Sent:
        """Write `message` now if the socket takes it (`Sent.SENT`); `Sent.PAUSED` while
        the transport is paused, `Sent.GONE` once the connection is not open (the same
        states in which uvicorn's ASGI ``send`` waits or raises)."""
        if (
            self.disconnected
            or self.close_sent
            or not self.handshake_complete
            or self.initial_response is not None
            or self.conn.state is not State.OPEN
        ):
            return Sent.GONE
        if not self.writable.is_set():
            return Sent.PAUSED
        if self.conn.extensions:
            self.conn.send_text(message.text.encode())
            self.transport.write(b"".join(self.conn.data_to_send()))
        else:
            self.transport.write(message.frame)
        return Sent.SENT
