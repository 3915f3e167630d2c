"""The live-events runtime is fixed when the services are built (issue 9, item 3).

`Services.live` and `Services.events` never change after construction: the app's
lifespan only starts and stops the runtime, which publishes while it runs and drops
announcements otherwise. Processes that never start it (CLI commands, apps whose
lifespan does not run) never reach the broadcast backend.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from click.testing import Result
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from gql_inventory import cli
from gql_inventory.app import create_app
from gql_inventory.catalog.demo import seed_demo_catalog
from gql_inventory.live import LiveEvents
from gql_inventory.live.pubsub import PubSub
from gql_inventory.live.sink import DiscardingSink
from gql_inventory.services import Services
from gql_inventory.settings import Settings, get_settings
from gql_inventory.uow import run_in_transaction

#: A backend nobody listens on: reaching it would fail.
UNREACHABLE_BROADCAST = "redis://127.0.0.1:1/0"


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs of every broadcast connection opened during the test."""
    opened: list[str] = []
    original = PubSub.connect

    async def counting(self: PubSub) -> None:
        opened.append(self.url)
        await original(self)

    monkeypatch.setattr(PubSub, "connect", counting)
    return opened


@pytest.fixture
async def services(database_url: str, engine: AsyncEngine) -> AsyncIterator[Services]:
    """Services with live events on the in-process backend (`engine`: clean tables)."""
    made = Services.create(Settings(broadcast_url="memory://"), database_url)
    yield made
    if made.live is not None:
        await made.live.stop()
    await made.close()


async def test_the_runtime_and_the_sink_are_fixed_at_construction(services: Services) -> None:
    live = services.live
    assert isinstance(live, LiveEvents)
    assert services.events is live
    assert not live.running
    assert live.running_hub is None
    assert not live.pubsub.connected  # built, not started: nothing opened

    async with live.run() as hub:
        assert services.live is live
        assert services.events is live
        assert live.running_hub is hub
        assert await hub.wait_ready()
        sub = hub.subscribe_stock(None, lambda reason: None)
        await run_in_transaction(services, seed_demo_catalog, actor="import")
        async with asyncio.timeout(30):  # a hang guard, not a timing assertion
            first = await sub.buffer.get()
        assert first.position == 1
        hub.unsubscribe_stock(sub)

    assert services.live is live
    assert services.events is live
    assert live.running_hub is None
    assert not live.pubsub.connected
    with pytest.raises(RuntimeError, match="already started"):
        await live.start()


async def test_a_runtime_never_started_reaches_no_backend(
    database_url: str, engine: AsyncEngine, connects: list[str]
) -> None:
    services = Services.create(Settings(broadcast_url=UNREACHABLE_BROADCAST), database_url)
    try:
        assert isinstance(services.live, LiveEvents)
        await run_in_transaction(services, seed_demo_catalog, actor="import")  # publishes movements
        await services.events.publish_order_changes([uuid.uuid4()])
    finally:
        await services.close()
    assert connects == []


async def test_with_live_events_off_there_is_no_runtime(database_url: str) -> None:
    services = Services.create(Settings(live_events=False), database_url)
    try:
        assert services.live is None
        assert isinstance(services.events, DiscardingSink)
    finally:
        await services.close()


async def test_the_app_lifespan_starts_and_stops_the_runtime(database_url: str) -> None:
    settings = Settings(
        broadcast_url="memory://",
        expiry_interval_seconds=0,
        pending_payment_check_interval_seconds=0,
    )
    app = create_app(settings, database_url=database_url)
    services: Services = app.state.services
    live = services.live
    assert isinstance(live, LiveEvents)
    assert live.running_hub is None  # no lifespan yet: subscriptions are unavailable
    async with app.router.lifespan_context(app):
        assert live.running
        assert services.live is live
        assert services.events is live
    assert not live.running
    assert services.events is live


# ---------------------------------------------------------------- the command line


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    """A CLI environment whose BROADCAST_URL no runtime could even be built with."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BROADCAST_URL", "nats://127.0.0.1:1")
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _run_cli(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli.app, list(args))


@pytest.mark.parametrize("command", ["check-pending-payments", "expire-reservations"])
async def test_cli_commands_build_no_live_runtime(
    cli_env: None, engine: AsyncEngine, connects: list[str], command: str
) -> None:
    result = await _run_cli(command)
    assert result.exit_code == 0, result.output
    assert connects == []
