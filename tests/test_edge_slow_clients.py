"""Slow clients do not take the server (issue 15, fault 9): slow-header connections under
a 1,024 open-files limit are closed while `/healthz` keeps answering, a slow body gets 408,
and one address's surplus connections are refused; each logged (docs/edge.md,
docs/adr/0015-connection-edge.md). The attackers are bounded loops on loopback only."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import h11
import httpx
import pytest

from tests.support.live import LiveServer, ServerFactory

#: The common ``ulimit -n`` the fault was measured under.
OPEN_FILES = 1024
SLOW_CONNECTIONS = 3000
#: Source addresses of the slow clients (all of 127/8 is loopback): 12 x 250 connections,
#: each address under the per-client cap, so the process-wide cap is what must hold.
ATTACKERS = [f"127.0.0.{n}" for n in range(2, 14)]
#: The slow client sends one header line this often, as measured.
DRIBBLE_SECONDS = 10.0
#: Each slow client gives up after this long (the attack ends itself): twice the
#: default HEADER_TIMEOUT_SECONDS, so a connection still open then was never closed.
HOLD_SECONDS = 20.0


@pytest.fixture
def many_files() -> Iterator[None]:
    """This test process may hold the slow clients' sockets (raised to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = SLOW_CONNECTIONS + 1000
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@dataclass
class SlowClients:
    """Opens connections that dribble a request head, one line every `DRIBBLE_SECONDS`."""

    port: int
    opened: int = 0
    closed_by_server: int = 0
    failed_to_connect: int = 0
    open_seconds: float = 0.0
    tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)

    async def one(self, source: str, index: int) -> None:
        """One slow client: the request line, then a header line per dribble, until the
        server closes the connection or `HOLD_SECONDS` pass."""
        stop_at = time.monotonic() + HOLD_SECONDS
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", self.port, local_addr=(source, 0)
            )
        except OSError:
            self.failed_to_connect += 1
            return
        self.opened += 1
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            line = 0
            while time.monotonic() < stop_at:
                wait = min(DRIBBLE_SECONDS, stop_at - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    if not await asyncio.wait_for(reader.read(1024), wait):
                        self.closed_by_server += 1
                        return
                line += 1
                writer.write(f"X-Slow-{index}-{line}: 1\r\n".encode())
        except ConnectionError:
            self.closed_by_server += 1
        finally:
            writer.close()

    async def attack(self, count: int, per_second: float) -> None:
        """`count` slow clients from `ATTACKERS` in turn, about `per_second` of them a
        second (in bursts of 50, each burst connecting at once)."""
        started = time.monotonic()
        for first in range(0, count, 50):
            burst = [
                asyncio.create_task(self.one(ATTACKERS[i % len(ATTACKERS)], i))
                for i in range(first, min(first + 50, count))
            ]
            self.tasks += burst
            await asyncio.sleep(max(0.0, started + (first + 50) / per_second - time.monotonic()))
        self.open_seconds = time.monotonic() - started
        await asyncio.gather(*self.tasks)


async def _probe(server: LiveServer) -> int | str:
    """GET /healthz on a fresh connection (as a monitor does): the status or the error."""
    try:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=5.0) as client:
            return (await client.get("/healthz")).status_code
    except httpx.HTTPError as exc:
        return repr(exc)


async def test_3000_slow_header_connections_under_1024_open_files_leave_healthz_answering(
    servers: ServerFactory, many_files: None
) -> None:
    server = await servers.start(open_files=OPEN_FILES)
    clients = SlowClients(server.port)
    attack = asyncio.create_task(clients.attack(SLOW_CONNECTIONS, 200.0))
    probes: list[int | str] = []
    while not attack.done():
        probes.append(await _probe(server))
        await asyncio.sleep(0.25)
    await attack
    print(f"slow clients: {clients}, probes: {len(probes)}")  # the figures of ADR 0015

    assert clients.opened == SLOW_CONNECTIONS
    assert [p for p in probes if p != 200] == []
    assert len(probes) > 40  # it was asked throughout the attack
    assert clients.closed_by_server == SLOW_CONNECTIONS  # none held until the attack ended
    log = server.log()
    assert "http.header_timeout" in log
    assert "http.connection_evicted" in log
    assert "Too many open files" not in log


async def _raw(
    port: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _answer(reader: asyncio.StreamReader) -> tuple[int | None, bool]:
    """The status of the response read from `reader` (None: none came), once the server
    closed the connection (True; a connection left open fails the bounded read)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="POST", target="/graphql", headers=[("Host", "x")]))
    status = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                conn.receive_data(await asyncio.wait_for(reader.read(65536), 30.0))
            except ConnectionError:
                conn.receive_data(b"")
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
        if isinstance(event, h11.ConnectionClosed):
            return status, True


async def test_a_slow_body_gets_408_and_a_silent_connection_is_closed(
    servers: ServerFactory,
) -> None:
    server = await servers.start(BODY_TIMEOUT_SECONDS="1", HEADER_TIMEOUT_SECONDS="1")
    reader, writer = await _raw(server.port)
    writer.write(
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n" + b'{"query": '
    )
    status, closed = await _answer(reader)
    writer.close()
    assert (status, closed) == (408, True)

    silent_reader, silent = await _raw(server.port)  # connects, sends nothing
    assert await asyncio.wait_for(silent_reader.read(1024), 30.0) == b""
    silent.close()
    log = server.log()
    assert "http.body_timeout" in log
    assert "http.header_timeout" in log
    assert "Traceback" not in log  # the app read a disconnect after the 408, quietly


async def test_one_addresss_surplus_connections_are_refused(servers: ServerFactory) -> None:
    server = await servers.start(MAX_CONNECTIONS_PER_CLIENT="20")
    held = [await _raw(server.port, "127.0.0.5") for _ in range(30)]

    async def closed(reader: asyncio.StreamReader) -> bool:
        try:
            return await asyncio.wait_for(reader.read(1024), 2.0) == b""
        except TimeoutError:
            return False  # still open: admitted
        except ConnectionError:
            return True

    refused = await asyncio.gather(*(closed(reader) for reader, _ in held))
    assert refused == [False] * 20 + [True] * 10
    assert await _probe(server) == 200  # another address is served meanwhile
    for _, writer in held:
        writer.close()
    assert "http.connection_refused" in server.log()
