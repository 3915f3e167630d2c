"""Every request is answered (issue 15, fault 1): a kept-alive connection reused around
the moment a common client still trusts it (httpx: 5 s) reaches the server, and hundreds
of keyed and unkeyed reserves over 200 real connections all get an HTTP answer, the
"reserved" answers matching the ACTIVE reservations in the database
(docs/adr/0015-connection-edge.md)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import h11
import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.catalog import Catalog, make_location, make_product
from tests.support.invariants import assert_invariants
from tests.support.live import WAIT, ServerFactory
from tests.support.scenarios import fetch_one

Sessions = async_sessionmaker[AsyncSession]

RESERVE = """mutation($sku: String!, $key: String) {
  reserveStock(input: {lines: [{sku: $sku, quantity: 1}], idempotencyKey: $key}) {
    reservation { id status } userErrors { code } } }"""

#: Seconds after a response at which each connection is reused: around uvicorn's default
#: idle limit (5 s) and httpx's keep-alive expiry (5 s), where the race was traced.
REUSE_AFTER = (4.9, 4.95, 5.0, 5.02, 5.05, 5.1, 5.2, 5.4)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: h11.Connection
) -> int | None:
    """One GET /healthz on a kept-alive connection (h11 frames it); the status, or None
    when the server closed the connection without an answer."""
    request = h11.Request(method="GET", target="/healthz", headers=[("Host", "127.0.0.1")])
    writer.write(conn.send(request) + conn.send(h11.EndOfMessage()))
    status: int | None = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await asyncio.wait_for(reader.read(65536), WAIT)
            except ConnectionError:
                return None
            conn.receive_data(data)
            if not data and status is None:
                return None
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
        if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            conn.start_next_cycle() if conn.our_state is h11.DONE else None
            return status


async def _reuse_after(port: int, idle: float) -> int | None:
    """Open a connection, make one request, stay idle `idle` seconds, reuse it without
    looking whether the server closed it meanwhile (as a client whose FIN is still on
    its way does); the second answer's status, or None."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = h11.Connection(h11.CLIENT)
    try:
        assert await _exchange(reader, writer, conn) == 200
        answered = time.monotonic()
        await asyncio.sleep(max(0.0, answered + idle - time.monotonic()))
        return await _exchange(reader, writer, conn)
    finally:
        writer.close()


async def test_a_connection_reused_around_the_clients_keep_alive_expiry_is_answered(
    servers: ServerFactory,
) -> None:
    """Traced cause of fault 1: uvicorn closed idle connections at 5 s, exactly when
    httpx (keep-alive expiry 5 s) still reuses them, for a POST it cannot retry."""
    server = await servers.start()  # `serve` with the default settings
    statuses = await asyncio.gather(*(_reuse_after(server.port, idle) for idle in REUSE_AFTER))
    assert dict(zip(REUSE_AFTER, statuses, strict=True)) == dict.fromkeys(REUSE_AFTER, 200)


async def _stock(sessions: Sessions, units: int) -> None:
    catalog = Catalog()
    async with sessions.begin() as session:
        catalog.locations["Main"] = await make_location(session, "Main", default=True)
        await make_product(
            session, catalog, "hot", "Hot", [("HOT", "Default Title", 100, {"Main": units})]
        )


async def test_400_keyed_and_unkeyed_buyers_over_200_connections_are_all_answered(
    servers: ServerFactory, sessions: Sessions
) -> None:
    """400 buyers (half with an idempotencyKey) on 100 units, one httpx client with 200
    connections, in two waves a client-idle-limit apart: every request gets an HTTP
    answer, and the "reserved" answers are exactly the ACTIVE reservations."""
    await _stock(sessions, 100)
    server = await servers.start()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    outcomes: list[dict[str, Any] | BaseException] = []
    async with httpx.AsyncClient(base_url=server.http_url, timeout=WAIT, limits=limits) as client:

        async def buy(index: int) -> dict[str, Any]:
            key = f"buyer-{index}-{uuid.uuid4().hex[:8]}" if index % 2 == 0 else None
            response = await client.post(
                "/graphql", json={"query": RESERVE, "variables": {"sku": "HOT", "key": key}}
            )
            assert response.status_code == 200, response.text
            payload: dict[str, Any] = response.json()["data"]["reserveStock"]
            return payload

        # The first 200 open the connections at once; the other 200 arrive one every
        # 10 ms from 3.5 s on. httpx hands each the first idle connection it still
        # trusts, the one nearest its 5 s keep-alive expiry: the moment uvicorn's
        # default idle limit (5 s) used to close it.
        outcomes += await asyncio.gather(*(buy(i) for i in range(200)), return_exceptions=True)

        async def arrive(index: int) -> dict[str, Any]:
            await asyncio.sleep(3.5 + (index - 200) * 0.01)
            return await buy(index)

        outcomes += await asyncio.gather(
            *(arrive(i) for i in range(200, 400)), return_exceptions=True
        )

    unanswered = [repr(o) for o in outcomes if isinstance(o, BaseException)]
    assert unanswered == []
    payloads = [o for o in outcomes if not isinstance(o, BaseException)]
    reserved = [p for p in payloads if p["reservation"] is not None]
    refused = [p for p in payloads if p["reservation"] is None]
    assert all(p["userErrors"] == [{"code": "INSUFFICIENT_STOCK"}] for p in refused), refused
    active = await fetch_one(
        sessions, "SELECT count(*) AS n FROM reservations WHERE status = 'ACTIVE'"
    )
    assert len(reserved) == active.n == 100
    await assert_invariants(sessions)
