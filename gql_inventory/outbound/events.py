"""Which outbox events a transaction produces, written right before its COMMIT (ADR 0020).

`write_events` is the one function both committing paths call on their open transaction
(`uow.run_in_transaction` and the reserve group commit, `reserving.batcher`), from what
the unit of work recorded:

- INVENTORY_LEVEL_UPDATED: one per stock level changed, with its figures after its last
  change in the transaction and the ledger rows that changed it;
- STOCK_LOW / STOCK_OUT / STOCK_BACK_IN: one per variant whose available units (summed
  over its levels) changed band in the transaction, by the rule of the live alerts
  (`stock.low_stock.crossing`, before = after minus the transaction's changes);
- ORDER_PAID, ORDER_NEEDS_ATTENTION, ORDER_REFUNDED, ORDER_CANCELLED, PAYMENT_FAILED,
  RESERVATION_EXPIRED, INBOUND_SHIPMENT_RECEIVED: one per `Happened` (topic, subject).

Every event goes to each enabled endpoint subscribed to its topic (`outbox.fan_out`, one
statement) and, when `SMTP_URL` is set, by e-mail (`EmailRouting`). The bodies are
`outbox.event_body` with the figures and names the GraphQL types use (docs/webhooks.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gql_inventory.domain.figures import available_of
from gql_inventory.domain.uow import Announcements, AppliedMovement, VariantStock
from gql_inventory.kit.money import to_decimal
from gql_inventory.models import MovementKind, WebhookTopic
from gql_inventory.outbound.config import OutboundSettings
from gql_inventory.outbound.facts import Facts, read_facts
from gql_inventory.outbound.outbox import OutboxEvent, event_body, fan_out
from gql_inventory.stock.low_stock import LowStockState, crossing
from gql_inventory.stock.shipments import shipment_reference

#: The topic of each low-stock alert state.
ALERT_TOPICS = {
    LowStockState.LOW: WebhookTopic.STOCK_LOW,
    LowStockState.OUT_OF_STOCK: WebhookTopic.STOCK_OUT,
    LowStockState.BACK_IN_STOCK: WebhookTopic.STOCK_BACK_IN,
}
#: Order topics e-mailed to the order's buyer (its checkout e-mail), in buyer-facing words.
BUYER_TOPICS = frozenset(
    {
        WebhookTopic.PAYMENT_FAILED,
        WebhookTopic.ORDER_CANCELLED,
        WebhookTopic.ORDER_REFUNDED,
        WebhookTopic.ORDER_NEEDS_ATTENTION,
    }
)
#: Topics e-mailed to every `ALERT_EMAILS` address (operators).
OPERATOR_TOPICS = frozenset({WebhookTopic.STOCK_OUT, WebhookTopic.ORDER_NEEDS_ATTENTION})
_ORDER_TOPICS = BUYER_TOPICS | {WebhookTopic.ORDER_PAID}


@dataclass(frozen=True, slots=True)
class EmailRouting:
    """Whether events go by e-mail too (`SMTP_URL` set) and the operators' addresses
    (`ALERT_EMAILS`)."""

    enabled: bool = False
    alert_emails: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: OutboundSettings) -> EmailRouting:
        """From the settings."""
        return cls(settings.smtp_url is not None, tuple(settings.alert_emails))


async def write_events(conn: Any, done: Announcements, emails: EmailRouting) -> int:
    """Write the outbox rows of the transaction `done` describes, in that transaction
    (open on the asyncpg connection `conn`, about to COMMIT); see the module docstring.
    Returns the rows written.

    At most two statements: one read (`outbound.facts`), skipped when `done.variant_stock`
    already holds every changed variant and nothing else happened (the reserve group
    commit), and one insert. None when the transaction changed no level and nothing
    happened. A database error propagates (the caller rolls back: no change, no event).
    """
    if not done.movements and not done.happened:
        return 0
    variant_ids = {m.variant_id for m in done.movements}
    missing = variant_ids - done.variant_stock.keys()
    subjects = {kind: [h.subject for h in done.happened if h.topic in kind] for kind in _KINDS}
    facts = await read_facts(
        conn,
        variant_ids=missing,
        orders=subjects[_ORDER_KIND],
        reservations=subjects[_RESERVATION_KIND],
        shipments=subjects[_SHIPMENT_KIND],
    )
    facts.variants = {**facts.variants, **done.variant_stock}
    now = facts.now or done.movements[0].occurred_at
    events = [*_level_events(done.movements, facts, now), *_happened_events(done, facts, now)]
    return await fan_out(conn, [_route(e, emails) for e in events])


_ORDER_KIND = frozenset(_ORDER_TOPICS)
_RESERVATION_KIND = frozenset({WebhookTopic.RESERVATION_EXPIRED})
_SHIPMENT_KIND = frozenset({WebhookTopic.INBOUND_SHIPMENT_RECEIVED})
_KINDS = (_ORDER_KIND, _RESERVATION_KIND, _SHIPMENT_KIND)


@dataclass(frozen=True, slots=True)
class _Event:
    topic: WebhookTopic
    body: str
    buyer: str | None = None  # the order's e-mail, for BUYER_TOPICS


def _route(event: _Event, emails: EmailRouting) -> OutboxEvent:
    """The event with the addresses it is e-mailed to (none while e-mail is off)."""
    to: list[str] = []
    if emails.enabled:
        if event.topic in BUYER_TOPICS and event.buyer:
            to.append(event.buyer)
        if event.topic in OPERATOR_TOPICS:
            to.extend(a for a in emails.alert_emails if a not in to)
    return OutboxEvent(event.topic, event.body, tuple(to))


def _location(variant: VariantStock, level_id: int) -> dict[str, str]:
    location_id, name = variant.locations[level_id]
    return {"id": str(location_id), "name": name}


def _level_data(rows: list[AppliedMovement], variant: VariantStock) -> dict[str, Any]:
    """An INVENTORY_LEVEL_UPDATED body's data: the level as its last row leaves it (the
    `StockLevel` type's figures), and the rows that changed it."""
    last = rows[-1]
    unavailable = last.unavailable_after
    return {
        "sku": variant.sku,
        "location": _location(variant, last.stock_level_id),
        "onHand": last.on_hand_after,
        "reserved": last.reserved_after,
        "available": available_of(
            last.on_hand_after, last.reserved_after, unavailable, last.backordered_after
        ),
        "backordered": last.backordered_after,
        "unavailable": unavailable,
        "damaged": last.damaged_after,
        "qualityControl": last.quality_control_after,
        "safetyStock": last.safety_stock_after,
        "version": last.version,
        "movements": [{"id": str(m.id), "kind": m.kind.value} for m in rows],
    }


