"""`StockMovement.actor`: every ledger row says who caused it, through the real paths.

Each case reads the actor back from the admin `stockMovements` query and from the
`stock_movements` table: anonymous GraphQL callers are ``storefront``, an admin named in
`ADMIN_TOKENS` (``name=token``) is ``admin:<name>``, a bare token ``admin:token-<n>``
(never the token itself), the Stripe webhook ``stripe``, the expiry sweeper ``system``
and the CLI catalog import ``import``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from typer.testing import CliRunner

from gql_inventory import cli
from gql_inventory.app import create_app
from gql_inventory.devtools import stripe_events as events
from gql_inventory.jobs.payment_check import check_pending_payments
from gql_inventory.jobs.sweeper import sweep_once
from gql_inventory.models import Reservation
from gql_inventory.payments.stripe import StripePaymentProvider
from gql_inventory.settings import Settings, get_settings
from tests.conftest import GraphQLCaller
from tests.support.catalog import Catalog
from tests.support.fake_stripe import FakeStripe
from tests.support.graphql import ADJUST, CANCEL, RELEASE
from tests.support.payments import deliver, facts_of, order_row, pending_order, reserve_id

ALICE = "alice-token-0123456789"
BARE = "bare-secret-token-9876543210"  # the 2nd entry: admin:token-2

ACTORS = """query($first: Int) { stockMovements(first: $first) {
  edges { node { kind actor reference reason } } } }"""


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Starlette]:
    """The app with a named admin (alice) and a bare admin token."""
    settings = Settings(admin_tokens=[f"alice={ALICE}", BARE], graphiql=True)
    application = create_app(settings, database_url=database_url)
    yield application
    await application.state.services.close()


async def _call(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


async def _graphql_actors(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """``[(kind, actor)]`` of the ledger, oldest first, as alice reads it."""
    body = await _call(client, ACTORS, {"first": 100}, ALICE)
    edges = body["data"]["stockMovements"]["edges"]
    return [(e["node"]["kind"], e["node"]["actor"]) for e in reversed(edges)]


async def _table_actors(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with sessions.begin() as session:
        rows = await session.execute(text("SELECT kind, actor FROM stock_movements ORDER BY id"))
        return [(r.kind, r.actor) for r in rows]


async def _since(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], seen: int
) -> list[tuple[str, str]]:
    """The ledger rows after the first `seen`, from GraphQL; the table must agree."""
    from_graphql = (await _graphql_actors(client))[seen:]
    assert (await _table_actors(sessions))[seen:] == from_graphql
    return from_graphql


async def _ledger_length(sessions: async_sessionmaker[AsyncSession]) -> int:
    return len(await _table_actors(sessions))


async def test_anonymous_reserve_and_release_are_storefront(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
) -> None:
    seen = await _ledger_length(sessions)
    rid = await reserve_id(gql, {"MUG": 2})
    body = await gql(RELEASE, {"id": rid})
    assert body["data"]["releaseReservation"]["userErrors"] == []
    assert await _since(client, sessions, seen) == [
        ("RESERVATION", "storefront"),
        ("RELEASE", "storefront"),
    ]


async def test_a_named_admin_adjusting_is_admin_and_its_name(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    seen = await _ledger_length(sessions)
    body = await _call(
        client, ADJUST, {"input": {"sku": "MUG", "delta": -1, "reason": "DAMAGED"}}, ALICE
    )
    assert body["data"]["adjustStock"]["userErrors"] == []
    assert await _since(client, sessions, seen) == [("ADJUSTMENT", "admin:alice")]


async def test_a_bare_token_is_admin_token_n_and_never_the_secret(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], catalog: Catalog
) -> None:
    seen = await _ledger_length(sessions)
    body = await _call(
        client, ADJUST, {"input": {"sku": "MUG", "delta": 3, "reason": "FOUND"}}, BARE
    )
    assert body["data"]["adjustStock"]["userErrors"] == []
    assert await _since(client, sessions, seen) == [("ADJUSTMENT", "admin:token-2")]
    read = await _call(client, ACTORS, {"first": 100}, BARE)
    assert BARE not in str(read)
    async with sessions.begin() as session:
        leaked = await session.execute(
            text("SELECT count(*) FROM stock_movements WHERE strpos(actor, :t) > 0"), {"t": BARE}
        )
        assert leaked.scalar_one() == 0


async def test_a_webhook_sale_is_stripe(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    secret: str,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 1})
    seen = await _ledger_length(sessions)
    event = events.event_for_order("payment_intent.succeeded", await facts_of(sessions, order_id))
    response = await deliver(client, event, secret)
    assert response.json()["outcome"] == "sold"
    assert await _since(client, sessions, seen) == [("SALE", "stripe")]


async def test_the_pending_payment_check_selling_is_stripe(
    app: Starlette,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    fake_stripe: FakeStripe,
    provider: StripePaymentProvider,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 1})
    intent = (await order_row(sessions, order_id)).payment_intent_id
    assert intent is not None
    fake_stripe.succeed(intent)  # paid; the webhook is lost
    seen = await _ledger_length(sessions)
    result = await check_pending_payments(app.state.services, min_age=timedelta(0))
    assert [c.outcome for c in result.checked] == ["sold"]
    assert await _since(client, sessions, seen) == [("SALE", "stripe")]


async def test_an_admin_cancelling_an_order_is_that_admin(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
) -> None:
    order_id, _ = await pending_order(gql, {"MUG": 2})
    seen = await _ledger_length(sessions)
    body = await _call(client, CANCEL, {"input": {"orderId": str(order_id)}}, ALICE)
    assert body["data"]["cancelOrder"]["userErrors"] == []
    assert await _since(client, sessions, seen) == [("RELEASE", "admin:alice")]


async def test_the_sweeper_expiring_is_system(
    app: Starlette,
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
) -> None:
    rid = await reserve_id(gql, {"MUG": 1})
    async with sessions.begin() as session:
        await session.execute(
            update(Reservation)
            .where(Reservation.id == uuid.UUID(rid))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    seen = await _ledger_length(sessions)
    result = await sweep_once(app.state.services)
    assert result.expired == [uuid.UUID(rid)]
    assert await _since(client, sessions, seen) == [("EXPIRY", "system")]


async def test_the_cli_catalog_import_is_import(
    database_url: str,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:  # the CLI runs its own event loop: give it a thread
        result = await asyncio.to_thread(CliRunner().invoke, cli.app, ["seed-demo"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    in_table = await _table_actors(sessions)
    assert len(in_table) > 100  # more than one page: GraphQL shows the newest 100
    assert set(in_table) == set(await _graphql_actors(client)) == {("RECEIPT", "import")}
