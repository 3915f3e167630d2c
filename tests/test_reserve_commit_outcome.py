"""Issue 15 fault 10: a reserveStock batch whose COMMIT fails answers every caller with
the truth (ADR 0013).

The batcher's connections go through a small TCP proxy to the test server that cuts a
connection at its COMMIT: either after the server committed (its reply is never
forwarded), or before the COMMIT reaches the server. The answers are checked against the
database: no caller told to retry holds a committed reservation, every caller is
answered, and the invariants hold.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.app import create_app
from gql_inventory.kit.outage import is_database_outage
from gql_inventory.settings import Settings
from tests.support.catalog import Catalog, make_location, make_product
from tests.support.invariants import assert_invariants

Sessions = async_sessionmaker[AsyncSession]

RESERVE = """mutation($ttl: Int) { reserveStock(input: {lines: [{sku: "HOT", quantity: 1}],
  ttlSeconds: $ttl}) { reservation { id status } userErrors { code } } }"""

#: The simple-query message asyncpg sends for a transaction's COMMIT.
COMMIT = b"Q\x00\x00\x00\x0cCOMMIT;\x00"
#: Seen in a connection's traffic when it wrote reservations (the batch's statement).
WRITES_RESERVATIONS = b"INSERT INTO reservations"


class CommitCutter:
    """A TCP proxy to the PostgreSQL server of `database_url` that cuts the client side
    of a connection that wrote reservations at its COMMIT, `cuts` times (None: always).

    `after_commit`: the COMMIT is forwarded and the server's reply awaited (the
    transaction committed) before the cut; else the COMMIT never reaches the server.
    """

    def __init__(self, database_url: str, *, after_commit: bool, cuts: int | None) -> None:
        self.database_url = database_url
        self.after_commit = after_commit
        self.cuts_left = cuts
        self.cut = 0
        self._server: asyncio.Server | None = None

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        parts = urlsplit(self.database_url)
        query = parse_qs(parts.query)
        host = query.get("host", [parts.hostname or "localhost"])[0]
        port = int(query.get("port", [parts.port or 5432])[0])
        if host.startswith("/"):
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    def _should_cut(self) -> bool:
        if self.cuts_left is None:
            return True
        if self.cuts_left > 0:
            self.cuts_left -= 1
            return True
        return False

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await self._upstream()

        async def replies() -> None:
            while data := await server_r.read(65536):
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        pump = asyncio.create_task(replies())
        wrote = False
        try:
            while data := await client_r.read(65536):
                wrote = wrote or WRITES_RESERVATIONS in data
                if wrote and COMMIT in data and self._should_cut():
                    pump.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pump
                    if self.after_commit:
                        server_w.write(data)
                        await server_w.drain()
                        reply = await asyncio.wait_for(server_r.read(65536), 10)
                        assert b"COMMIT" in reply  # the server committed
                    self.cut += 1
                    client_w.transport.abort()
                    return
                server_w.write(data)
                await server_w.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            pump.cancel()
            server_w.close()
            client_w.close()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self.database_url)
        user = parts.username or "postgres"
        return urlunsplit(("postgresql", f"{user}@127.0.0.1:{port}", parts.path, "", ""))

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


async def stock_hot(sessions: Sessions, units: int) -> None:
    catalog = Catalog()
    async with sessions.begin() as session:
        catalog.locations["Main"] = await make_location(session, "Main", priority=1, default=True)
        await make_product(
            session, catalog, "hot", "Hot", [("HOT", "Default Title", 100, {"Main": units})]
        )


@contextlib.asynccontextmanager
async def app_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app (group commit on) on `database_url`, through an in-process client."""
    app = create_app(Settings(live_events=False, log_level="WARNING"), database_url=database_url)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c
    finally:
        await app.state.services.close()


async def buy(client: httpx.AsyncClient, ttl: int | None = None) -> httpx.Response:
    return await client.post("/graphql", json={"query": RESERVE, "variables": {"ttl": ttl}})


def reserved_id(response: httpx.Response) -> str | None:
    """The reservation id of a successful answer; None for any other answer."""
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    payload = (body.get("data") or {}).get("reserveStock") or {}
    reservation = payload.get("reservation")
    return str(reservation["id"]) if reservation else None


