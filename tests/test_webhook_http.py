"""The webhook sender's HTTP client (`outbound/webhook_http.py`, aiohttp's) against raw TCP
servers that answer byte for byte: keep-alive reuse, bodies cut at the limit, chunked
answers, hostile answers refused with a clear error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gql_inventory.outbound.webhook_http import HttpError, WebhookClient

Serve = Callable[..., Awaitable["RawServer"]]


class RawServer:
    """Answers each request on a connection with `answer` (bytes), counting connections
    and requests; `close_after` closes the connection after that many answers."""

    def __init__(self, answer: bytes, *, close_after: int | None = None) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                self.requests.append(head + await reader.readexactly(length))
                writer.write(self.answer)
                await writer.drain()
                served += 1
                if self.close_after is not None and served >= self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(answer: bytes, **options: int) -> RawServer:
        raw = RawServer(answer, **options)
        server = await asyncio.start_server(raw._serve, "127.0.0.1", 0)
        raw.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return raw

    yield start
    for server in servers:
        server.close()


async def test_answers_reuse_one_keep_alive_connection(serve: Serve) -> None:
    raw = await serve(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
    client = WebhookClient(idle_per_origin=4, allow_private=True)
    for n in range(3):
        answer = await client.post(raw.url(), b"{}", {"webhook-id": f"m{n}"}, read_at_most=4096)
        assert (answer.status, answer.body) == (204, b"")
    await client.aclose()
    assert raw.connections == 1
    assert len(raw.requests) == 3
    first = raw.requests[0]
    assert first.startswith(b"POST /hook HTTP/1.1\r\n")
    assert b"\r\nwebhook-id: m0\r\n" in first
    assert first.endswith(b"\r\n\r\n{}")


async def test_a_long_body_is_cut_and_its_connection_not_reused(serve: Serve) -> None:
    """An answer far past what aiohttp buffers is never read whole: its connection closes."""
    size = 8_000_000
    raw = await serve(b"HTTP/1.1 500 Oops\r\ncontent-length: %d\r\n\r\n" % size + b"x" * size)
    client = WebhookClient(idle_per_origin=4, allow_private=True)
    for _ in range(2):
        answer = await client.post(raw.url(), b"{}", {}, read_at_most=4096)
        assert (answer.status, len(answer.body)) == (500, 4096)
    await client.aclose()
    assert raw.connections == 2


async def test_a_chunked_answer_is_read_and_the_connection_reused(serve: Serve) -> None:
    raw = await serve(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\ntrailer: x\r\n\r\n"
    )
    client = WebhookClient(idle_per_origin=4, allow_private=True)
    for _ in range(2):
        answer = await client.post(raw.url(), b"{}", {}, read_at_most=4096)
        assert (answer.status, answer.body) == (200, b"hello world")
    await client.aclose()
    assert raw.connections == 1


async def test_a_closed_connection_is_not_reused(serve: Serve) -> None:
    raw = await serve(
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", close_after=1
    )
    client = WebhookClient(idle_per_origin=4, allow_private=True)
    for _ in range(2):
        assert (await client.post(raw.url(), b"{}", {}, read_at_most=4096)).status == 200
    await client.aclose()
    assert raw.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2x0 Odd\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nx: " + b"a" * 70000 + b"\r\n\r\n",
    ],
)
async def test_a_hostile_answer_is_an_error_not_a_delivery(serve: Serve, answer: bytes) -> None:
    raw = await serve(answer, close_after=1)
    client = WebhookClient(idle_per_origin=4, allow_private=True)
    with pytest.raises(HttpError):
        await client.post(raw.url(), b"{}", {}, read_at_most=4096)
    await client.aclose()


async def test_a_header_with_a_line_break_is_refused_before_sending(serve: Serve) -> None:
    raw = await serve(b"HTTP/1.1 204 No Content\r\n\r\n")
    client = WebhookClient(idle_per_origin=4, allow_private=True)
    with pytest.raises(ValueError, match="line break"):
        await client.post(raw.url(), b"{}", {"webhook-id": "a\r\nx: y"}, read_at_most=4096)
    await client.aclose()
    assert raw.requests == []


async def test_nothing_listening_is_a_connect_error() -> None:
    client = WebhookClient(idle_per_origin=4, allow_private=True)
    with pytest.raises(HttpError, match="connect"):
        await client.post("http://127.0.0.1:9/none", b"{}", {}, read_at_most=4096)
    await client.aclose()


async def test_a_name_resolving_to_a_private_address_is_refused_at_connect(serve: Serve) -> None:
    """DNS rebinding: whatever the check before the send saw, the connection is made only
    to an address judged when it is made (`localhost` resolves to 127.0.0.1)."""
    raw = await serve(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
    url = raw.url().replace("127.0.0.1", "localhost")
    client = WebhookClient(idle_per_origin=4, allow_private=False)
    with pytest.raises(HttpError, match="loopback"):
        await client.post(url, b"{}", {}, read_at_most=4096)
    await client.aclose()
    assert raw.requests == []
    allowed = WebhookClient(idle_per_origin=4, allow_private=True)
    assert (await allowed.post(url, b"{}", {}, read_at_most=4096)).status == 204
    await allowed.aclose()


async def test_a_metadata_address_is_refused_even_when_private_ones_are_allowed() -> None:
    from gql_inventory.outbound.webhook_http import CheckedResolver

    resolver = CheckedResolver(allow_private=True)
    with pytest.raises(OSError, match="metadata"):
        await resolver.resolve("169.254.169.254", 80)
    assert (await resolver.resolve("localhost", 80))[0]["host"] in ("127.0.0.1", "::1")
    await resolver.close()
