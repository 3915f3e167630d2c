"""The admin reservations list (issue 16, item 7): `reservations(sku:)` and expired
reservations listed beside the others, made and expired through the real use cases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import Reservation
from gql_inventory.stock.expiry import expire_reservations
from tests.conftest import GraphQLCaller
from tests.support import graphql
from tests.support.catalog import Catalog
from tests.test_backoffice_lists import T0, add_reservation, ids

LIST = """query($status: [ReservationStatus!], $sku: String, $after: String, $first: Int) {
  reservations(status: $status, sku: $sku, after: $after, first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id status lines { quantity variant { sku } } } } } }"""


async def _list(gql: GraphQLCaller, **variables: Any) -> dict[str, Any]:
    body = await gql(LIST, variables, admin=True)
    assert "errors" not in body, body
    return body


async def _make_due(sessions: async_sessionmaker[AsyncSession], *ids_: str) -> None:
    """Move the reservations' expiry into the past (as if their TTL had run out)."""
    async with sessions.begin() as session:
        await session.execute(
            update(Reservation)
            .where(Reservation.id.in_([uuid.UUID(i) for i in ids_]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=5))
        )


async def test_reservations_by_sku(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    mug = str((await graphql.reserve(gql, {"MUG": 1}))["id"])
    # 11 SHIRT-S: 10 from Main and 1 from Store, two lines of one variant: listed once
    both = str((await graphql.reserve(gql, {"SHIRT-S": 11, "MUG": 2}))["id"])
    medium = str((await graphql.reserve(gql, {"SHIRT-M": 1}))["id"])
    ended = await add_reservation(sessions, catalog, T0, "EXPIRED", lines={"MUG": 3})

    by_mug = await _list(gql, sku="MUG")
    assert ids(by_mug, "reservations") == [ended, mug, both]  # soonest expiry first
    assert by_mug["data"]["reservations"]["totalCount"] == 3
    by_shirt = await _list(gql, sku="SHIRT-S")
    assert ids(by_shirt, "reservations") == [both]
    assert by_shirt["data"]["reservations"]["totalCount"] == 1
    assert ids(await _list(gql, sku="SHIRT-M"), "reservations") == [medium]
    # with a status filter: both must hold
    assert ids(await _list(gql, sku="MUG", status=["EXPIRED"]), "reservations") == [ended]
    assert ids(await _list(gql, sku="SHIRT-M", status=["EXPIRED"]), "reservations") == []
    # an unknown SKU (SKUs are case-sensitive) is an empty list, as stockMovements(sku:)
    for unknown in ("NOPE", "mug", ""):
        empty = await _list(gql, sku=unknown)
        assert empty["data"]["reservations"]["edges"] == []
        assert empty["data"]["reservations"]["totalCount"] == 0
    # pages of one walk the filtered list once
    seen: list[str] = []
    after = None
    while True:
        page = await _list(gql, sku="MUG", first=1, after=after)
        seen += ids(page, "reservations")
        info = page["data"]["reservations"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert seen == [ended, mug, both]
    # null: every reservation
    assert len(ids(await _list(gql), "reservations")) == 4


async def test_expired_reservations_are_listed_with_their_lines(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    """Carts that ran out and were swept are EXPIRED in the list without a status filter,
    under status EXPIRED, and by SKU, their lines kept as a record; before the sweep a cart
    past its expiry is still ACTIVE (it still holds its units)."""
    kept = str((await graphql.reserve(gql, {"MUG": 2}))["id"])
    late = [str((await graphql.reserve(gql, {"MUG": n}))["id"]) for n in (1, 4)]
    await _make_due(sessions, *late)
    late.sort()  # one expiresAt: the id breaks the tie
    before = await _list(gql)
    assert {e["node"]["status"] for e in before["data"]["reservations"]["edges"]} == {"ACTIVE"}

    async with sessions.begin() as session:
        swept = await expire_reservations(UnitOfWork(session, actor="system"))
    assert sorted(map(str, swept.expired)) == sorted(late)

    every = await _list(gql)
    assert ids(every, "reservations") == [*late, kept]  # expired ones expire first
    status = {e["node"]["id"]: e["node"]["status"] for e in every["data"]["reservations"]["edges"]}
    assert status == {late[0]: "EXPIRED", late[1]: "EXPIRED", kept: "ACTIVE"}
    lines = {
        e["node"]["id"]: [(li["variant"]["sku"], li["quantity"]) for li in e["node"]["lines"]]
        for e in every["data"]["reservations"]["edges"]
    }
    assert sorted(lines[late[0]] + lines[late[1]]) == [("MUG", 1), ("MUG", 4)]
    assert ids(await _list(gql, status=["EXPIRED"]), "reservations") == late
    assert ids(await _list(gql, status=["EXPIRED"], sku="MUG"), "reservations") == late
    assert ids(await _list(gql, status=["ACTIVE"]), "reservations") == [kept]
    # the expired units are back: only the kept cart holds MUG
    levels = await graphql.variant_levels(gql, "MUG")
    assert levels == {"Main": (50, 2)}
