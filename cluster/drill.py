"""The drill: reserves and subscribers through HAProxy while one fault strikes, then the
checks of `cluster.checks`; and the throughput through HAProxy against one `serve`.

Each fault is a phase of its own: subscribers start from the phase's cursor, spread by
HAProxy over the servers; paced reserve clients run `duration` seconds; a third of the
way in the fault strikes and is repaired; then every answer is checked against the
database and every subscriber's versions against the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import httpx

from bench import wrk
from cluster import checks
from cluster.load import Load
from cluster.stack import Stack
from cluster.subscribers import Subscriber, stop_all
from gql_inventory.live.cursors import decode_cursor

#: Bound of every wait of the drill (seconds): never a figure.
WAIT = 90.0
RESERVE_ONE = """mutation($sku: String!) {
  reserveStock(input: {lines: [{sku: $sku, quantity: 1}]}) {
    reservation { id } userErrors { code } } }"""
#: How long PgBouncer or Redis stays down in its fault (seconds).
DOWN_SECONDS = 1.0


@dataclass(frozen=True)
class Options:
    """The drill's size: paced load (`rate` requests/s in all from `clients`), for
    `duration` seconds per fault (a third before it, the rest after its repair),
    `subscribers` watching `skus_each` SKUs each; `throughput_seconds` of wrk with
    `throughput_clients` connections per target."""

    duration: float = 15.0
    rate: float = 40.0
    clients: int = 8
    subscribers: int = 6
    skus_each: int = 3
    throughput_seconds: float = 5.0
    throughput_clients: int = 16


@dataclass(frozen=True)
class FaultResult:
    """The figures of one fault's phase (see `cluster.checks` for lost, duplicates, missed)."""

    fault: str
    sent: int
    held: int
    refused: int
    unanswered: int
    retried_tries: int
    answered_before: int
    answered_after: int
    lost: int
    duplicates: int
    missed: int
    resumed_subscribers: int
    subscribers_per_server: list[int]
    subscriber_errors: list[str]
    fault_seconds: float


@dataclass(frozen=True)
class Throughput:
    """wrk's reserveStock per second through HAProxy (three servers on PgBouncer), to one
    of those servers, and to one server on PostgreSQL directly (statement cache on)."""

    haproxy: float
    one_server: float
    one_server_direct: float
    #: Reservations per committed transaction in those runs (the same order).
    per_commit: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def ratio(self) -> float:
        """HAProxy's rate over one server's."""
        return self.haproxy / self.one_server if self.one_server else 0.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `check` every 0.2 s until it holds; `RuntimeError` after `WAIT`."""
    deadline = time.monotonic() + WAIT
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def stock_cursor(url: str) -> str:
    """`Query.stockCursor` through `url`."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        body = (await http.post("/graphql", json={"query": "{ stockCursor }"})).json()
    cursor: str = body["data"]["stockCursor"]
    return cursor


