"""Back-office lists (issue 10): `orders` newest first, `reservations` soonest expiry first.

Rows are inserted with chosen timestamps so orderings, bounds and ties are exact;
the N+1 guard counts SQL statements for pages of 1, 5 and 20 rows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from gql_inventory.models import Order, OrderLine, Reservation, ReservationLine, StockLevel
from tests.conftest import GraphQLCaller
from tests.support import graphql
from tests.support.catalog import Catalog, make_product
from tests.test_queries import count_statements

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

ORDERS = """query($status: [OrderStatus!], $after: String, $first: Int,
  $createdAfter: DateTime, $createdBefore: DateTime) {
  orders(status: $status, after: $after, first: $first, createdAfter: $createdAfter,
         createdBefore: $createdBefore) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id status attentionReason lastPaymentError createdAt } } } }"""

RESERVATIONS = """query($status: [ReservationStatus!], $after: String, $first: Int,
  $expiresBefore: DateTime) {
  reservations(status: $status, after: $after, first: $first, expiresBefore: $expiresBefore) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { node { id status expiresAt subtotal { amount currencyCode } } } } }"""


async def add_order(
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    created_at: datetime,
    status: str = "PENDING_PAYMENT",
    *,
    order_id: uuid.UUID | None = None,
    attention: str | None = None,
) -> str:
    """Insert an order of one MUG created at `created_at`; returns its id."""
    order_id = order_id or uuid.uuid4()
    async with sessions.begin() as session:
        await session.execute(
            insert(Order).values(
                id=order_id,
                status=status,
                currency_code="USD",
                total_amount=999,
                payment_provider="offline",
                attention_reason=attention,
                created_at=created_at,
                updated_at=created_at,
            )
        )
        await session.execute(
            insert(OrderLine).values(
                order_id=order_id,
                variant_id=catalog.variants["MUG"],
                quantity=1,
                unit_price_amount=999,
                currency_code="USD",
            )
        )
    return str(order_id)


async def add_reservation(
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    expires_at: datetime,
    status: str = "EXPIRED",
    *,
    lines: dict[str, int] | None = None,
) -> str:
    """Insert a finished reservation (its lines hold no stock) expiring at `expires_at`."""
    reservation_id = uuid.uuid4()
    async with sessions.begin() as session:
        await session.execute(
            insert(Reservation).values(
                id=reservation_id, status=status, expires_at=expires_at, ttl_seconds=900
            )
        )
        for sku, quantity in (lines or {"MUG": 1}).items():
            variant_id = catalog.variants[sku]
            level = (
                await session.execute(
                    select(StockLevel.id, StockLevel.location_id)
                    .where(StockLevel.variant_id == variant_id)
                    .limit(1)
                )
            ).one()
            await session.execute(
                insert(ReservationLine).values(
                    reservation_id=reservation_id,
                    stock_level_id=level.id,
                    variant_id=variant_id,
                    location_id=level.location_id,
                    quantity=quantity,
                )
            )
    return str(reservation_id)


def ids(body: dict[str, Any], field: str) -> list[str]:
    assert "errors" not in body, body
    return [e["node"]["id"] for e in body["data"][field]["edges"]]


async def test_orders_newest_first_filtered_by_status_and_dates(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    made = [
        await add_order(sessions, catalog, T0 + timedelta(minutes=i), status)
        for i, status in enumerate(["PAID", "PENDING_PAYMENT", "CANCELLED", "PENDING_PAYMENT"])
    ]
    flagged = await add_order(
        sessions, catalog, T0 + timedelta(minutes=9), "NEEDS_ATTENTION", attention="paid late"
    )
    everything = await gql(ORDERS, admin=True)
    assert ids(everything, "orders") == [flagged, *reversed(made)]
    assert everything["data"]["orders"]["totalCount"] == 5

    attention = await gql(ORDERS, {"status": ["NEEDS_ATTENTION"]}, admin=True)
    [edge] = attention["data"]["orders"]["edges"]
    assert edge["node"]["attentionReason"] == "paid late"
    assert attention["data"]["orders"]["totalCount"] == 1

    pending = await gql(ORDERS, {"status": ["PENDING_PAYMENT", "PAID"]}, admin=True)
    assert ids(pending, "orders") == [made[3], made[1], made[0]]

    # both bounds are exclusive; an offset is honoured, no offset means UTC
    window = await gql(
        ORDERS,
        {
            "createdAfter": (T0 + timedelta(minutes=1)).isoformat(),
            "createdBefore": (T0 + timedelta(minutes=9)).replace(tzinfo=None).isoformat(),
        },
        admin=True,
    )
    assert ids(window, "orders") == [made[3], made[2]]
    assert window["data"]["orders"]["totalCount"] == 2
    paris = (T0 + timedelta(minutes=3)).astimezone(ZoneInfo("Europe/Paris"))
    shifted = await gql(ORDERS, {"createdAfter": paris.isoformat()}, admin=True)
    assert ids(shifted, "orders") == [flagged]
    none = await gql(ORDERS, {"status": []}, admin=True)
    assert none["data"]["orders"]["totalCount"] == 0


async def test_order_pages_stay_stable_while_orders_are_added(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    # two orders share a created_at: the id breaks the tie
    same = T0 + timedelta(minutes=3)
    tied = sorted([uuid.uuid4(), uuid.uuid4()], reverse=True)
    made = [await add_order(sessions, catalog, T0 + timedelta(minutes=i)) for i in (0, 1, 2)]
    made += [await add_order(sessions, catalog, same, order_id=t) for t in tied]
    made += [await add_order(sessions, catalog, T0 + timedelta(minutes=i)) for i in (4, 5)]
    expected = [made[6], made[5], made[3], made[4], made[2], made[1], made[0]]

    seen: list[str] = []
    after = None
    pages = 0
    while True:
        body = await gql(ORDERS, {"first": 2, "after": after}, admin=True)
        conn = body["data"]["orders"]
        seen += ids(body, "orders")
        assert conn["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert conn["totalCount"] == 7 + pages
        # newer orders arrive meanwhile: they sort before the cursor, never into a later page
        await add_order(sessions, catalog, T0 + timedelta(hours=1, minutes=pages))
        pages += 1
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == expected
    assert pages == 4


async def test_reservations_soonest_expiry_first(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    late = await add_reservation(sessions, catalog, T0 + timedelta(hours=2), "RELEASED")
    early = await add_reservation(sessions, catalog, T0, "EXPIRED")
    middle = await add_reservation(sessions, catalog, T0 + timedelta(hours=1), "EXPIRED")
    active = str((await graphql.reserve(gql, {"MUG": 2}))["id"])  # expires in the future

    every = await gql(RESERVATIONS, admin=True)
    assert ids(every, "reservations") == [early, middle, late, active]
    assert every["data"]["reservations"]["totalCount"] == 4

    only_active = await gql(RESERVATIONS, {"status": ["ACTIVE"]}, admin=True)
    assert ids(only_active, "reservations") == [active]
    assert only_active["data"]["reservations"]["edges"][0]["node"]["subtotal"] == {
        "amount": "19.98",
        "currencyCode": "USD",
    }

    bounded = await gql(
        RESERVATIONS,
        {"status": ["EXPIRED", "RELEASED"], "expiresBefore": (T0 + timedelta(hours=2)).isoformat()},
        admin=True,
    )
    assert ids(bounded, "reservations") == [early, middle]  # exclusive bound

    first = await gql(RESERVATIONS, {"first": 2}, admin=True)
    assert first["data"]["reservations"]["pageInfo"]["hasNextPage"] is True
    # a reservation inserted after the cursor's row is read on the next page, once
    also = await add_reservation(sessions, catalog, T0 + timedelta(minutes=90))
    rest = await gql(
        RESERVATIONS,
        {"first": 10, "after": first["data"]["reservations"]["pageInfo"]["endCursor"]},
        admin=True,
    )
    assert ids(rest, "reservations") == [also, late, active]
    assert rest["data"]["reservations"]["pageInfo"]["hasNextPage"] is False
    assert rest["data"]["reservations"]["totalCount"] == 5


async def test_subtotal_is_null_when_lines_mix_currencies(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    async with sessions.begin() as session:
        await make_product(
            session,
            catalog,
            "euro-mug",
            "Euro Mug",
            [("EMUG", "Default Title", 850, {"Main": 5})],
            currency="EUR",
        )
    query = "query($id: ID!) { reservation(id: $id) { subtotal { amount currencyCode } } }"
    same = str((await graphql.reserve(gql, {"MUG": 1, "SHIRT-S": 2}))["id"])
    body = await gql(query, {"id": same})
    assert body["data"]["reservation"]["subtotal"] == {"amount": "59.99", "currencyCode": "USD"}
    euros = str((await graphql.reserve(gql, {"EMUG": 2}))["id"])
    body = await gql(query, {"id": euros})
    assert body["data"]["reservation"]["subtotal"] == {"amount": "17.00", "currencyCode": "EUR"}
    mixed = str((await graphql.reserve(gql, {"MUG": 1, "EMUG": 1}))["id"])
    body = await gql(query, {"id": mixed})
    assert "errors" not in body
    assert body["data"]["reservation"]["subtotal"] is None


async def test_lists_are_admin_only(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    await add_order(sessions, catalog, T0)
    await add_reservation(sessions, catalog, T0)
    for query in (ORDERS, RESERVATIONS):
        body = await gql(query)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_lists_refuse_bad_cursors_and_page_sizes(
    gql: GraphQLCaller, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    await add_order(sessions, catalog, T0)
    await add_reservation(sessions, catalog, T0)
    products = await gql("{ products(first: 1) { pageInfo { endCursor } } }")
    product_cursor = products["data"]["products"]["pageInfo"]["endCursor"]
    orders = await gql(ORDERS, {"first": 1}, admin=True)
    order_cursor = orders["data"]["orders"]["pageInfo"]["endCursor"]
    for query, wrong in ((ORDERS, product_cursor), (RESERVATIONS, order_cursor)):
        for cursor in ("garbage", wrong, "b3JkZXI6eDp5"):
            body = await gql(query, {"after": cursor}, admin=True)
            assert body["errors"][0]["extensions"]["code"] == "BAD_CURSOR", (query, cursor)
        too_many = await gql(query, {"first": 251}, admin=True)
        assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        negative = await gql(query, {"first": -1}, admin=True)
        assert negative["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    zero = await gql(ORDERS, {"first": 0}, admin=True)
    assert zero["data"]["orders"]["edges"] == []
    assert zero["data"]["orders"]["totalCount"] == 1
    assert zero["data"]["orders"]["pageInfo"]["hasNextPage"] is True
    past_end = await gql(ORDERS, {"after": order_cursor}, admin=True)
    assert past_end["data"]["orders"]["edges"] == []
    assert past_end["data"]["orders"]["totalCount"] == 1


ORDER_PAGE = """query($n: Int) { orders(first: $n) { totalCount edges { node {
  id status total { amount } email attentionReason lastPaymentError
  lines { quantity unitPrice { amount } variant { sku product { handle } } }
  reservation { id status lines { quantity } }
  paymentEvents { type } } } } }"""

RESERVATION_PAGE = """query($n: Int) { reservations(first: $n) { totalCount edges { node {
  id status expiresAt subtotal { amount currencyCode }
  lines { quantity variant { sku price { amount } } } } } } }"""


async def test_list_pages_cost_a_fixed_number_of_queries(
    gql: GraphQLCaller,
    app: Starlette,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
) -> None:
    for i in range(20):
        await add_reservation(
            sessions, catalog, T0 + timedelta(minutes=i), lines={"MUG": 1, "SHIRT-S": 1}
        )
    for i in range(20):
        order_id = await add_order(sessions, catalog, T0 + timedelta(minutes=i))
        async with sessions.begin() as session:  # each order made from one of those reservations
            reservation_id = (
                await session.execute(
                    select(Reservation.id).order_by(Reservation.expires_at).offset(i).limit(1)
                )
            ).scalar_one()
            await session.execute(
                Order.__table__.update()
                .where(Order.id == uuid.UUID(order_id))
                .values(reservation_id=reservation_id)
            )
    for query, field in ((ORDER_PAGE, "orders"), (RESERVATION_PAGE, "reservations")):
        counts = {}
        for n in (1, 5, 20):
            with count_statements(app) as statements:
                body = await gql(query, {"n": n}, admin=True)
            assert "errors" not in body, body
            assert len(body["data"][field]["edges"]) == n
            assert body["data"][field]["totalCount"] == 20
            counts[n] = len(statements)
        assert counts[1] == counts[5] == counts[20], (field, counts)
        # orders: the page, then one batch each of order lines, reservations, payment
        # events, variants, reservation lines and products (each loader is reached from
        # one level only, so the batching cannot depend on timing); reservations: the
        # page, reservation lines, variants
        assert counts[1] <= (7 if field == "orders" else 3), (field, counts)
