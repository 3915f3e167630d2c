"""Prometheus metrics of live subscriptions and background jobs (served at ``/metrics``).

Metrics are per process (one uvicorn worker = one set); scrape every process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from gql_inventory.domain.errors import DomainError
    from gql_inventory.domain.uow import Announcements

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
SHARED_GROUPS = Gauge(
    "gql_inventory_shared_subscription_groups",
    "Groups of identical subscriptions executed once per event for all their members.",
)
SHARED_MEMBERS = Gauge(
    "gql_inventory_shared_subscription_members", "Subscribe operations served by a shared group."
)
SHARED_EXECUTIONS = Counter(
    "gql_inventory_shared_subscription_executions",
    "Events executed by shared groups (once per group, whatever its number of members).",
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
    "Expiry sweeps run, by result (done, skipped_lock: another sweeper held the lock, "
    "failed: the sweep raised and rolled back).",
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

OUTBOX_ATTEMPTS = Counter(
    "gql_inventory_outbox_attempts",
    "Delivery attempts of outbox messages by this process, by channel (WEBHOOK, EMAIL) "
    "and the status they left the message in (SUCCEEDED; PENDING: retried later; "
    "FAILED: every retry used, or 410 Gone; STALE: another attempt had taken it over).",
    ["channel", "status"],
)
OUTBOX_PENDING = Gauge(
    "gql_inventory_outbox_pending",
    "Outbox messages PENDING (in flight or waiting for a retry), read from the database "
    "by the delivery worker; messages of disabled endpoints left out.",
)
OUTBOX_OLDEST_PENDING_SECONDS = Gauge(
    "gql_inventory_outbox_oldest_pending_age_seconds",
    "Age (seconds since written) of the oldest PENDING outbox message, 0 when none; "
    "read from the database by the delivery worker, as the pending count.",
)

ORDERS_NEEDING_ATTENTION = Counter(
    "gql_inventory_orders_needing_attention",
    "Orders that became NEEDS_ATTENTION (late payment without stock, amount mismatch, "
    "partial refund at the provider).",
)

INVARIANT_VIOLATIONS = Gauge(
    "gql_inventory_invariant_violations",
    "Stock levels that disagreed with their ledger or reservations at the last invariant "
    "check (any process's: read from job_runs).",
)
INVARIANT_CHECKED_AT = Gauge(
    "gql_inventory_invariant_checked_timestamp_seconds",
    "Unix time the last invariant check finished (any process's).",
)
SELF_CARE_RUNS = Counter(
    "gql_inventory_self_care_runs",
    "Self-care job runs in this process, by job (prune, invariant_check, low_stock_report) "
    "and result (done, failed).",
    ["job", "result"],
)
PRUNED_ROWS = Counter(
    "gql_inventory_pruned_rows",
    "Rows deleted past their retention, by table.",
    ["table"],
)


# ---- business counters (issue 10), counted only once the transaction has committed ----

RESERVATIONS = Counter(
    "gql_inventory_reservations",
    "Reservations by event (created, checked_out: paid and sold, released, expired).",
    ["event"],
)
INSUFFICIENT_STOCK_REFUSALS = Counter(
    "gql_inventory_insufficient_stock_refusals",
    "Operations refused with INSUFFICIENT_STOCK (one per refused line).",
)
ORDERS = Counter(
    "gql_inventory_orders",
    "Orders by outcome (created at checkout, paid, needs_attention, cancelled, refunded).",
    ["outcome"],
)
UNITS = Counter(
    "gql_inventory_units",
    "Units sold (SALE movements) and returned to stock (RETURN movements).",
    ["direction"],
)
WEBHOOK_EVENTS = Counter(
    "gql_inventory_webhook_events",
    "Payment-provider webhook deliveries by event type (Stripe's types; other: any "
    "type this service does not know, unknown: refused before parsing) and outcome.",
    ["type", "outcome"],
)
GRAPHQL_LATENCY = Histogram(
    "gql_inventory_graphql_operation_seconds",
    "Seconds to execute a GraphQL request, by operation name (named operations only, "
    "'anonymous' otherwise, 'other' past the distinct-name cap) and type.",
    ["operation", "type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
_RESPONSE_CACHE = Counter(
    "gql_inventory_response_cache",
    "Cacheable read requests by result (hit: answered from the response cache; miss: "
    "executed; stored: a miss whose response was kept). Hits skip the operation histogram.",
    ["result"],
)
RESPONSE_CACHE_HITS = _RESPONSE_CACHE.labels("hit")
RESPONSE_CACHE_MISSES = _RESPONSE_CACHE.labels("miss")
RESPONSE_CACHE_STORED = _RESPONSE_CACHE.labels("stored")
#: Reads that waited for their turn while writes ran (docs/adr/0021-reads-take-turns.md).
READ_TURN_WAITS = Counter(
    "gql_inventory_read_turn_waits_total",
    "Stock and catalog reads that waited a loop iteration or more for their turn while a "
    "write was in flight (READS_PER_TURN)",
)

#: Distinct GraphQL operation names labelled per process; later names count as "other".
MAX_OPERATION_NAMES = 100
_operation_names: set[str] = set()


def operation_label(name: str | None) -> str:
    """The latency label of an operation name, keeping the label set bounded."""
    if not name:
        return "anonymous"
    if name in _operation_names:
        return name
    if len(_operation_names) >= MAX_OPERATION_NAMES or len(name) > 100:
        return "other"
    _operation_names.add(name)
    return name


def count_refusal(error: DomainError) -> None:
    """Count the INSUFFICIENT_STOCK refusals in a rolled-back use case's error."""
    from gql_inventory.domain.errors import DomainErrors, ErrorCode

    errors = error.errors if isinstance(error, DomainErrors) else [error]
    refused = sum(1 for e in errors if e.code is ErrorCode.INSUFFICIENT_STOCK)
    if refused:
        INSUFFICIENT_STOCK_REFUSALS.inc(refused)


def count_committed(uow: Announcements) -> None:
    """Count what a committed unit of work did, from the ledger rows it wrote: distinct
    orders sold (paid; each completes its reservation), reservations released and
    expired (distinct references), units sold and returned; and its NEEDS_ATTENTION orders.
    """
    sold: set[str | None] = set()
    ended: dict[str, set[str | None]] = {"RELEASE": set(), "EXPIRY": set()}
    units = {"sold": 0, "returned": 0}
    for m in uow.movements:
        if m.kind == "SALE":
            sold.add(m.reference)
            units["sold"] -= m.on_hand_delta
        elif m.kind == "RETURN":
            units["returned"] += m.on_hand_delta
        elif m.kind in ended:
            ended[m.kind].add(m.reference)
    if sold:
        RESERVATIONS.labels("checked_out").inc(len(sold))
        ORDERS.labels("paid").inc(len(sold))
    if ended["RELEASE"]:
        RESERVATIONS.labels("released").inc(len(ended["RELEASE"]))
    if ended["EXPIRY"]:
        RESERVATIONS.labels("expired").inc(len(ended["EXPIRY"]))
    for direction, count in units.items():
        if count:
            UNITS.labels(direction).inc(count)
    if uow.attention:
        ORDERS.labels("needs_attention").inc(len(uow.attention))


async def metrics_endpoint(_: Request) -> Response:
    """``GET /metrics``: the Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