async def websockets_on(port: int) -> float:
    """Open websockets of the server on `port` (its /metrics; 0 when it does not answer)."""
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            body = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.HTTPError:
        return 0.0
    found = re.search(r"^gql_inventory_websocket_connections (\S+)$", body, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


# ------------------------------------------------------------------------ the faults


async def kill_serve(stack: Stack) -> None:
    """kill -9 the server holding the most subscribers; wait until HAProxy marks it
    down; start it again; wait until HAProxy marks it up."""
    counts = [await websockets_on(port) for port in stack.serve_ports]
    index = counts.index(max(counts))
    name = f"s{index}"
    await stack.kill_serve(index)

    async def down() -> bool:
        return (await asyncio.to_thread(stack.server_states)).get(name) == "DOWN"

    async def up() -> bool:
        return (await asyncio.to_thread(stack.server_states)).get(name) == "UP"

    await eventually(down, f"HAProxy to mark {name} down")
    await stack.restart_serve(index)
    await eventually(up, f"HAProxy to mark {name} up")


async def restart_pgbouncer(stack: Stack) -> None:
    """Stop PgBouncer (every pooled connection of every server cut), start it again."""
    await stack.restart_pgbouncer(down_seconds=DOWN_SECONDS)


async def restart_redis(stack: Stack) -> None:
    """kill -9 Redis (the broadcast backend of every server), start it again."""
    await stack.restart_redis(down_seconds=DOWN_SECONDS)


FAULTS: dict[str, Callable[[Stack], Awaitable[None]]] = {
    "kill -9 one serve": kill_serve,
    "PgBouncer restart": restart_pgbouncer,
    "Redis restart": restart_redis,
}


# ------------------------------------------------------------------------ phases


async def run_fault(
    stack: Stack, skus: list[str], name: str, options: Options, seed: int
) -> FaultResult:
    """One phase on `skus`: subscribers and paced load through HAProxy, fault `name` a
    third of the way in, then the checks."""
    rng = random.Random(seed)
    cursor = await stock_cursor(stack.url)
    start = decode_cursor("stock", cursor)
    before = await checks.reservation_count(stack.direct_url)
    ws_url = stack.url.replace("http://", "ws://") + "/graphql"
    subscribers = [
        Subscriber(ws_url, rng.sample(skus, options.skus_each), cursor)
        for _ in range(options.subscribers)
    ]
    tasks = [
        asyncio.create_task(s.run(), name=f"subscriber-{n}") for n, s in enumerate(subscribers)
    ]
    try:
        for subscriber in subscribers:
            await asyncio.wait_for(subscriber.connected.wait(), WAIT)
        spread = [int(await websockets_on(port)) for port in stack.serve_ports]
        load = Load(stack.url, skus, clients=options.clients, rate=options.rate, seed=seed)
        stop = asyncio.Event()
        running = asyncio.create_task(load.run(stop))
        await asyncio.sleep(options.duration / 3)
        struck = time.monotonic()
        await FAULTS[name](stack)
        repaired = time.monotonic()
        await asyncio.sleep(options.duration * 2 / 3)
        stop.set()
        await running

        async def positioned() -> bool:
            return await checks.unpositioned(stack.direct_url) == 0

        await eventually(positioned, "the relay to position every movement")
        expected = {
            id(s): await checks.versions_after(stack.direct_url, s.skus, start) for s in subscribers
        }

        async def caught_up() -> bool:
            return all(checks.caught_up(s, expected[id(s)]) for s in subscribers)

        with contextlib.suppress(RuntimeError):  # what is missing is counted below
            await eventually(caught_up, "every subscriber to reach its levels' last version")
    finally:
        await stop_all(tasks)
    created = await checks.reservation_count(stack.direct_url) - before
    missed = [checks.missed(s, expected[id(s)]) for s in subscribers]
    return FaultResult(
        fault=name,
        sent=load.sent,
        held=len(load.held),
        refused=len(load.answers) - len(load.held),
        unanswered=load.unanswered,
        retried_tries=load.failed_tries,
        answered_before=sum(1 for a in load.answers if a.answered_at < struck),
        answered_after=sum(1 for a in load.answers if a.answered_at > repaired),
        lost=await checks.lost(stack.direct_url, load.answers),
        duplicates=await checks.invariant_violations(stack.direct_url)
        + max(0, created - len(load.held)),
        missed=sum(m.total for m in missed),
        resumed_subscribers=sum(1 for s in subscribers if s.connects > 1),
        subscribers_per_server=spread,
        subscriber_errors=sorted({e for s in subscribers for e in s.errors}),
        fault_seconds=round(repaired - struck, 2),
    )


async def throughput(stack: Stack, skus: list[str], options: Options) -> Throughput:
    """reserveStock per second from wrk (`bench.wrk`, closed loop, one unit of one SKU per
    request, no key) through HAProxy, to server 0 directly, and to one more `serve` on
    PostgreSQL directly with the statement cache on (no PgBouncer), interleaved, the better
    of two runs each; a run with a failed request raises `RuntimeError`."""
    binary = await asyncio.to_thread(wrk.ensure_wrk)
    bodies = [json.dumps({"query": RESERVE_ONE, "variables": {"sku": sku}}) for sku in skus]
    script = wrk.write_script(stack.workdir, "reserve", bodies, markers=('"errors"', '"code"'))

    async def rate(base: str) -> tuple[float, float]:
        """Requests/s, and reservations per commit (how much the group commit batched)."""
        before = await checks.reservation_count(stack.direct_url)
        result = await asyncio.to_thread(
            wrk.run,
            binary,
            base + "/graphql",
            script,
            connections=options.throughput_clients,
            duration=options.throughput_seconds,
        )
        if result.ok != result.requests or result.socket_errors:
            raise RuntimeError(f"wrk against {base}: {result}")
        made, commits = await checks.commits_since(stack.direct_url, before)
        return round(result.rate, 1), round(made / commits, 1) if commits else 0.0

    direct = await stack.start_direct_serve()
    targets = (stack.url, f"http://127.0.0.1:{stack.serve_ports[0]}", direct.base)
    best = [(0.0, 0.0)] * len(targets)
    try:
        for _ in range(2):  # interleaved, the better of two: other work on the machine varies
            for n, base in enumerate(targets):
                best[n] = max(best[n], await rate(base))
    finally:
        direct.stop()
    return Throughput(
        haproxy=best[0][0],
        one_server=best[1][0],
        one_server_direct=best[2][0],
        per_commit=(best[0][1], best[1][1], best[2][1]),
    )


def as_dict(result: FaultResult | Throughput) -> dict[str, object]:
    """A result as JSON-ready data (a `Throughput` with its ratio)."""
    data = asdict(result)
    if isinstance(result, Throughput):
        data["ratio"] = round(result.ratio, 2)
    return data
