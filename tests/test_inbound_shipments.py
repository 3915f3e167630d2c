"""Inbound shipments (issue 16 item 3, docs/stock.md "Inbound shipments"): create, receive
in part or whole (RECEIPT movements referencing the shipment), cancel the rest; incoming
and nextIncomingAt before and after; refusals change nothing; keys replay; concurrent
receipts never receive a unit twice."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.errors import InvalidInput, InvalidShipmentState
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.stock import shipments
from gql_inventory.stock.levels import LineRequest
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.graphql import USER_ERRORS, errors_of, snapshot
from tests.support.invariants import assert_invariants
from tests.support.scenarios import assert_only, fetch_all, fetch_one, run_concurrently

Sessions = async_sessionmaker[AsyncSession]

SHIPMENT = (
    "id reference status location { name } expectedAt createdAt "
    "lines { variant { sku } quantityExpected quantityReceived }"
)
CREATE = f"""mutation($input: CreateInboundShipmentInput!) {{
  createInboundShipment(input: $input) {{ shipment {{ {SHIPMENT} }} {USER_ERRORS} }} }}"""
RECEIVE = f"""mutation($input: ReceiveInboundShipmentInput!) {{
  receiveInboundShipment(input: $input) {{ shipment {{ {SHIPMENT} }} {USER_ERRORS} }} }}"""
CANCEL = f"""mutation($id: ID!) {{
  cancelInboundShipment(shipmentId: $id) {{ shipment {{ {SHIPMENT} }} {USER_ERRORS} }} }}"""
LIST = """query($status: [InboundShipmentStatus!], $first: Int, $after: String) {
  inboundShipments(status: $status, first: $first, after: $after) {
    edges { cursor node { reference status } } totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor } } }"""
ONE = f"query($id: ID!) {{ inboundShipment(id: $id) {{ {SHIPMENT} }} }}"
INCOMING = """query($sku: String!) { variant(sku: $sku) { onHand incoming nextIncomingAt
  stockLevels { location { name } onHand incoming } } }"""


async def _mutate(gql: GraphQLCaller, op: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await gql(op, variables, admin=True)
    assert "errors" not in body, body
    payload: dict[str, Any] = next(iter(body["data"].values()))
    return payload


async def _create(gql: GraphQLCaller, lines: dict[str, int], **extra: Any) -> dict[str, Any]:
    input_ = {"lines": [{"sku": s, "quantity": q} for s, q in lines.items()], **extra}
    payload = await _mutate(gql, CREATE, {"input": input_})
    assert payload["userErrors"] == [], payload
    shipment: dict[str, Any] = payload["shipment"]
    return shipment


async def _receive(
    gql: GraphQLCaller, shipment_id: str, lines: dict[str, int] | None, **extra: Any
) -> dict[str, Any]:
    rows = None if lines is None else [{"sku": s, "quantity": q} for s, q in lines.items()]
    return await _mutate(
        gql, RECEIVE, {"input": {"shipmentId": shipment_id, "lines": rows, **extra}}
    )


async def _incoming(gql: GraphQLCaller, sku: str) -> tuple[int, int, str | None, dict[str, int]]:
    """(onHand, incoming, nextIncomingAt, {location: incoming per stock level})."""
    body = await gql(INCOMING, {"sku": sku})
    v = body["data"]["variant"]
    levels = {lv["location"]["name"]: lv["incoming"] for lv in v["stockLevels"]}
    return v["onHand"], v["incoming"], v["nextIncomingAt"], levels


async def _receipts(sessions: Sessions, shipment_id: str) -> list[tuple[Any, ...]]:
    rows = await fetch_all(
        sessions,
        """SELECT v.sku, m.kind, m.on_hand_delta, m.actor FROM stock_movements m
             JOIN variants v ON v.id = m.variant_id WHERE m.reference = :ref ORDER BY m.id""",
        ref=f"shipment:{shipment_id}",
    )
    return [tuple(r) for r in rows]


async def test_partial_receipt_then_cancel(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    """MUG: 50 at Main. A (Main, 10 Jan): MUG 10, SHIRT-M 5. B (Store, 5 Jan): MUG 4."""
    assert await _incoming(gql, "MUG") == (50, 0, None, {"Main": 0})
    a = await _create(
        gql, {"MUG": 10, "SHIRT-M": 5}, reference="PO-1", expectedAt="2027-01-10T09:00:00+00:00"
    )
    assert (a["status"], a["reference"], a["location"]["name"]) == ("OPEN", "PO-1", "Main")
    assert a["lines"] == [
        {"variant": {"sku": "MUG"}, "quantityExpected": 10, "quantityReceived": 0},
        {"variant": {"sku": "SHIRT-M"}, "quantityExpected": 5, "quantityReceived": 0},
    ]
    b = await _create(
        gql,
        {"MUG": 4},
        locationId=str(catalog.locations["Store"]),
        expectedAt="2027-01-05T09:00:00+00:00",
    )
    assert await _incoming(gql, "MUG") == (50, 14, "2027-01-05T09:00:00+00:00", {"Main": 10})
    assert (
        await fetch_all(sessions, "SELECT 1 FROM stock_movements WHERE reference LIKE 'shipment:%'")
        == []
    )

    part = await _receive(gql, a["id"], {"MUG": 6})
    assert part["userErrors"] == []
    assert part["shipment"]["status"] == "PARTIALLY_RECEIVED"
    assert [ln["quantityReceived"] for ln in part["shipment"]["lines"]] == [6, 0]
    assert await _incoming(gql, "MUG") == (56, 8, "2027-01-05T09:00:00+00:00", {"Main": 4})
    assert await _receipts(sessions, a["id"]) == [("MUG", "RECEIPT", 6, "admin:token-1")]

    cancelled = await _mutate(gql, CANCEL, {"id": b["id"]})
    assert cancelled["shipment"]["status"] == "CANCELLED"
    assert await _incoming(gql, "MUG") == (56, 4, "2027-01-10T09:00:00+00:00", {"Main": 4})
    cancelled = await _mutate(gql, CANCEL, {"id": a["id"]})
    assert cancelled["shipment"]["status"] == "CANCELLED"
    assert [ln["quantityReceived"] for ln in cancelled["shipment"]["lines"]] == [6, 0]
    assert await _incoming(gql, "MUG") == (56, 0, None, {"Main": 0})
    assert (await _incoming(gql, "SHIRT-M"))[:3] == (3, 0, None)

    before = await snapshot(sessions)
    late = await _receive(gql, a["id"], {"MUG": 1})
    assert errors_of(late) == [("INVALID_SHIPMENT_STATE", ["input", "shipmentId"])]
    again = await _mutate(gql, CANCEL, {"id": a["id"]})
    assert errors_of(again) == [("INVALID_SHIPMENT_STATE", ["shipmentId"])]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


async def test_receiving_everything_left_makes_it_received(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    """A new location's level is created by the receipt; null lines take the rest."""
    shipment = await _create(
        gql, {"CAP": 7, "SHIRT-L": 3}, locationId=str(catalog.locations["Store"])
    )
    assert (await _incoming(gql, "CAP"))[1] == 7
    first = await _receive(gql, shipment["id"], {"CAP": 2})
    assert first["shipment"]["status"] == "PARTIALLY_RECEIVED"
    rest = await _receive(gql, shipment["id"], None)
    assert rest["userErrors"] == []
    assert rest["shipment"]["status"] == "RECEIVED"
    assert [ln["quantityReceived"] for ln in rest["shipment"]["lines"]] == [7, 3]
    assert await _incoming(gql, "CAP") == (7, 0, None, {"Main": 0, "Store": 0})
    assert await _receipts(sessions, shipment["id"]) == [
        ("CAP", "RECEIPT", 2, "admin:token-1"),
        ("SHIRT-L", "RECEIPT", 3, "admin:token-1"),  # levels in ascending id order
        ("CAP", "RECEIPT", 5, "admin:token-1"),  # CAP's Store level: made by the first receipt
    ]
    before = await snapshot(sessions)
    more = await _receive(gql, shipment["id"], None)
    assert errors_of(more) == [("INVALID_SHIPMENT_STATE", ["input", "shipmentId"])]
    cancel = await _mutate(gql, CANCEL, {"id": shipment["id"]})
    assert errors_of(cancel) == [("INVALID_SHIPMENT_STATE", ["shipmentId"])]
    assert await snapshot(sessions) == before
    await assert_invariants(sessions)


