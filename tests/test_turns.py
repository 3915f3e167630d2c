"""Reads take turns while writes run (gql_inventory/edge/turns.py, ADR 0021): order and
counts per event-loop iteration, never time."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.app import create_app
from gql_inventory.edge.turns import Turns
from gql_inventory.settings import Settings
from tests.support.catalog import Catalog
from tests.support.invariants import assert_invariants
from tests.support.live import eventually

READ = "query($sku: String!) { variant(sku: $sku) { sku available } }"
RESERVE = (
    "mutation($sku: String!) { reserveStock(input: {lines: [{sku: $sku, quantity: 1}]}) "
    "{ reservation { id } userErrors { code } } }"
)


async def _iterations_until_done(tasks: list[asyncio.Task[None]]) -> list[int]:
    """How many of `tasks` were done after each loop iteration (one `sleep(0)` each)."""
    done = []
    while not all(t.done() for t in tasks):
        await asyncio.sleep(0)
        done.append(sum(t.done() for t in tasks))
    return done


async def test_reads_never_wait_without_a_write() -> None:
    turns = Turns(per_turn=2)
    for _ in range(50):
        await turns.read()  # returns at once, no turn needed
    assert turns.waiting == 0


async def test_while_a_write_runs_at_most_per_turn_reads_start_per_iteration() -> None:
    turns = Turns(per_turn=3)
    order: list[int] = []

    async def reader(n: int) -> None:
        await turns.read()
        order.append(n)

    with turns.writing():
        tasks = [asyncio.create_task(reader(n)) for n in range(10)]
        progress = await _iterations_until_done(tasks)
    assert order == list(range(10))  # arrival order kept
    steps = [b - a for a, b in zip([0, *progress], progress, strict=False)]
    assert max(steps) <= 3
    assert sum(steps) == 10


async def test_reads_waiting_when_the_write_ends_all_go_next_turn() -> None:
    turns = Turns(per_turn=1)
    release = asyncio.Event()
    reads_done: list[int] = []

    async def reader(n: int) -> None:
        await turns.read()
        reads_done.append(n)

    async def write() -> None:
        with turns.writing():
            await release.wait()

    writer = asyncio.create_task(write())
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(reader(n)) for n in range(8)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert 0 < len(reads_done) < 8  # a turn at a time while the write runs
    release.set()
    await writer
    await asyncio.gather(*tasks)
    assert sorted(reads_done) == list(range(8))
    assert turns.waiting == 0


async def test_a_cancelled_waiting_read_gives_its_place_away() -> None:
    turns = Turns(per_turn=1)
    with turns.writing():
        first = asyncio.create_task(turns.read())
        second = asyncio.create_task(turns.read())
        third = asyncio.create_task(turns.read())
        await asyncio.sleep(0)
        second.cancel()
        await asyncio.gather(first, third, second, return_exceptions=True)
    assert first.done()
    assert third.done()
    assert second.cancelled()
    assert turns.waiting == 0


def test_per_turn_must_be_positive() -> None:
    with pytest.raises(ValueError, match="per_turn"):
        Turns(per_turn=0)


async def test_reservations_under_a_read_flood_are_all_answered(
    database_url: str, catalog: Catalog, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The app with READS_PER_TURN=1: 16 readers and 4 reservers at once; every request
    answered, reads waited their turn, no read is left waiting, the invariants hold."""
    settings = Settings(
        reads_per_turn=1,
        live_poll_seconds=0.2,
        expiry_interval_seconds=0,
        pending_payment_check_interval_seconds=0,
    )
    app = create_app(settings, database_url=database_url)
    cache = app.state.response_cache
    assert cache is not None
    turns = cache.turns
    assert turns is not None
    waits = REGISTRY.get_sample_value("gql_inventory_read_turn_waits_total") or 0.0
    async with app.router.lifespan_context(app):
        reads = app.state.services.live.reads

        async def trusted() -> bool:
            return reads.tag() is not None

        await eventually(trusted, what="the read model to be trusted")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            done = asyncio.Event()
            answered: list[int] = []

            async def reader(sku: str) -> None:
                while not done.is_set():
                    response = await client.post(
                        "/graphql", json={"query": READ, "variables": {"sku": sku}}
                    )
                    assert response.status_code == 200
                    assert "errors" not in response.json()
                    answered.append(1)

            async def reserver(sku: str) -> list[str]:
                ids = []
                for _ in range(5):
                    body = (
                        await client.post(
                            "/graphql", json={"query": RESERVE, "variables": {"sku": sku}}
                        )
                    ).json()
                    payload = body["data"]["reserveStock"]
                    assert payload["userErrors"] == []
                    ids.append(payload["reservation"]["id"])
                return ids

            with turns.writing():  # a write in flight: a burst of reads takes turns
                burst = await asyncio.gather(
                    *(
                        client.post("/graphql", json={"query": READ, "variables": {"sku": "MUG"}})
                        for _ in range(16)
                    )
                )
            assert {r.status_code for r in burst} == {200}
            assert len({r.content for r in burst}) == 1
            assert (REGISTRY.get_sample_value("gql_inventory_read_turn_waits_total") or 0.0) > waits

            readers = [
                asyncio.create_task(reader(sku)) for sku in ["MUG", "CAP", "SHIRT-S", "SHIRT-M"] * 4
            ]
            try:
                reserved = await asyncio.gather(
                    *(reserver(sku) for sku in ["MUG", "MUG", "SHIRT-S", "SHIRT-L"])
                )
            finally:
                done.set()
                await asyncio.gather(*readers)
    assert sum(len(ids) for ids in reserved) == 20
    assert len(answered) > 0
    assert turns.waiting == 0
    assert turns.writes == 0
    await assert_invariants(sessions)
