"""Fixtures used by many test files: a pytest plugin, registered by tests/conftest.py.

A test file that needs something else under the same name defines its own fixture,
which overrides these for that file (test_concurrency's `catalog`: locations only).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from gql_inventory.payments.stripe import StripePaymentProvider
from gql_inventory.services import Services
from gql_inventory.settings import get_settings
from tests.support.catalog import Catalog, make_catalog
from tests.support.fake_stripe import API_KEY, FakeStripe, running_fake_stripe
from tests.support.live import ServerFactory


@pytest.fixture
async def catalog(sessions: async_sessionmaker[AsyncSession]) -> Catalog:
    """`make_catalog` in one committed transaction: Main and Store; SHIRT-S/M/L, MUG, CAP."""
    async with sessions.begin() as session:
        return await make_catalog(session)


@pytest.fixture
async def servers(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> AsyncIterator[ServerFactory]:
    """Starts live servers (`gql-inventory serve`) on the test database; stops them after."""
    factory = ServerFactory(database_url, tmp_path)
    yield factory
    await factory.stop_all()


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    """A started `FakeStripe` (Stripe's wire format on 127.0.0.1), stopped after the test."""
    with running_fake_stripe() as fake:
        yield fake


@pytest.fixture
async def provider(app: Starlette, fake_stripe: FakeStripe) -> AsyncIterator[StripePaymentProvider]:
    """The app's payments switched to Stripe at the fake server, for one test."""
    services: Services = app.state.services
    previous = services.payments
    stripe_provider = StripePaymentProvider(API_KEY, api_base=fake_stripe.url)
    services.payments = stripe_provider
    try:
        yield stripe_provider
    finally:
        services.payments = previous
        await stripe_provider.aclose()


@pytest.fixture
def secret(app: Starlette) -> str:
    """The webhook signing secret of the app under test."""
    return str(app.state.services.settings.webhook_secret())


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    """The command line on the test database, offline payments (`tests.support.cli.run_cli`)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