@pytest.mark.parametrize(
    ("lines", "shipment_id", "expected"),
    [
        ({"MUG": 11}, None, [("INVALID_INPUT", ["input", "lines", "0", "quantity"])]),
        ({"CAP": 1}, None, [("INVALID_INPUT", ["input", "lines", "0", "sku"])]),
        ({"MUG": 0}, None, [("INVALID_INPUT", ["input", "lines", "0", "quantity"])]),
        (
            {"MUG": 1, "NOPE": 1, "SHIRT-M": 9},
            None,
            [
                ("INVALID_INPUT", ["input", "lines", "1", "sku"]),
                ("INVALID_INPUT", ["input", "lines", "2", "quantity"]),
            ],
        ),
        ({}, None, [("INVALID_INPUT", ["input", "lines"])]),
        ({"MUG": 1}, str(uuid.uuid4()), [("SHIPMENT_NOT_FOUND", ["input", "shipmentId"])]),
        ({"MUG": 1}, "not-a-uuid", [("SHIPMENT_NOT_FOUND", ["input", "shipmentId"])]),
    ],
    ids=["over-expected", "not-on-shipment", "zero", "several", "no-lines", "unknown", "malformed"],
)
async def test_receipt_refusals_change_nothing(
    gql: GraphQLCaller,
    sessions: Sessions,
    catalog: Catalog,
    lines: dict[str, int],
    shipment_id: str | None,
    expected: list[tuple[str, list[str]]],
) -> None:
    shipment = await _create(gql, {"MUG": 10, "SHIRT-M": 5})
    await _receive(gql, shipment["id"], {"SHIRT-M": 2})
    before = await snapshot(sessions)
    lines_before = await fetch_all(sessions, "SELECT * FROM inbound_shipment_lines ORDER BY id")
    payload = await _receive(gql, shipment_id or shipment["id"], lines)
    assert payload["shipment"] is None
    assert errors_of(payload) == expected
    assert await snapshot(sessions) == before
    assert (
        await fetch_all(sessions, "SELECT * FROM inbound_shipment_lines ORDER BY id")
        == lines_before
    )