def told_to_retry(response: httpx.Response) -> bool:
    """A 503 SERVICE_UNAVAILABLE answer with Retry-After."""
    if response.status_code != 503 or "Retry-After" not in response.headers:
        return False
    codes = [e.get("extensions", {}).get("code") for e in response.json().get("errors", [])]
    return codes == ["SERVICE_UNAVAILABLE"]


async def committed_ids(sessions: Sessions) -> set[str]:
    async with sessions() as session:
        rows = await session.execute(text("SELECT id FROM reservations"))
        return {str(r[0]) for r in rows}


async def test_a_commit_cut_after_the_server_committed_answers_success(
    database_url: str, sessions: Sessions
) -> None:
    """The connection dies right after the server committed: the callers were once told
    503 "retry later" for reservations that were held (a retry reserved twice)."""
    await stock_hot(sessions, 100)
    cutter = CommitCutter(database_url, after_commit=True, cuts=3)
    async with cutter as proxy_url, app_client(proxy_url) as client:
        responses = await asyncio.gather(*(buy(client) for _ in range(40)))
    assert cutter.cut >= 1  # committed COMMITs really were cut
    ids = [reserved_id(r) for r in responses]
    unanswered = [(r.status_code, r.text) for r, i in zip(responses, ids, strict=True) if i is None]
    assert all(i is not None or told_to_retry(r) for r, i in zip(responses, ids, strict=True))
    held = await committed_ids(sessions)
    told = len([r for r in responses if told_to_retry(r)])
    assert {i for i in ids if i is not None} == held  # every success is held, only those
    assert (told, unanswered) == (0, [])  # the batches landed: nobody is told to retry
    await assert_invariants(sessions)


async def test_a_commit_that_never_reached_the_server_is_answered_503(
    database_url: str, sessions: Sessions
) -> None:
    """Every COMMIT of a reservation write is cut before the server sees it: nothing is
    committed, and every caller is told 503 with Retry-After (safe to retry)."""
    await stock_hot(sessions, 100)
    cutter = CommitCutter(database_url, after_commit=False, cuts=None)
    async with cutter as proxy_url, app_client(proxy_url) as client:
        responses = await asyncio.gather(*(buy(client) for _ in range(10)))
    assert cutter.cut >= 10  # the batch, then each request alone
    assert [told_to_retry(r) for r in responses] == [True] * 10, [r.text for r in responses]
    assert await committed_ids(sessions) == set()
    await assert_invariants(sessions)


async def test_a_commit_refused_by_the_server_answers_each_caller_and_changes_nothing(
    database_url: str, sessions: Sessions, engine: Any
) -> None:
    """A deferred constraint trigger refuses reservations of 77 s at COMMIT: the batch
    applies nothing, the other callers of the same batch still get their reservation,
    and the refused ones get an error (no reservation) while nothing of them is held."""
    await stock_hot(sessions, 100)
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            """CREATE FUNCTION refuse_77() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF NEW.ttl_seconds = 77 THEN RAISE EXCEPTION 'refused at commit'; END IF;
                 RETURN NEW;
               END $$"""
        )
        await conn.exec_driver_sql(
            "CREATE CONSTRAINT TRIGGER refuse_77 AFTER INSERT ON reservations "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_77()"
        )
    try:
        async with app_client(database_url) as client:
            ttls = [None, 77, None, None, 77, None, None, None, 77, None] * 2
            responses = await asyncio.gather(*(buy(client, ttl) for ttl in ttls))
    finally:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("DROP TRIGGER refuse_77 ON reservations")
            await conn.exec_driver_sql("DROP FUNCTION refuse_77()")
    ids = [reserved_id(r) for r in responses]
    assert [i is not None for i in ids] == [ttl is None for ttl in ttls]
    assert all("errors" in r.json() for r, ttl in zip(responses, ttls, strict=True) if ttl)
    assert {i for i in ids if i is not None} == await committed_ids(sessions)
    await assert_invariants(sessions)


def test_driver_failures_are_outages() -> None:
    """A COMMIT that failed inside asyncpg (`InternalClientError`, a protocol error) or
    on a connection it no longer trusts (`InterfaceError`) is an outage: 503, not a
    masked 200 "Unexpected error." without a code."""
    assert is_database_outage(asyncpg.exceptions.InternalClientError("protocol state"))
    assert is_database_outage(asyncpg.exceptions.ProtocolError("unexpected message"))
    assert is_database_outage(asyncpg.exceptions.InterfaceError("connection is closed"))
