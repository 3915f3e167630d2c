"""Business counters and per-operation latency on GET /metrics (issue 10).

Counters are per process and other tests move them too: each test reads /metrics
before and after its actions and checks the differences.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from gql_inventory.jobs import sweeper
from gql_inventory.jobs.sweeper import sweep_once
from gql_inventory.kit import metrics
from tests.conftest import GraphQLCaller
from tests.support import graphql
from tests.support.catalog import Catalog
from tests.support.payments import CANCEL, REFUND, pending_order, send

Sample = tuple[str, tuple[tuple[str, str], ...]]


async def _scrape(client: httpx.AsyncClient) -> dict[Sample, float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _delta(
    before: dict[Sample, float], after: dict[Sample, float], name: str, **labels: str
) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_business_counters_count_committed_work(
    app: Starlette,
    client: httpx.AsyncClient,
    gql: GraphQLCaller,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    before = await _scrape(client)
    # 1 reservation released; 1 refused (SHIRT-M has 3); 1 paid by webhook and refunded 1
    # unit; 1 order cancelled; 1 reservation expired by the sweeper.
    released = await graphql.reserve(gql, {"MUG": 1})
    body = await gql(graphql.RELEASE, {"id": released["id"]})
    assert body["data"]["releaseReservation"]["userErrors"] == []
    refused = await gql(graphql.RESERVE, {"input": {"lines": [{"sku": "SHIRT-M", "quantity": 4}]}})
    assert refused["data"]["reserveStock"]["userErrors"][0]["code"] == "INSUFFICIENT_STOCK"
    paid, _ = await pending_order(gql, {"SHIRT-S": 2})
    assert await send(client, sessions, secret, "payment_intent.succeeded", paid) == "sold"
    body = await gql(
        REFUND,
        {"input": {"orderId": str(paid), "lines": [{"sku": "SHIRT-S", "quantity": 1}]}},
        admin=True,
    )
    assert body["data"]["refundOrder"]["userErrors"] == []
    cancelled, _ = await pending_order(gql, {"MUG": 1})
    body = await gql(CANCEL, {"input": {"orderId": str(cancelled)}}, admin=True)
    assert body["data"]["cancelOrder"]["userErrors"] == []
    await graphql.reserve(gql, {"MUG": 1}, ttlSeconds=60)
    services = app.state.services
    result = await sweep_once(services, max_age=timedelta(0))
    assert len(result.expired) == 1
    after = await _scrape(client)

    def d(name: str, **labels: str) -> float:
        return _delta(before, after, name, **labels)

    # created: MUG (released) + SHIRT-S (paid) + MUG (cancelled) + MUG (expired) = 4
    assert d("gql_inventory_reservations_total", event="created") == 4
    assert d("gql_inventory_reservations_total", event="checked_out") == 1
    # the buyer's release + the cancelled order's reservation = 2
    assert d("gql_inventory_reservations_total", event="released") == 2
    assert d("gql_inventory_reservations_total", event="expired") == 1
    assert d("gql_inventory_insufficient_stock_refusals_total") == 1
    assert d("gql_inventory_orders_total", outcome="created") == 2
    assert d("gql_inventory_orders_total", outcome="paid") == 1
    assert d("gql_inventory_orders_total", outcome="refunded") == 1
    assert d("gql_inventory_orders_total", outcome="cancelled") == 1
    assert d("gql_inventory_units_total", direction="sold") == 2
    assert d("gql_inventory_units_total", direction="returned") == 1
    assert (
        d(
            "gql_inventory_webhook_events_total",
            type="payment_intent.succeeded",
            outcome="sold",
        )
        == 1
    )
    assert d("gql_inventory_expiry_sweeps_total", result="done") == 1


async def test_a_refused_webhook_is_counted(client: httpx.AsyncClient, engine: object) -> None:
    before = await _scrape(client)
    response = await client.post(
        "/webhooks/stripe", content=b"{}", headers={"stripe-signature": "t=1,v1=bad"}
    )
    assert response.status_code == 400
    after = await _scrape(client)
    assert (
        _delta(
            before,
            after,
            "gql_inventory_webhook_events_total",
            type="unknown",
            outcome="refused_signature",
        )
        == 1
    )


async def test_latency_is_observed_per_named_operation(
    client: httpx.AsyncClient, gql: GraphQLCaller, catalog: Catalog
) -> None:
    before = await _scrape(client)
    await gql("query StockCheck { locations { name } }")
    await gql("query StockCheck { locations { name } }")
    await gql("{ locations { name } }")
    after = await _scrape(client)
    name = "gql_inventory_graphql_operation_seconds_count"
    assert _delta(before, after, name, operation="StockCheck", type="query") == 2
    assert _delta(before, after, name, operation="anonymous", type="query") == 1


def test_operation_names_are_capped() -> None:
    taken = len(metrics._operation_names)
    names = [f"CapTest{i}" for i in range(metrics.MAX_OPERATION_NAMES + 5)]
    labels = [metrics.operation_label(n) for n in names]
    assert labels.count("other") >= 5 + taken
    assert len(metrics._operation_names) == metrics.MAX_OPERATION_NAMES
    assert metrics.operation_label(None) == "anonymous"


async def test_a_failed_sweep_is_counted(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("sweep broke")

    monkeypatch.setattr(sweeper, "expire_reservations", broken)
    before = await _scrape(client)
    with pytest.raises(RuntimeError, match="sweep broke"):
        await sweep_once(app.state.services)
    after = await _scrape(client)
    assert _delta(before, after, "gql_inventory_expiry_sweeps_total", result="failed") == 1
    assert _delta(before, after, "gql_inventory_expiry_sweeps_total", result="done") == 0
