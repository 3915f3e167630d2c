"""Cursors in the live package raise a plain `InvalidCursor` carrying why; the GraphQL
edge answers it as BAD_CURSOR with the same message (the subscription and pagination
tests check the client side)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_inventory.live.cursors import InvalidCursor, decode_cursor, encode_cursor
from gql_inventory.live.ledger import check_cursor
from gql_inventory.live.replay import ReplayGate, ReplayLimits
from gql_inventory.resolvers import cursors as edge
from gql_inventory.schema.errors import BadCursor, PublicError


@pytest.mark.parametrize("cursor", ["not-a-cursor", "cHJvZHVjdDox", encode_cursor("stock", -1)])
def test_a_malformed_cursor_is_a_plain_error_with_its_kind(cursor: str) -> None:
    with pytest.raises(InvalidCursor) as raised:
        decode_cursor("stock", cursor)
    assert not isinstance(raised.value, PublicError)
    assert (raised.value.kind, raised.value.problem) == ("stock", "malformed")
    assert str(raised.value) == "invalid stock cursor"


async def test_a_cursor_beyond_the_ledger_carries_its_position_and_the_top(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        with pytest.raises(InvalidCursor) as raised:
            await check_cursor(conn, encode_cursor("stock", 7))
        assert await check_cursor(conn, encode_cursor("stock", 0)) == 0
    error = raised.value
    assert (error.problem, error.position, error.bound) == ("ahead", 7, 0)
    assert str(error) == (
        "unknown stock cursor: position 7 is beyond the ledger's last event (0); "
        "it was not issued by this service"
    )


def test_an_expired_cursor_says_what_is_kept() -> None:
    error = InvalidCursor("stock", "expired", position=3, bound=10)
    assert str(error) == (
        "stock cursor too old: events before position 10 are no longer kept; "
        "subscribe without `after` and re-read current stock"
    )


async def test_the_graphql_edge_maps_it_to_bad_cursor(engine: AsyncEngine) -> None:
    with pytest.raises(BadCursor) as malformed:
        edge.decode_cursor("product", "garbage")
    assert (malformed.value.code, str(malformed.value)) == ("BAD_CURSOR", "invalid product cursor")
    assert isinstance(malformed.value.__cause__, InvalidCursor)
    gate = ReplayGate(engine, ReplayLimits(max_events=0))
    async with engine.connect() as conn:
        with pytest.raises(BadCursor) as ahead:
            await edge.check_stock_cursor(conn, encode_cursor("stock", 7), gate, admin=False)
    assert "beyond" in str(ahead.value)
