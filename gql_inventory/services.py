"""Long-lived objects of one process: settings, engine, sessions, payments (and, later, pubsub)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.db import create_engine, make_sessionmaker, resolve_database_url
from gql_inventory.inventory.reservations import ReservationLimits
from gql_inventory.live.sink import DiscardingSink, EventSink
from gql_inventory.payments import OfflinePaymentProvider, PaymentProvider
from gql_inventory.payments.stripe import StripePaymentProvider
from gql_inventory.settings import Settings

if TYPE_CHECKING:
    from gql_inventory.live.hub import Hub


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
    """Process-wide dependencies, created in the app's lifespan and shared by requests."""

    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    payments: PaymentProvider = field(default_factory=OfflinePaymentProvider)
    events: EventSink = field(default_factory=DiscardingSink)
    live: Hub | None = None  # the live-events hub, while the app's lifespan runs it

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
    def create(cls, settings: Settings, database_url: str | None = None) -> Services:
        """Connect (lazily) to `database_url`, or the URL the settings resolve to.

        Raises `ConfigurationError` for settings the service must not run with (a
        Stripe key without a real webhook secret), before anything is opened.
        """
        settings.check_stripe()
        url = database_url or resolve_database_url(settings)
        engine = create_engine(
            url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
        )
        return cls(
            settings=settings,
            database_url=url,
            engine=engine,
            sessions=make_sessionmaker(engine),
            payments=payment_provider(settings),
        )

    async def close(self) -> None:
        """Release the connection pool (and the payment provider's HTTP connections)."""
        if isinstance(self.payments, StripePaymentProvider):
            await self.payments.aclose()
        await self.engine.dispose()
