"""The webhook sender's HTTP/1.1 client: one POST, keep-alive connections per origin, no
redirects followed, no proxies, no cookies, only the first bytes of the answer read
(ADR 0019, "Throughput": httpx cost about half the worker's CPU per message).

HTTP/1.1 as RFC 9112 gives it: the answer's body is delimited by Transfer-Encoding:
chunked, else Content-Length, else the connection's end (section 6.3). A connection goes
back to the pool only when its answer was read whole and neither side said ``close``.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

#: The longest answer head (status line and headers) accepted, bytes.
MAX_HEAD = 64 * 1024
_USER_AGENT = "gql-inventory-webhooks"
_Origin = tuple[str, str, int]


class HttpError(Exception):
    """The request got no usable answer: connecting, TLS, writing, or an answer that is
    not HTTP/1.x. The message says which."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer: its `status` code and the first bytes of its `body` (at most the
    caller's `read_at_most`)."""

    status: int
    body: bytes


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def usable(self) -> bool:
        return not (self.writer.is_closing() or self.reader.at_eof())

    def close(self) -> None:
        self.writer.close()


class WebhookClient:
    """POSTs webhooks; keeps at most `idle_per_origin` idle connections per scheme, host
    and port. TLS is verified against the system's CAs (certifi's bundle when installed,
    as httpx did). Close it with `aclose`."""

    def __init__(self, *, idle_per_origin: int) -> None:
        self._idle_per_origin = idle_per_origin
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], *, read_at_most: int
    ) -> Answer:
        """POST `body` to `url` (http or https) with `headers` (names and values without
        CR or LF); the answer with at most `read_at_most` bytes of its body. Raises
        `HttpError` (see the class), `ValueError` for a header with CR or LF. No timeout
        of its own: the caller bounds it."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        secure = parts.scheme == "https"
        origin = (parts.scheme, host, parts.port or (443 if secure else 80))
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~") + (
            "?" + quote(parts.query, safe="/%:@!$&'()*+,;=~?") if parts.query else ""
        )
        lines = [
            f"POST {target} HTTP/1.1",
            f"host: {parts.netloc.encode('idna').decode()}",
            f"user-agent: {_USER_AGENT}",
            f"content-length: {len(body)}",
        ]
        for name, value in headers.items():
            if any(c in name or c in value for c in "\r\n\0"):
                raise ValueError(f"the header {name!r} holds a line break")
            lines.append(f"{name}: {value}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        connection = self._take(origin) or await self._open(origin, secure)
        try:
            connection.writer.write(request)
            await connection.writer.drain()
            answer, keep = await _read_answer(connection.reader, read_at_most)
        except (OSError, EOFError, asyncio.LimitOverrunError, ValueError) as exc:
            connection.close()
            raise HttpError(_why(exc)) from None
        except BaseException:
            connection.close()
            raise
        if keep:
            self._give(origin, connection)
        else:
            connection.close()
        return answer

    async def aclose(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _take(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    def _give(self, origin: _Origin, connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < self._idle_per_origin:
            idle.append(connection)
        else:
            connection.close()

    async def _open(self, origin: _Origin, secure: bool) -> _Connection:
        _, host, port = origin
        try:
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=self._tls_context() if secure else None,
                server_hostname=host if secure else None,
                limit=MAX_HEAD,
            )
        except OSError as exc:
            raise HttpError(f"connect: {_why(exc)}") from None
        return _Connection(reader, writer)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            try:
                import certifi

                self._tls = ssl.create_default_context(cafile=certifi.where())
            except ImportError:  # pragma: no cover - httpx brings certifi
                self._tls = ssl.create_default_context()
        return self._tls


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


async def _read_answer(reader: asyncio.StreamReader, read_at_most: int) -> tuple[Answer, bool]:
    """The answer's status and first body bytes, and whether the connection may be used
    again (the body read whole, no ``close``, HTTP/1.1)."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].split(b"\r\n")
        version, _, rest = status_line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ValueError("the answer is not HTTP/1.x")
        status = int(code)
        if status == 101 or not 100 <= status < 200:
            break  # informational answers (100, 103) come before the real one
    fields: dict[bytes, bytes] = {}
    for line in header_lines:
        name, colon, value = line.partition(b":")
        if not colon:
            raise ValueError("a malformed answer header")
        key = name.strip().lower()
        fields[key] = (fields[key] + b"," if key in fields else b"") + value.strip()
    keep = version == b"HTTP/1.1" and b"close" not in fields.get(b"connection", b"").lower()
    if status in (101, 204, 304) or 100 <= status < 200:
        return Answer(status, b""), keep and status != 101
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        body, whole = await _read_chunked(reader, read_at_most)
        return Answer(status, body), keep and whole
    if b"content-length" in fields:
        lengths = {v.strip() for v in fields[b"content-length"].split(b",")}
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise ValueError("a malformed Content-Length")
        length = int(next(iter(lengths)))
        body = await reader.readexactly(min(length, read_at_most))
        return Answer(status, body), keep and length <= read_at_most
    return Answer(status, await reader.read(read_at_most)), False


async def _read_chunked(reader: asyncio.StreamReader, read_at_most: int) -> tuple[bytes, bool]:
    """Up to `read_at_most` bytes of a chunked body, and whether it was read to its end."""
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ValueError("a malformed chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailer fields, ignored
            return bytes(body), True
        room = read_at_most - len(body)
        if size > room:
            body += await reader.readexactly(room)
            return bytes(body), False
        body += await reader.readexactly(size)
        await reader.readexactly(2)
