"""transferStock (issue 16 item 2, docs/adr/0017-stock-states.md): two TRANSFER rows with one
reference in one transaction, refused when the source lacks available units, and safe under
concurrent reserves on both sides."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.shortages import (
    InsufficientStock,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.stock import adjust, reservations, transfers
from gql_inventory.stock.adjust import AdjustmentReason
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reservations import ReservationLimits
from gql_inventory.stock.transfers import TransferResult
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.graphql import LEVEL, MOVEMENT, USER_ERRORS, errors_of, reserve, snapshot
from tests.support.invariants import assert_invariants
from tests.support.scenarios import (
    Work,
    assert_history_sound,
    assert_only,
    fetch_all,
    run_concurrently,
)

Sessions = async_sessionmaker[AsyncSession]

TRANSFER = f"""mutation($input: TransferStockInput!) {{ transferStock(input: $input) {{
  from {{ {LEVEL} }} to {{ {LEVEL} }} movements {{ {MOVEMENT} }} {USER_ERRORS} }} }}"""


async def _transfer(gql: GraphQLCaller, catalog: Catalog, **input_: Any) -> dict[str, Any]:
    variables = {
        "sku": "MUG",
        "fromLocationId": str(catalog.locations["Main"]),
        "toLocationId": str(catalog.locations["Store"]),
        **input_,
    }
    body = await gql(TRANSFER, {"input": variables}, admin=True)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["transferStock"]
    return payload


async def test_a_transfer_writes_two_rows_with_one_reference(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    """MUG has 50 at Main and no level at Store: the destination level is created."""
    payload = await _transfer(gql, catalog, quantity=20, reason="restock the shop")
    assert payload["userErrors"] == []
    source, target = payload["from"], payload["to"]
    assert (source["location"]["name"], source["onHand"], source["available"]) == ("Main", 30, 30)
    assert (target["location"]["name"], target["onHand"], target["available"]) == ("Store", 20, 20)
    taken, given = payload["movements"]
    assert (taken["kind"], taken["onHandDelta"], taken["location"]["name"]) == (
        "TRANSFER",
        -20,
        "Main",
    )
    assert (given["kind"], given["onHandDelta"], given["location"]["name"]) == (
        "TRANSFER",
        20,
        "Store",
    )
    assert taken["reference"] == given["reference"]
    assert taken["reference"].startswith("transfer:")
    assert taken["reason"] == given["reason"] == "restock the shop"
    await assert_invariants(sessions)


@pytest.mark.parametrize(
    ("input_", "expected"),
    [
        ({"quantity": 0}, ("INVALID_INPUT", ["input", "quantity"])),
        ({"quantity": 6}, ("INSUFFICIENT_STOCK", ["input", "quantity"])),
        ({"quantity": 1, "toLocationId": "MAIN"}, ("INVALID_INPUT", ["input", "toLocationId"])),
        (
            {"quantity": 1, "toLocationId": "999999"},
            ("UNKNOWN_LOCATION", ["input", "toLocationId"]),
        ),
        ({"quantity": 1, "sku": "NOPE"}, ("UNKNOWN_SKU", ["input", "sku"])),
    ],
    ids=["zero", "more-than-available", "same-location", "unknown-location", "unknown-sku"],
)
async def test_transfer_refusals_change_nothing(
    gql: GraphQLCaller,
    sessions: Sessions,
    catalog: Catalog,
    input_: dict[str, Any],
    expected: tuple[str, list[str]],
) -> None:
    await reserve(gql, {"MUG": 45})  # 5 left available at Main
    if input_.get("toLocationId") == "MAIN":
        input_ = {**input_, "toLocationId": str(catalog.locations["Main"])}
    before = await snapshot(sessions)
    payload = await _transfer(gql, catalog, **input_)
    assert (payload["from"], payload["to"], payload["movements"]) == (None, None, [])
    assert errors_of(payload) == [expected]
    if expected[0] == "INSUFFICIENT_STOCK":
        error = payload["userErrors"][0]
        assert (error["requested"], error["available"]) == (6, 5)
    assert await snapshot(sessions) == before


LIMITS = ReservationLimits()


def _reserve_work(sku: str) -> Work[uuid.UUID]:
    async def work(session: AsyncSession) -> uuid.UUID:
        return await reservations.reserve(
            UnitOfWork(session, actor="system"), [LineRequest(sku, 1)], limits=LIMITS
        )

    return work


def _transfer_work(
    catalog: Catalog, source: str, target: str, quantity: int
) -> Work[TransferResult]:
    async def work(session: AsyncSession) -> TransferResult:
        return await transfers.transfer_stock(
            UnitOfWork(session, actor="admin:test"),
            sku="SHIRT-S",
            from_location_id=str(catalog.locations[source]),
            to_location_id=str(catalog.locations[target]),
            quantity=quantity,
        )

    return work


async def test_transfers_race_reserves_on_both_sides(sessions: Sessions, catalog: Catalog) -> None:
    """SHIRT-S: 110 at Main, 102 at Store (212 units). 300 single-unit reserves (drawing
    from Main first, then Store) race 60 transfers of 1 to 5 units both ways: no CHECK
    fires, no deadlock, on hand over both levels stays 212, each transfer is two rows that
    net to 0, and every accepted reserve holds a unit of its own (none sold twice)."""
    async with sessions.begin() as session:
        for location in ("Main", "Store"):
            await adjust.adjust_stock(
                UnitOfWork(session, actor="admin:test"),
                sku="SHIRT-S",
                location_id=str(catalog.locations[location]),
                delta=100,
                reason=AdjustmentReason.RECEIVED,
            )
    rng = random.Random(17)
    directions = [("Main", "Store"), ("Store", "Main")]
    jobs: list[tuple[str, Work[Any]]] = [("reserve", _reserve_work("SHIRT-S")) for _ in range(300)]
    jobs += [
        ("transfer", _transfer_work(catalog, *rng.choice(directions), rng.randint(1, 5)))
        for _ in range(60)
    ]
    rng.shuffle(jobs)
    outcomes = await run_concurrently(sessions, [work for _, work in jobs])

    assert_only(outcomes, InsufficientStock)
    paired = [(kind, o) for (kind, _), o in zip(jobs, outcomes, strict=True)]
    reserved_ok = sum(o.ok for kind, o in paired if kind == "reserve")
    transfers_ok = [o.value for kind, o in paired if kind == "transfer" and o.ok]
    assert 0 < reserved_ok <= 212
    levels = await fetch_all(
        sessions,
        """SELECT sl.on_hand, sl.reserved FROM stock_levels sl
             JOIN variants v ON v.id = sl.variant_id WHERE v.sku = 'SHIRT-S'""",
    )
    assert sum(r.on_hand for r in levels) == 212
    assert sum(r.reserved for r in levels) == reserved_ok
    held = await fetch_all(
        sessions,
        """SELECT sum(rl.quantity) AS units FROM reservation_lines rl
             JOIN variants v ON v.id = rl.variant_id WHERE v.sku = 'SHIRT-S'""",
    )
    assert held[0].units == reserved_ok
    rows = await fetch_all(
        sessions,
        """SELECT reference, count(*) AS n, sum(on_hand_delta) AS net FROM stock_movements
            WHERE kind = 'TRANSFER' GROUP BY reference""",
    )
    assert len(rows) == len(transfers_ok)
    assert {(r.n, r.net) for r in rows} <= {(2, 0)}
    print(f"\nreserves {reserved_ok}/300 ok, transfers {len(transfers_ok)}/60 ok")
    await assert_history_sound(sessions, "SHIRT-S")
    await assert_invariants(sessions)
