"""What the drill checks from the database (PostgreSQL directly, not through PgBouncer).

- lost: a reservation a client was told it holds that is not there, not ACTIVE, or not
  with the units it was told;
- duplicates: units sold twice: a level breaking an invariant (`stock.invariants`:
  reserved beyond on hand, reserved not what the active reservations hold, ledger
  disagreeing), plus reservations the phase created beyond those answered (a retry
  applied twice);
- missed: per subscriber and watched level, a version committed after its start cursor
  that it never received, received twice, or received without being committed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]

from cluster.load import Answer
from cluster.subscribers import Level, Subscriber
from gql_inventory.kit.db import create_engine
from gql_inventory.stock.invariants import find_violations


@dataclass(frozen=True)
class Missed:
    """Versions a subscriber should have received once: `missing`, `repeated` (received
    more than once) and `unexpected` (never committed), counted over its levels."""

    missing: int = 0
    repeated: int = 0
    unexpected: int = 0

    @property
    def total(self) -> int:
        """Every version not received exactly once."""
        return self.missing + self.repeated + self.unexpected


async def reservation_count(url: str) -> int:
    """How many reservations the database holds."""
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM reservations"))
    finally:
        await conn.close()


async def commits_since(url: str, since: int) -> tuple[int, int]:
    """``(reservations, transactions that made them)`` for the reservations made after
    reservation number `since` (`reservation_count` earlier). A reservation's
    `created_at` is its transaction's start (`now()`), so distinct values count commits."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            """SELECT count(*) AS made, count(DISTINCT created_at) AS commits
                 FROM (SELECT created_at FROM reservations
                        ORDER BY created_at OFFSET $1) AS recent""",
            since,
        )
    finally:
        await conn.close()
    return int(row["made"]), int(row["commits"])


async def lost(url: str, answers: Sequence[Answer]) -> int:
    """Held answers whose reservation is missing, not ACTIVE, or holds other units."""
    held = {a.reservation_id: a.lines for a in answers if a.reservation_id is not None}
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT r.id::text AS id, v.sku, sum(rl.quantity)::int AS units
                 FROM reservations r
                 JOIN reservation_lines rl ON rl.reservation_id = r.id
                 JOIN variants v ON v.id = rl.variant_id
                WHERE r.id::text = ANY($1::text[]) AND r.status = 'ACTIVE'
                GROUP BY r.id, v.sku""",
            list(held),
        )
    finally:
        await conn.close()
    found: dict[str, dict[str, int]] = {}
    for row in rows:
        found.setdefault(row["id"], {})[row["sku"]] = row["units"]
    return sum(1 for rid, lines in held.items() if found.get(rid) != lines)


async def invariant_violations(url: str) -> int:
    """Levels breaking an invariant (`gql-inventory check-invariants`' check)."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            return len(await find_violations(conn))
    finally:
        await engine.dispose()


async def versions_after(url: str, skus: Sequence[str], position: int) -> dict[Level, list[int]]:
    """Per level of `skus`: the versions of its movements positioned after `position`."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT v.sku, sl.location_id::text AS location, m.version
                 FROM stock_movements m
                 JOIN stock_levels sl ON sl.id = m.stock_level_id
                 JOIN variants v ON v.id = sl.variant_id
                WHERE v.sku = ANY($1::text[]) AND m.position > $2
                ORDER BY m.position""",
            list(skus),
            position,
        )
    finally:
        await conn.close()
    found: dict[Level, list[int]] = {}
    for row in rows:
        found.setdefault((row["sku"], row["location"]), []).append(row["version"])
    return found


async def unpositioned(url: str) -> int:
    """Committed movements the relay has not positioned yet."""
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM stock_movements WHERE position IS NULL")
        )
    finally:
        await conn.close()


def missed(subscriber: Subscriber, expected: dict[Level, list[int]]) -> Missed:
    """Compare what `subscriber` received with `expected` (its levels' versions)."""
    missing = repeated = unexpected = 0
    for level in set(expected) | set(subscriber.seen):
        want = set(expected.get(level, []))
        got = Counter(subscriber.seen.get(level, []))
        missing += len(want - set(got))
        repeated += sum(n - 1 for n in got.values() if n > 1)
        unexpected += len(set(got) - want)
    return Missed(missing, repeated, unexpected)


def caught_up(subscriber: Subscriber, expected: dict[Level, list[int]]) -> bool:
    """Whether `subscriber` has received each level's newest expected version."""
    return all(
        subscriber.last_version(level) >= max(versions) for level, versions in expected.items()
    )
