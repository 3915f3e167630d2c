"""Which outbox rows each committed change writes (issue 17, item 1; e-mail routing of
item 4): one row per (event, enabled endpoint subscribed to its topic), the exact body
with the figures GraphQL gives, written in the change's transaction (none for a rolled-back
one), by both committing paths (`run_in_transaction` and the reserve group commit)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.domain.errors import DomainError
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import WebhookEndpoint, WebhookTopic
from gql_inventory.orders import checkout, payment_outcomes, refunds
from gql_inventory.outbound.secrets import new_secret, secret_box
from gql_inventory.payments import OfflinePaymentProvider
from gql_inventory.reserving.front import reserve_stock
from gql_inventory.services import Services
from gql_inventory.settings import Settings
from gql_inventory.stock import adjust, expiry, reservations, shipments
from gql_inventory.stock.adjust import AdjustmentReason
from gql_inventory.stock.levels import LineRequest
from gql_inventory.uow import run_in_transaction
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.invariants import assert_invariants
from tests.support.sinks import RecordingSink

Sessions = async_sessionmaker[AsyncSession]
T = WebhookTopic
ALERTS = ("ops@example.com", "boss@example.com")
BUYER = "buyer@example.com"
PROVIDER = OfflinePaymentProvider()


def _settings(**extra: Any) -> Settings:
    return Settings(admin_tokens=["admin-secret"], live_events=False, **extra)


@pytest.fixture
async def services(database_url: str, engine: Any) -> AsyncIterator[Services]:
    """Services without e-mail (no SMTP_URL), alert addresses set all the same."""
    made = Services.create(_settings(alert_emails=list(ALERTS)), database_url, live_events=False)
    made.events = RecordingSink()
    yield made
    await made.close()


@pytest.fixture
async def mailing(database_url: str, engine: Any) -> AsyncIterator[Services]:
    """Services with e-mail on (SMTP_URL set) and two alert addresses."""
    made = Services.create(
        _settings(smtp_url="smtp://localhost:2525", alert_emails=list(ALERTS)),
        database_url,
        live_events=False,
    )
    made.events = RecordingSink()
    yield made
    await made.close()


async def endpoint(
    sessions: Sessions, topics: list[WebhookTopic], *, enabled: bool = True
) -> uuid.UUID:
    """An endpoint row (the endpoints API is another slice): its id."""
    sealed = secret_box(_settings()).seal(new_secret())
    async with sessions.begin() as session:
        made = await session.execute(
            insert(WebhookEndpoint)
            .values(
                url="https://erp.example.com/hooks",
                topics=[t.value for t in topics],
                enabled=enabled,
                secret_ciphertext=sealed,
            )
            .returning(WebhookEndpoint.id)
        )
        return uuid.UUID(str(made.scalar_one()))


async def rows(sessions: Sessions, topic: WebhookTopic | None = None) -> list[Any]:
    """Outbox rows in insert order (of one topic)."""
    where = "" if topic is None else "WHERE topic = :topic"
    async with sessions() as session:
        found = await session.execute(
            text(f"SELECT * FROM outbox_messages {where} ORDER BY id"),
            {} if topic is None else {"topic": topic.value},
        )
        return list(found.all())


def data(row: Any) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(row.payload)
    return dict(body["data"])


def per_target(found: list[Any]) -> Counter[tuple[str, str]]:
    """(topic, endpoint id or e-mail address) -> rows."""
    return Counter((r.topic, str(r.endpoint_id or r.recipient)) for r in found)


async def run(services: Services, work: Callable[[UnitOfWork], Awaitable[Any]]) -> Any:
    return await run_in_transaction(services, work, actor="admin:test")


async def ask(services: Services, sku: str, quantity: int) -> uuid.UUID:
    reserved = await reserve_stock(
        services,
        [LineRequest(sku, quantity)],
        ttl_seconds=None,
        idempotency_key=None,
        actor="storefront",
    )
    return reserved.id


def adjusting(sku: str, delta: int, location_id: int | None = None) -> Any:
    async def work(uow: UnitOfWork) -> Any:
        return await adjust.adjust_stock(
            uow,
            sku=sku,
            location_id=None if location_id is None else str(location_id),
            delta=delta,
            reason=AdjustmentReason.CORRECTION,
        )

    return work


LEVELS = """query($sku: String!) { variant(sku: $sku) { stockLevels { onHand reserved available
  backordered unavailable damaged qualityControl safetyStock version location { id name } } } }"""
ORDER = """query($id: ID!) { order(id: $id) { id status email paymentIntentId attentionReason
  lastPaymentError total { amount currencyCode } lines { variant { sku } quantity
  refundedQuantity backorderedQuantity unitPrice { amount currencyCode } } } }"""


async def graphql_level(gql: GraphQLCaller, sku: str, location: str) -> dict[str, Any]:
    body = await gql(LEVELS, {"sku": sku})
    (level,) = [
        lv for lv in body["data"]["variant"]["stockLevels"] if lv["location"]["name"] == location
    ]
    return dict(level)


async def graphql_order(gql: GraphQLCaller, order_id: uuid.UUID) -> dict[str, Any]:
    body = await gql(ORDER, {"id": str(order_id)}, admin=True)
    order = dict(body["data"]["order"])
    order["lines"] = [
        {**{k: v for k, v in line.items() if k != "variant"}, "sku": line["variant"]["sku"]}
        for line in order["lines"]
    ]
    return order


# ---------------------------------------------------------------- stock levels


async def test_a_level_change_goes_once_to_each_subscribed_enabled_endpoint(
    services: Services, sessions: Sessions, catalog: Catalog, gql: GraphQLCaller
) -> None:
    level_a = await endpoint(sessions, [T.INVENTORY_LEVEL_UPDATED])
    level_b = await endpoint(sessions, [T.ORDER_PAID, T.INVENTORY_LEVEL_UPDATED])
    await endpoint(sessions, [T.INVENTORY_LEVEL_UPDATED], enabled=False)
    await endpoint(sessions, [T.ORDER_PAID])

    result = await run(services, adjusting("MUG", -4))

    found = await rows(sessions)
    assert per_target(found) == {
        ("INVENTORY_LEVEL_UPDATED", str(level_a)): 1,
        ("INVENTORY_LEVEL_UPDATED", str(level_b)): 1,
    }
    assert {r.channel for r in found} == {"WEBHOOK"}
    assert len({r.message_id for r in found}) == 2
    assert found[0].payload == found[1].payload
    body = orjson.loads(found[0].payload)
    assert body["type"] == "inventory_level.updated"
    stamp = datetime.fromisoformat(body["timestamp"])
    assert stamp.utcoffset() is not None
    async with sessions() as session:
        occurred = (
            await session.execute(
                text("SELECT occurred_at FROM stock_movements WHERE id = :id"),
                {"id": result.movement_id},
            )
        ).scalar_one()
    assert stamp == occurred  # the transaction's time
    expected = await graphql_level(gql, "MUG", "Main")
    assert body["data"] == {
        "sku": "MUG",
        **expected,
        "movements": [{"id": str(result.movement_id), "kind": "ADJUSTMENT"}],
    }
    assert body["data"]["onHand"] == 46


async def test_no_endpoint_no_smtp_no_row_and_a_rolled_back_change_writes_nothing(
    mailing: Services, services: Services, sessions: Sessions, catalog: Catalog
) -> None:
    await run(services, adjusting("MUG", -1))  # nobody subscribed
    assert await rows(sessions) == []
    await endpoint(sessions, list(WebhookTopic))

    async def then_fail(uow: UnitOfWork) -> None:
        await adjusting("SHIRT-M", -3)(uow)  # to 0: level update and STOCK_OUT
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await run(mailing, then_fail)
    with pytest.raises(DomainError):
        await ask(mailing, "MUG", 1000)  # refused: nothing reserved
    with pytest.raises(DomainError):
        await run(mailing, adjusting("MUG", -1000))
    assert await rows(sessions) == []
    async with sessions() as session:
        assert (
            await session.execute(
                text("SELECT count(*) FROM stock_movements WHERE kind <> 'RECEIPT'")
            )
        ).scalar_one() == 1


async def test_a_batch_of_reservations_writes_one_update_per_level_as_the_lone_path(
    services: Services, sessions: Sessions, catalog: Catalog
) -> None:
    hook = await endpoint(sessions, [T.INVENTORY_LEVEL_UPDATED])

    await asyncio.gather(*(ask(services, sku, 1) for sku in ["MUG"] * 6 + ["SHIRT-S"] * 3))
    async with sessions() as session:
        changes = (
            await session.execute(
                text(
                    "SELECT txid, stock_level_id, max(version) AS version, count(*) AS n,"
                    " array_agg(id ORDER BY id) AS ids"
                    " FROM stock_movements WHERE kind = 'RESERVATION'"
                    " GROUP BY txid, stock_level_id"
                )
            )
        ).all()
        lone = await _lone_reserve(services, "SHIRT-L")
    assert sum(c.n for c in changes) == 9
    assert any(c.n > 1 for c in changes), "the reserves were not batched together"
    found = await rows(sessions, T.INVENTORY_LEVEL_UPDATED)
    assert {r.endpoint_id for r in found} == {hook}
    assert len(found) == len(changes) + 1
    by_version = {(d["sku"], d["version"]): d for d in map(data, found)}
    async with sessions() as session:
        for change in changes:
            level = (
                await session.execute(
                    text(
                        "SELECT v.sku, m.on_hand_after, m.reserved_after FROM stock_movements m"
                        " JOIN variants v ON v.id = m.variant_id"
                        " WHERE m.stock_level_id = :l AND m.version = :v"
                    ),
                    {"l": change.stock_level_id, "v": change.version},
                )
            ).one()
            body = by_version[(level.sku, change.version)]
            assert (body["onHand"], body["reserved"]) == (level.on_hand_after, level.reserved_after)
            assert [int(m["id"]) for m in body["movements"]] == change.ids
            assert {m["kind"] for m in body["movements"]} == {"RESERVATION"}
    assert data(found[-1])["sku"] == lone


async def _lone_reserve(services: Services, sku: str) -> str:
    """A reservation through the lone path (`reservations.reserve` on a unit of work)."""

    async def work(uow: UnitOfWork) -> None:
        await reservations.reserve(uow, [LineRequest(sku, 2)], limits=services.reservation_limits)

    await run(services, work)
    return sku


async def test_low_stock_crossings_follow_the_live_alert_rule_and_mail_stock_out(
    mailing: Services, sessions: Sessions, catalog: Catalog
) -> None:
    # SHIRT-S: threshold 5, 10 at Main + 2 at Store = 12 available.
    hook = await endpoint(sessions, [T.STOCK_LOW, T.STOCK_OUT, T.STOCK_BACK_IN])
    await ask(mailing, "SHIRT-S", 6)  # 12 -> 6: still OK, nothing
    assert await rows(sessions) == []
    first = await ask(mailing, "SHIRT-S", 2)  # 6 -> 4: LOW (from the batch's lock figures)
    await run(mailing, adjusting("SHIRT-S", 1, catalog.locations["Store"]))  # 4 -> 5: LOW still

    async def empty(uow: UnitOfWork) -> None:  # two levels in one transaction, one crossing
        await adjusting("SHIRT-S", -2, catalog.locations["Main"])(uow)  # 5 -> 3
        await adjusting("SHIRT-S", -3, catalog.locations["Store"])(uow)  # 3 -> 0

    await run(mailing, empty)  # 5 -> 0: OUT

    async def release(uow: UnitOfWork) -> None:
        await reservations.release_reservation(uow, first)

    await run(mailing, release)  # 0 -> 2: LOW
    await run(mailing, adjusting("SHIRT-S", 10))  # 2 -> 12: BACK_IN

    found = await rows(sessions)
    assert [(r.topic, r.channel, str(r.endpoint_id or r.recipient)) for r in found] == [
        ("STOCK_LOW", "WEBHOOK", str(hook)),
        ("STOCK_OUT", "WEBHOOK", str(hook)),
        ("STOCK_OUT", "EMAIL", ALERTS[0]),
        ("STOCK_OUT", "EMAIL", ALERTS[1]),
        ("STOCK_LOW", "WEBHOOK", str(hook)),
        ("STOCK_BACK_IN", "WEBHOOK", str(hook)),
    ]
    assert [data(r) for r in found if r.channel == "WEBHOOK"] == [
        {"sku": "SHIRT-S", "state": "LOW", "available": 4, "threshold": 5},
        {"sku": "SHIRT-S", "state": "OUT_OF_STOCK", "available": 0, "threshold": 5},
        {"sku": "SHIRT-S", "state": "LOW", "available": 2, "threshold": 5},
        {"sku": "SHIRT-S", "state": "BACK_IN_STOCK", "available": 12, "threshold": 5},
    ]
    assert found[1].payload == found[2].payload == found[3].payload


# ---------------------------------------------------------------- orders


async def _pending(services: Services, sku: str, quantity: int) -> tuple[uuid.UUID, uuid.UUID]:
    rid = await ask(services, sku, quantity)

    async def work(uow: UnitOfWork) -> uuid.UUID:
        made = await checkout.checkout(uow, rid, provider=PROVIDER, email=BUYER)
        return made.order_id

    return await run(services, work), rid


async def test_order_events_carry_the_order_as_graphql_gives_it_and_mail_the_buyer(
    mailing: Services, sessions: Sessions, catalog: Catalog, gql: GraphQLCaller
) -> None:
    hook = await endpoint(
        sessions,
        [
            T.ORDER_PAID,
            T.PAYMENT_FAILED,
            T.ORDER_REFUNDED,
            T.ORDER_CANCELLED,
            T.ORDER_NEEDS_ATTENTION,
        ],
    )
    order_id, _ = await _pending(mailing, "MUG", 3)
    assert await rows(sessions) == []  # checkout: no topic

    async def fail(uow: UnitOfWork) -> None:
        await payment_outcomes.payment_failed(uow, order_id, error="card_declined: no")

    await run(mailing, fail)
    failed = await rows(sessions)
    assert [(r.topic, r.channel, str(r.endpoint_id or r.recipient)) for r in failed] == [
        ("PAYMENT_FAILED", "WEBHOOK", str(hook)),
        ("PAYMENT_FAILED", "EMAIL", BUYER),
    ]
    assert data(failed[0]) == await graphql_order(gql, order_id)
    assert data(failed[0])["lastPaymentError"] == "card_declined: no"
    assert data(failed[0])["total"] == {"amount": "29.97", "currencyCode": "USD"}

    async def pay(uow: UnitOfWork) -> None:
        await payment_outcomes.payment_succeeded(uow, order_id)

    await run(mailing, pay)
    paid = (await rows(sessions))[2:]
    assert [(r.topic, r.channel) for r in paid] == [("ORDER_PAID", "WEBHOOK")]  # no mail
    assert data(paid[0]) == await graphql_order(gql, order_id)
    assert data(paid[0])["status"] == "PAID"

    async def refund(uow: UnitOfWork) -> None:
        await refunds.refund_order(uow, order_id, provider=PROVIDER, lines=[LineRequest("MUG", 1)])

    await run(mailing, refund)
    refunded = (await rows(sessions))[3:]
    assert [(r.topic, r.channel, str(r.endpoint_id or r.recipient)) for r in refunded] == [
        ("ORDER_REFUNDED", "WEBHOOK", str(hook)),
        ("ORDER_REFUNDED", "EMAIL", BUYER),
    ]
    assert data(refunded[0]) == await graphql_order(gql, order_id)
    assert data(refunded[0])["status"] == "PARTIALLY_REFUNDED"
    assert data(refunded[0])["lines"][0]["refundedQuantity"] == 1

    async def cancel(uow: UnitOfWork) -> None:
        await refunds.cancel_order(uow, order_id, provider=PROVIDER)

    await run(mailing, cancel)
    cancelled = (await rows(sessions))[5:]
    # a paid order is refunded in full, then cancelled: both happened, in that order
    assert [(r.topic, r.channel) for r in cancelled] == [
        ("ORDER_REFUNDED", "WEBHOOK"),
        ("ORDER_REFUNDED", "EMAIL"),
        ("ORDER_CANCELLED", "WEBHOOK"),
        ("ORDER_CANCELLED", "EMAIL"),
    ]
    assert data(cancelled[0]) == data(cancelled[2]) == await graphql_order(gql, order_id)
    assert data(cancelled[0])["status"] == "CANCELLED"
    assert data(cancelled[0])["lines"][0]["refundedQuantity"] == 3


async def test_needs_attention_goes_to_the_buyer_and_the_operators(
    mailing: Services, sessions: Sessions, catalog: Catalog, gql: GraphQLCaller
) -> None:
    hook = await endpoint(sessions, [T.ORDER_NEEDS_ATTENTION])
    order_id, _ = await _pending(mailing, "MUG", 2)

    async def mismatched(uow: UnitOfWork) -> None:
        await payment_outcomes.payment_succeeded(uow, order_id, amount=1, currency="USD")

    await run(mailing, mismatched)
    found = await rows(sessions)
    assert [(r.channel, str(r.endpoint_id or r.recipient)) for r in found] == [
        ("WEBHOOK", str(hook)),
        ("EMAIL", BUYER),
        ("EMAIL", ALERTS[0]),
        ("EMAIL", ALERTS[1]),
    ]
    assert len({r.payload for r in found}) == 1
    body = data(found[0])
    assert body == await graphql_order(gql, order_id)
    assert body["status"] == "NEEDS_ATTENTION"
    assert body["attentionReason"] == "paid 0.01 USD, order total 19.98 USD"


async def test_without_smtp_url_no_mail_is_written(
    services: Services, sessions: Sessions, catalog: Catalog
) -> None:
    order_id, _ = await _pending(services, "MUG", 2)

    async def mismatched(uow: UnitOfWork) -> None:
        await payment_outcomes.payment_succeeded(uow, order_id, amount=1, currency="USD")

    await run(services, mismatched)
    await run(services, adjusting("SHIRT-M", -3))  # STOCK_OUT
    assert await rows(sessions) == []  # alert addresses set, SMTP_URL not: no e-mail


# ---------------------------------------------------------------- reservations, shipments


async def test_an_expired_reservation_and_its_cancelled_order(
    services: Services, sessions: Sessions, catalog: Catalog
) -> None:
    hook = await endpoint(sessions, [T.RESERVATION_EXPIRED, T.ORDER_CANCELLED])
    order_id, rid = await _pending(services, "SHIRT-S", 11)  # 10 at Main, 1 at Store
    other = await ask(services, "MUG", 2)

    async def sweep(uow: UnitOfWork) -> Any:
        return await expiry.expire_reservations(uow, now=datetime.now(UTC) + timedelta(days=1))

    swept = await run(services, sweep)
    assert set(swept.expired) == {rid, other}
    found = await rows(sessions)
    assert {r.endpoint_id for r in found} == {hook}
    assert Counter((r.topic, data(r)["id"]) for r in found) == {
        ("RESERVATION_EXPIRED", str(rid)): 1,
        ("ORDER_CANCELLED", str(order_id)): 1,
        ("RESERVATION_EXPIRED", str(other)): 1,
    }
    expired = {data(r)["id"]: data(r) for r in found if r.topic == "RESERVATION_EXPIRED"}
    assert expired[str(rid)] == {
        "id": str(rid),
        "status": "EXPIRED",
        "lines": [{"sku": "SHIRT-S", "quantity": 11, "backorderedQuantity": 0}],
    }


async def test_a_receipt_names_the_shipment_and_the_units_it_brought(
    services: Services, sessions: Sessions, catalog: Catalog, gql: GraphQLCaller
) -> None:
    hook = await endpoint(sessions, [T.INBOUND_SHIPMENT_RECEIVED, T.INVENTORY_LEVEL_UPDATED])
    store = str(catalog.locations["Store"])

    async def create(uow: UnitOfWork) -> uuid.UUID:
        return await shipments.create_shipment(
            uow,
            location_id=store,
            lines=[LineRequest("MUG", 5), LineRequest("CAP", 4)],
            reference="PO-7",
        )

    shipment_id = await run(services, create)
    assert await rows(sessions) == []  # creating writes no stock change

    async def receive(uow: UnitOfWork) -> Any:
        return await shipments.receive_shipment(
            uow, shipment_id=shipment_id, lines=[LineRequest("MUG", 3)]
        )

    await run(services, receive)
    found = await rows(sessions)
    assert [r.topic for r in found] == ["INVENTORY_LEVEL_UPDATED", "INBOUND_SHIPMENT_RECEIVED"]
    assert {r.endpoint_id for r in found} == {hook}
    assert data(found[1]) == {
        "id": str(shipment_id),
        "reference": "PO-7",
        "status": "PARTIALLY_RECEIVED",
        "location": {"id": store, "name": "Store"},
        "lines": [{"sku": "MUG", "quantity": 3, "quantityReceived": 3, "quantityExpected": 5}],
    }
    level = data(found[0])
    assert {k: v for k, v in level.items() if k not in ("sku", "movements")} == (
        await graphql_level(gql, "MUG", "Store")
    )


# ---------------------------------------------------------------- concurrency


async def test_concurrent_reserves_and_adjusts_write_one_update_per_transaction_and_level(
    services: Services, sessions: Sessions, catalog: Catalog
) -> None:
    hook = await endpoint(sessions, [T.INVENTORY_LEVEL_UPDATED, T.STOCK_OUT, T.STOCK_LOW])
    main = catalog.locations["Main"]
    calls: list[Awaitable[Any]] = []
    for n in range(120):
        calls.append(ask(services, ("MUG", "SHIRT-S")[n % 2], 1 + n % 3))
        if n % 4 == 0:
            calls.append(run(services, adjusting("MUG", (-1) ** n * 2, main)))
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    unexpected = [
        o for o in outcomes if isinstance(o, Exception) and not isinstance(o, DomainError)
    ]
    assert unexpected == []  # every request answered: a result or a refusal
    async with sessions() as session:
        changes = (
            await session.execute(
                text(
                    "SELECT count(*) FROM (SELECT DISTINCT txid, stock_level_id"
                    " FROM stock_movements WHERE actor <> 'import') c"
                )
            )
        ).scalar_one()
    found = await rows(sessions, T.INVENTORY_LEVEL_UPDATED)
    assert len(found) == changes
    assert {r.endpoint_id for r in found} == {hook}
    versions = Counter((d["sku"], d["location"]["id"], d["version"]) for d in map(data, found))
    assert max(versions.values()) == 1  # no level state announced twice
    await assert_invariants(sessions)