async def test_create_refusals_list_every_line_and_write_nothing(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    input_ = {
        "lines": [
            {"sku": "MUG", "quantity": 1},
            {"sku": "NOPE", "quantity": 1},
            {"sku": "MUG", "quantity": 2},
            {"sku": "CAP", "quantity": 0},
        ]
    }
    payload = await _mutate(gql, CREATE, {"input": input_})
    assert payload["shipment"] is None
    assert errors_of(payload) == [
        ("UNKNOWN_SKU", ["input", "lines", "1", "sku"]),
        ("INVALID_INPUT", ["input", "lines", "2", "sku"]),
        ("INVALID_INPUT", ["input", "lines", "3", "quantity"]),
    ]
    nowhere = await _mutate(
        gql, CREATE, {"input": {"lines": [{"sku": "MUG", "quantity": 1}], "locationId": "999999"}}
    )
    assert errors_of(nowhere) == [("UNKNOWN_LOCATION", ["input", "locationId"])]
    assert await fetch_all(sessions, "SELECT id FROM inbound_shipments") == []


async def test_same_idempotency_key_creates_and_receives_once(
    gql: GraphQLCaller, sessions: Sessions, catalog: Catalog
) -> None:
    first = await _create(gql, {"MUG": 10}, idempotencyKey="po-7")
    second = await _create(gql, {"MUG": 10}, idempotencyKey="po-7")
    assert second["id"] == first["id"]
    assert len(await fetch_all(sessions, "SELECT id FROM inbound_shipments")) == 1
    received = await _receive(gql, first["id"], {"MUG": 4}, idempotencyKey="rcv-1")
    replayed = await _receive(gql, first["id"], {"MUG": 4}, idempotencyKey="rcv-1")
    assert received["userErrors"] == replayed["userErrors"] == []
    assert replayed["shipment"]["lines"][0]["quantityReceived"] == 4
    assert await _receipts(sessions, first["id"]) == [("MUG", "RECEIPT", 4, "admin:token-1")]
    conflict = await _receive(gql, first["id"], {"MUG": 5}, idempotencyKey="rcv-1")
    assert errors_of(conflict) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert (await _incoming(gql, "MUG"))[:2] == (54, 6)
    await assert_invariants(sessions)


async def test_shipment_operations_are_admin_only(gql: GraphQLCaller, catalog: Catalog) -> None:
    shipment = await _create(gql, {"MUG": 1})
    for query, variables in [
        (CREATE, {"input": {"lines": [{"sku": "MUG", "quantity": 1}]}}),
        (RECEIVE, {"input": {"shipmentId": shipment["id"]}}),
        (CANCEL, {"id": shipment["id"]}),
        (LIST, {}),
        (ONE, {"id": shipment["id"]}),
    ]:
        body = await gql(query, variables)
        assert body["data"] in (None, {"inboundShipment": None}), body
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_shipment_list_is_newest_first_and_filters_by_status(
    gql: GraphQLCaller, catalog: Catalog
) -> None:
    made = [await _create(gql, {"MUG": 1}, reference=f"PO-{i}") for i in range(5)]
    await _mutate(gql, CANCEL, {"id": made[1]["id"]})
    body = await gql(LIST, {"first": 2}, admin=True)
    page = body["data"]["inboundShipments"]
    assert [e["node"]["reference"] for e in page["edges"]] == ["PO-4", "PO-3"]
    assert (page["totalCount"], page["pageInfo"]["hasNextPage"]) == (5, True)
    body = await gql(LIST, {"first": 10, "after": page["pageInfo"]["endCursor"]}, admin=True)
    rest = body["data"]["inboundShipments"]
    assert [e["node"]["reference"] for e in rest["edges"]] == ["PO-2", "PO-1", "PO-0"]
    assert rest["pageInfo"]["hasPreviousPage"] is True
    body = await gql(LIST, {"status": ["CANCELLED"]}, admin=True)
    assert [e["node"] for e in body["data"]["inboundShipments"]["edges"]] == [
        {"reference": "PO-1", "status": "CANCELLED"}
    ]
    one = await gql(ONE, {"id": made[2]["id"]}, admin=True)
    assert one["data"]["inboundShipment"]["reference"] == "PO-2"
    for missing in (str(uuid.uuid4()), "nope"):
        assert (await gql(ONE, {"id": missing}, admin=True))["data"]["inboundShipment"] is None
    bad = await gql(LIST, {"after": "bm9wZQ=="}, admin=True)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_CURSOR"


# ---------------------------------------------------------------- concurrency


def _receive_work(shipment_id: uuid.UUID, lines: list[LineRequest] | None) -> Any:
    async def work(session: AsyncSession) -> Any:
        return await shipments.receive_shipment(
            UnitOfWork(session, actor="admin:test"), shipment_id=shipment_id, lines=lines
        )

    return work


async def test_concurrent_receipts_never_receive_a_unit_twice(
    sessions: Sessions, catalog: Catalog
) -> None:
    """60 receipts of one shipment at once (real connections): single units, a few
    several at once, a few "everything left". Each unit is received at most once:
    quantity_received <= expected, the RECEIPT rows sum to it, on hand moved by it."""
    async with sessions.begin() as session:
        shipment_id = await shipments.create_shipment(
            UnitOfWork(session, actor="admin:test"),
            location_id=None,
            lines=[LineRequest("MUG", 30), LineRequest("SHIRT-S", 20), LineRequest("CAP", 10)],
        )
    rng = random.Random(16)
    works = []
    for _ in range(50):
        works.append(
            _receive_work(
                shipment_id, [LineRequest(rng.choice(["MUG", "SHIRT-S", "CAP"]), rng.randint(1, 3))]
            )
        )
    works += [_receive_work(shipment_id, None) for _ in range(10)]
    rng.shuffle(works)
    outcomes = await run_concurrently(sessions, works)
    assert len(outcomes) == 60  # every request answered
    assert_only(outcomes, InvalidInput, InvalidShipmentState)
    assert any(o.ok for o in outcomes)

    lines = await fetch_all(
        sessions,
        """SELECT v.sku, l.quantity_expected, l.quantity_received,
                  (SELECT coalesce(sum(m.on_hand_delta), 0) FROM stock_movements m
                    WHERE m.reference = :ref AND m.variant_id = l.variant_id) AS ledger
             FROM inbound_shipment_lines l JOIN variants v ON v.id = l.variant_id
            WHERE l.shipment_id = :id ORDER BY l.position""",
        id=shipment_id,
        ref=f"shipment:{shipment_id}",
    )
    for sku, expected, received, ledger in lines:
        assert received <= expected, sku
        assert ledger == received, sku
    status = await fetch_one(
        sessions, "SELECT status FROM inbound_shipments WHERE id = :id", id=shipment_id
    )
    done = all(received == expected for _, expected, received, _ in lines)
    assert status.status == ("RECEIVED" if done else "PARTIALLY_RECEIVED")
    on_hand = await fetch_one(
        sessions,
        "SELECT on_hand FROM stock_levels WHERE variant_id = :v AND location_id = :l",
        v=catalog.variants["MUG"],
        l=catalog.locations["Main"],
    )
    assert on_hand.on_hand == 50 + lines[0][2]
    await assert_invariants(sessions)
