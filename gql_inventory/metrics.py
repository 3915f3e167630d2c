"""Prometheus metrics of live subscriptions and background jobs (served at ``/metrics``).

Metrics are per process (one uvicorn worker = one set); scrape every process.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from starlette.requests import Request
from starlette.responses import Response

WEBSOCKET_CONNECTIONS = Gauge(
    "gql_inventory_websocket_connections", "Open GraphQL websocket connections."
)
WEBSOCKETS_REFUSED = Counter(
    "gql_inventory_websockets_refused",
    "Websocket connections refused at the per-process connection limit.",
)
SUBSCRIBERS = Gauge(
    "gql_inventory_subscribers", "Live subscriptions registered with the hub.", ["kind"]
)
EVENTS_SENT = Counter(
    "gql_inventory_subscription_events_sent", "Events handed to subscribers.", ["kind"]
)
SLOW_SUBSCRIBERS_DROPPED = Counter(
    "gql_inventory_slow_subscribers_dropped",
    "Subscribers closed because their bounded buffer overflowed.",
)
QUEUED_EVENTS = Gauge(
    "gql_inventory_subscriber_queued_events",
    "Events waiting in subscriber buffers (bounded by subscribers x buffer size).",
)
BACKEND_RECONNECTS = Counter(
    "gql_inventory_broadcast_reconnects", "Reconnections of the broadcast backend subscription."
)
LEDGER_CATCH_UPS = Counter(
    "gql_inventory_ledger_catch_ups",
    "Times the hub read missed events from the ledger (gap, reconnect or poll).",
)
HUB_POSITION = Gauge(
    "gql_inventory_hub_position", "Ledger position of the last event the hub dispatched."
)
RELAY_POSITIONED = Counter(
    "gql_inventory_relay_positioned", "Movements given a position by this process's relay."
)

EXPIRY_RESERVATIONS = Counter(
    "gql_inventory_expiry_reservations",
    "Reservations the expiry sweeper processed, by outcome (expired, failed).",
    ["outcome"],
)
EXPIRY_SWEEPS = Counter(
    "gql_inventory_expiry_sweeps",
    "Expiry sweeps run, by result (done, skipped_lock: another sweeper held the lock).",
    ["result"],
)

PAYMENT_CHECKS = Counter(
    "gql_inventory_payment_checks",
    "Pending-payment check runs, by result (done, offline, skipped_lock).",
    ["result"],
)
PAYMENT_CHECK_ORDERS = Counter(
    "gql_inventory_payment_check_orders",
    "Orders the pending-payment check looked at, by outcome (sold, cancelled, "
    "still_pending, error, ...).",
    ["outcome"],
)

ORDERS_NEEDING_ATTENTION = Counter(
    "gql_inventory_orders_needing_attention",
    "Orders that became NEEDS_ATTENTION (late payment without stock, amount mismatch, "
    "partial refund at the provider).",
)


async def metrics_endpoint(_: Request) -> Response:
    """``GET /metrics``: the Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
