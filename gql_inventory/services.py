"""Long-lived objects of one process: settings, engine, sessions, payments, live events."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.kit.db import create_engine, make_sessionmaker, resolve_database_url
from gql_inventory.live.runtime import LiveEvents
from gql_inventory.live.sink import DiscardingSink, EventSink
from gql_inventory.payments import OfflinePaymentProvider, PaymentProvider
from gql_inventory.payments.stripe import StripePaymentProvider
from gql_inventory.reserving.batcher import ReserveBatcher
from gql_inventory.settings import Settings
from gql_inventory.stock.allocation import ReservationLimits


def payment_provider(settings: Settings) -> PaymentProvider:
    """Stripe when `STRIPE_API_KEY` is set (at `stripe_api_base` if given), else offline."""
    if settings.stripe_api_key is not None:
        return StripePaymentProvider(
            settings.stripe_api_key.get_secret_value(),
            api_base=settings.stripe_api_base,
            max_network_retries=settings.stripe_max_network_retries,
        )
    return OfflinePaymentProvider()


@dataclass
class Services:
    """Process-wide dependencies, created with the app and shared by requests.

    `live` is the live-events runtime (None when `LIVE_EVENTS` is off, and in CLI
    processes); the app's lifespan starts and stops it. `events` is where units of
    work announce their commits: `live` itself (it publishes only while it runs),
    else a `DiscardingSink`. Neither changes after construction. `reserving.batcher`
    groups reserveStock calls into shared commits (ADR 0008; None: every call has its
    own transaction); it starts on first use and `close` stops it.
    """

    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    payments: PaymentProvider = field(default_factory=OfflinePaymentProvider)
    events: EventSink = field(default_factory=DiscardingSink)
    live: LiveEvents | None = None
    reserve_batcher: ReserveBatcher | None = None

    @property
    def reservation_limits(self) -> ReservationLimits:
        """Reservation TTL and size limits from the settings."""
        s = self.settings
        return ReservationLimits(
            default_ttl_seconds=min(s.reservation_ttl_seconds, s.reservation_max_ttl_seconds),
            max_ttl_seconds=s.reservation_max_ttl_seconds,
            max_lines=s.max_lines_per_reservation,
            max_quantity=s.max_quantity_per_line,
        )

    @classmethod
    def create(
        cls, settings: Settings, database_url: str | None = None, *, live_events: bool = True
    ) -> Services:
        """Connect (lazily) to `database_url`, or the URL the settings resolve to.

        With `live_events` (and the `LIVE_EVENTS` setting on) the live-events runtime is
        built too, not started: CLI commands pass False, as they serve no subscriptions
        and need no broadcast backend. Raises `ConfigurationError` for settings the
        service must not run with (a Stripe key without a real webhook secret), and
        `ValueError` for an unsupported `BROADCAST_URL` scheme, before anything is opened.
        """
        settings.check_stripe()
        url = database_url or resolve_database_url(settings)
        engine = create_engine(
            url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
        )
        live = LiveEvents(engine, url, settings) if live_events and settings.live_events else None
        services = cls(
            settings=settings,
            database_url=url,
            engine=engine,
            sessions=make_sessionmaker(engine),
            payments=payment_provider(settings),
            events=live if live is not None else DiscardingSink(),
            live=live,
        )
        if settings.reserve_batch_max > 0:
            services.reserve_batcher = ReserveBatcher(
                url,
                services.reservation_limits,
                services.events,
                max_batch=settings.reserve_batch_max,
            )
        return services

    async def close(self) -> None:
        """Stop the reserve batcher, release the connection pool (and the payment
        provider's HTTP connections)."""
        if self.reserve_batcher is not None:
            await self.reserve_batcher.close()
        if isinstance(self.payments, StripePaymentProvider):
            await self.payments.aclose()
        await self.engine.dispose()
