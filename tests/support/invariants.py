"""`assert_invariants`: DESIGN.md invariants 1 and 2 (with the stock states of ADR 0017 and
the backorders of ADR 0018), checked on every stock level."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.stock.invariants import find_violations


async def assert_invariants(sessions: async_sessionmaker[AsyncSession]) -> None:
    """DESIGN.md invariants 1 and 2 hold on every level, read in a fresh transaction.

    Fails with each violation described (`Violation.describe()`), so the message names
    the level and the figures that broke the rule.
    """
    async with sessions.begin() as session:
        violations = await find_violations(session)
    assert [v.describe() for v in violations] == []
