"""Long-lived objects of one process: settings, engine, sessions, payments, live events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.domain.uow import Announcements
from gql_inventory.kit import metrics
from gql_inventory.kit.db import create_engine, make_sessionmaker, resolve_database_url
from gql_inventory.kit.logs import get_logger
from gql_inventory.live.runtime import LiveEvents
from gql_inventory.live.sink import DiscardingSink, EventSink
from gql_inventory.models import OutboxChannel
from gql_inventory.orders.orders import record_payment_event
from gql_inventory.orders.payment_states import PaymentEventKind
from gql_inventory.outbound.email import EmailSender
from gql_inventory.outbound.events import EmailRouting
from gql_inventory.outbound.messages import Sender
from gql_inventory.outbound.webhook import WebhookSender
from gql_inventory.outbound.webhook_http import WebhookClient
from gql_inventory.payments import OfflinePaymentProvider, PaymentProvider
from gql_inventory.payments.base import ProviderFailure
from gql_inventory.payments.stripe import StripePaymentProvider
from gql_inventory.reserving.batcher import ReserveBatcher
from gql_inventory.settings import Settings
from gql_inventory.stock.allocation import ReservationLimits

log = get_logger(__name__)


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
    else a `DiscardingSink`. Neither changes after construction. `reserve_batcher`
    applies every reserveStock call, grouping the calls that arrive together into shared
    commits (ADR 0008, ADR 0013); it starts on first use and `close` stops it.
    """

    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    payments: PaymentProvider = field(default_factory=OfflinePaymentProvider)
    events: EventSink = field(default_factory=DiscardingSink)
    live: LiveEvents | None = None
    reserve_batcher: ReserveBatcher = field(init=False)

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

    @property
    def email_routing(self) -> EmailRouting:
        """Whether outbox events go by e-mail too, and to which operators (settings)."""
        return EmailRouting.of(self.settings)

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
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            statement_cache=settings.db_statement_cache,
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
        services.reserve_batcher = ReserveBatcher(
            url,
            services.reservation_limits,
            services.after_commit,
            max_batch=max(settings.reserve_batch_max, 1),
            emails=services.email_routing,
            statement_cache=settings.db_statement_cache,
        )
        return services

    def outbox_senders(self, http: WebhookClient) -> dict[OutboxChannel, Sender]:
        """The sender of each outbox channel (the one place they are chosen), for a
        delivery worker whose HTTP client is `http`. A channel without a sender is never
        claimed: its rows wait, PENDING (ADR 0019); e-mail has a sender when SMTP_URL is set."""
        senders: dict[OutboxChannel, Sender] = {
            OutboxChannel.WEBHOOK: WebhookSender(self.settings, http)
        }
        email = EmailSender.from_settings(self.settings)
        if email is not None:
            senders[OutboxChannel.EMAIL] = email
        return senders

    async def after_commit(self, done: Announcements) -> None:
        """What follows every committed transaction (`uow.run_in_transaction` and the
        reserve group commit alike): count it, log its NEEDS_ATTENTION orders at ERROR
        (``order.needs_attention``), have this process read a catalog change back
        (`readmodel.reads.ReadModel.catalog_changed`), cancel the payments of the orders
        it cancelled (outside any lock; a refusal is logged and recorded), then publish
        its stock movements and the orders whose status changed."""
        metrics.count_committed(done)
        if done.catalog_changed and self.live is not None and self.live.reads is not None:
            self.live.reads.catalog_changed()  # read-your-writes: before the response is built
        for order_id, reason in done.attention:
            metrics.ORDERS_NEEDING_ATTENTION.inc()
            log.error("order.needs_attention", order_id=str(order_id), reason=reason)
        for order_id, payment_intent_id in done.payment_cancels:
            await self._cancel_payment(order_id, payment_intent_id)
        if done.movements:
            await self.events.publish(done.movements)
        if done.orders_changed:
            await self.events.publish_order_changes(done.orders_changed)

    async def _cancel_payment(self, order_id: uuid.UUID, payment_intent_id: str) -> None:
        """Cancel a committed-cancelled order's payment; a failure is logged and recorded."""
        try:
            await self.payments.cancel_payment(payment_intent_id)
        except ProviderFailure as exc:
            log.warning(
                "payment.cancel_failed",
                order_id=str(order_id),
                payment_intent_id=payment_intent_id,
                error=exc.message,
            )
            async with self.sessions.begin() as session:
                await record_payment_event(
                    session,
                    order_id,
                    PaymentEventKind.PAYMENT_INTENT_CANCEL_FAILED,
                    detail=exc.message,
                )

    async def close(self) -> None:
        """Stop the reserve batcher, release the connection pool (and the payment
        provider's HTTP connections)."""
        await self.reserve_batcher.close()
        if isinstance(self.payments, StripePaymentProvider):
            await self.payments.aclose()
        await self.engine.dispose()