def _level_events(
    movements: Iterable[AppliedMovement], facts: Facts, now: datetime
) -> list[_Event]:
    """One INVENTORY_LEVEL_UPDATED per changed level (in the order of their first change),
    then the low-stock crossings of the changed variants."""
    per_level: dict[int, list[AppliedMovement]] = {}
    change: dict[int, int] = {}  # variant id -> change of its summed available units
    for m in movements:
        per_level.setdefault(m.stock_level_id, []).append(m)
        change[m.variant_id] = change.get(m.variant_id, 0) + m.available_delta
    events = [
        _Event(
            WebhookTopic.INVENTORY_LEVEL_UPDATED,
            event_body(
                WebhookTopic.INVENTORY_LEVEL_UPDATED,
                _level_data(rows, facts.variants[rows[0].variant_id]),
                now,
            ),
        )
        for rows in per_level.values()
    ]
    for variant_id, delta in change.items():
        variant = facts.variants[variant_id]
        threshold = variant.low_stock_threshold
        state = crossing(variant.available - delta, variant.available, threshold)
        if state is None:
            continue
        topic = ALERT_TOPICS[state]
        data = {
            "sku": variant.sku,
            "state": state,
            "available": variant.available,
            "threshold": threshold,
        }
        events.append(_Event(topic, event_body(topic, data, now)))
    return events


def _money(minor_units: int, currency: str) -> dict[str, str]:
    """A `Money`: decimal string in major units, ISO 4217 code."""
    return {"amount": str(to_decimal(minor_units, currency)), "currencyCode": currency}


def _order_data(order: dict[str, Any]) -> dict[str, Any]:
    """The `Order` type's figures (the buyer's `email` included: endpoints are the shop's
    own systems, ADR 0020)."""
    return {
        "id": str(order["id"]),
        "status": order["status"],
        "email": order["email"],
        "paymentIntentId": order["payment_intent_id"],
        "total": _money(order["total"], order["currency"]),
        "attentionReason": order["attention_reason"],
        "lastPaymentError": order["last_payment_error"],
        "lines": [
            {
                "sku": line["sku"],
                "quantity": line["quantity"],
                "refundedQuantity": line["refunded"],
                "backorderedQuantity": int(line["backordered"]),
                "unitPrice": _money(line["unit_price"], line["currency"]),
            }
            for line in order["lines"]
        ],
    }


def _reservation_data(reservation: dict[str, Any]) -> dict[str, Any]:
    """The `Reservation` type's id, status and lines (one per variant)."""
    return {
        "id": str(reservation["id"]),
        "status": reservation["status"],
        "lines": [
            {
                "sku": line["sku"],
                "quantity": int(line["quantity"]),
                "backorderedQuantity": int(line["backordered"]),
            }
            for line in reservation["lines"]
        ],
    }


def _shipment_data(
    shipment: dict[str, Any], movements: Iterable[AppliedMovement]
) -> dict[str, Any]:
    """The `InboundShipment`'s id, reference, status and location; its lines received by
    this transaction (`quantity`: units of its RECEIPT rows) with their totals so far."""
    reference = shipment_reference(uuid.UUID(str(shipment["id"])))
    received: dict[int, int] = {}
    for m in movements:
        if m.reference == reference and m.kind is MovementKind.RECEIPT:
            received[m.variant_id] = received.get(m.variant_id, 0) + m.on_hand_delta
    return {
        "id": str(shipment["id"]),
        "reference": shipment["reference"],
        "status": shipment["status"],
        "location": {"id": str(shipment["location_id"]), "name": shipment["location"]},
        "lines": [
            {
                "sku": line["sku"],
                "quantity": received[line["variant_id"]],
                "quantityReceived": line["received"],
                "quantityExpected": line["expected"],
            }
            for line in shipment["lines"]
            if line["variant_id"] in received
        ],
    }


def _happened_events(done: Announcements, facts: Facts, now: datetime) -> list[_Event]:
    """One event per distinct `Happened` (topic, subject), the subject as the transaction
    leaves it."""
    events: list[_Event] = []
    seen: set[tuple[WebhookTopic, uuid.UUID]] = set()
    for topic, subject in done.happened:
        if (topic, subject) in seen:
            continue
        seen.add((topic, subject))
        key = str(subject)
        if topic in _ORDER_KIND:
            order = facts.orders[key]
            body = event_body(topic, _order_data(order), now)
            events.append(_Event(topic, body, buyer=order["email"]))
        elif topic in _RESERVATION_KIND:
            data = _reservation_data(facts.reservations[key])
            events.append(_Event(topic, event_body(topic, data, now)))
        else:
            data = _shipment_data(facts.shipments[key], done.movements)
            events.append(_Event(topic, event_body(topic, data, now)))
    return events
