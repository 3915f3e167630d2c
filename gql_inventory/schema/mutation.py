"""The Mutation root: shapes here, logic in `gql_inventory.resolvers`."""

from __future__ import annotations

import strawberry

from gql_inventory.resolvers import admin, low_stock, reservations, shipments, webhooks
from gql_inventory.resolvers.access import admin_only
from gql_inventory.schema.docs import with_arguments
from gql_inventory.schema.low_stock import BulkAdjustStockPayload, SetLowStockThresholdPayload
from gql_inventory.schema.payloads import (
    AdjustStockPayload,
    CancelOrderPayload,
    CheckoutPayload,
    RefundOrderPayload,
    ReleaseReservationPayload,
    ReserveStockPayload,
    TransferStockPayload,
)
from gql_inventory.schema.shipments import InboundShipmentPayload
from gql_inventory.schema.variant_inventory import UpdateVariantInventoryPayload
from gql_inventory.schema.webhooks import (
    CreateWebhookEndpointPayload,
    WebhookDeliveryPayload,
    WebhookEndpointPayload,
)

_ADMIN = "Admin only: without `Authorization: Bearer <token>` it is a FORBIDDEN error and "
_ADMIN += "nothing changes. "


@strawberry.type(
    description="Every mutation runs in one transaction: all of it happens or none. Expected "
    "refusals come back as the payload's `userErrors` (with a code) and change nothing."
)
class Mutation:
    """Every mutation runs in one transaction; refusals come back as `userErrors`."""

    reserve_stock: ReserveStockPayload = with_arguments(
        strawberry.field(
            resolver=reservations.reserve_stock,
            description="Public. Reserve every line or none (a cart): the units count as "
            "reserved until the reservation expires (ttlSeconds), is released, or its order "
            "is paid. Units come from locations in priority order and may be split across "
            "them. userErrors: INVALID_INPUT, UNKNOWN_SKU, PURCHASE_LIMIT_EXCEEDED (more of a "
            "SKU than its maxPerOrder, lines of it summed), INSUFFICIENT_STOCK (one per short "
            "SKU; figures summed over all locations), IDEMPOTENCY_CONFLICT.",
        ),
        input="The lines, and optionally a TTL and an idempotency key.",
    )
    update_reservation: ReserveStockPayload = with_arguments(
        strawberry.field(
            resolver=reservations.update_reservation,
            description="Public (the reservation id is the right). Set the absolute quantity "
            "of each SKU listed: more reserves more (locations in priority order), less "
            "releases (lowest-priority location first), 0 releases all of that SKU. SKUs the "
            "reservation holds that are left out of `lines` are not touched. All or nothing; "
            "on success the expiry restarts at now + the reservation's ttlSeconds. "
            "userErrors: RESERVATION_NOT_FOUND, RESERVATION_NOT_ACTIVE, INVALID_ORDER_STATE "
            "(checked out: the order's lines are frozen), INVALID_INPUT (no lines, a SKU "
            "twice, a quantity out of range), UNKNOWN_SKU, PURCHASE_LIMIT_EXCEEDED (an increase "
            "past the variant's maxPerOrder; units held above a limit lowered since are "
            "kept), INSUFFICIENT_STOCK (figures summed over all locations, counting what the "
            "reservation already holds).",
        ),
        input="The reservation and its new quantities.",
    )
    release_reservation: ReleaseReservationPayload = with_arguments(
        strawberry.field(
            resolver=reservations.release_reservation,
            description="Public. Give every reserved unit back (RELEASE movements) and end "
            "the reservation RELEASED; a PENDING_PAYMENT order on it is CANCELLED with its "
            "payment. userErrors: RESERVATION_NOT_FOUND, RESERVATION_NOT_ACTIVE.",
        ),
        reservation_id="The reservation's id.",
    )
    checkout: CheckoutPayload = with_arguments(
        strawberry.field(
            resolver=reservations.checkout,
            description="Public. Turn an ACTIVE reservation into an order (PENDING_PAYMENT) "
            "with unit prices frozen now, and create its payment (a Stripe PaymentIntent for "
            "the total); confirm it with `paymentClientSecret`. The reservation keeps holding "
            "the units until the payment succeeds (sold), is cancelled, or the reservation "
            "expires. Checking out the same reservation again returns the same pending order. "
            "userErrors: RESERVATION_NOT_FOUND, RESERVATION_NOT_ACTIVE, INVALID_ORDER_STATE "
            "(its order is past PENDING_PAYMENT), INVALID_INPUT (lines in several currencies, "
            "a bad idempotency key), IDEMPOTENCY_CONFLICT, PAYMENT_PROVIDER_ERROR.",
        ),
        input="The reservation, the buyer's email and an optional idempotency key.",
    )
    adjust_stock: AdjustStockPayload = with_arguments(
        strawberry.field(
            resolver=admin.adjust_stock,
            extensions=admin_only(),
            description=_ADMIN + "Add or remove units at one location, writing one ledger "
            "row. A removal may only take available units (onHand - reserved - unavailable "
            "at that location): reserved units are promised to buyers. userErrors: INVALID_INPUT, "
            "UNKNOWN_SKU, UNKNOWN_LOCATION, INSUFFICIENT_STOCK (figures at the location in "
            "`locationId`), STOCK_CHANGED, IDEMPOTENCY_CONFLICT.",
        ),
        input="The SKU, location, delta and reason.",
    )
    set_stock: AdjustStockPayload = with_arguments(
        strawberry.field(
            resolver=admin.set_stock,
            extensions=admin_only(),
            description=_ADMIN + "Set onHand at one location to a counted figure, writing "
            "one ledger row of the difference (the same figure writes none). userErrors: "
            "INVALID_INPUT, UNKNOWN_SKU, UNKNOWN_LOCATION, INSUFFICIENT_STOCK (below what is "
            "reserved plus unavailable at that location), STOCK_CHANGED, IDEMPOTENCY_CONFLICT.",
        ),
        input="The SKU, location and counted figure.",
    )
    refund_order: RefundOrderPayload = with_arguments(
        strawberry.field(
            resolver=admin.refund_order,
            extensions=admin_only(),
            description=_ADMIN + "Refund units of a PAID or PARTIALLY_REFUNDED order: the "
            "payment provider refunds their frozen unit prices first, then the units go back "
            "on hand where they were sold from (RETURN), unless restock is false. The order "
            "becomes PARTIALLY_REFUNDED or REFUNDED. userErrors: ORDER_NOT_FOUND, "
            "INVALID_ORDER_STATE, REFUND_EXCEEDS_QUANTITY (also for a SKU the order lacks), "
            "INVALID_INPUT, IDEMPOTENCY_CONFLICT, PAYMENT_PROVIDER_ERROR.",
        ),
        input="The order, the lines to refund (null: all) and whether to restock.",
    )
    cancel_order: CancelOrderPayload = with_arguments(
        strawberry.field(
            resolver=admin.cancel_order,
            extensions=admin_only(),
            description=_ADMIN + "Cancel an order. PENDING_PAYMENT: its payment is cancelled "
            "and its reservation released. PAID or PARTIALLY_REFUNDED: every unit left is "
            "refunded and restocked. NEEDS_ATTENTION: refunded without restock (its units "
            "were never taken) and a still ACTIVE reservation released. The order ends "
            "CANCELLED. userErrors: ORDER_NOT_FOUND, INVALID_ORDER_STATE (already CANCELLED "
            "or REFUNDED), PAYMENT_PROVIDER_ERROR.",
        ),
        input="The order and an optional reason.",
    )
    set_low_stock_threshold: SetLowStockThresholdPayload = with_arguments(
        strawberry.field(
            resolver=low_stock.set_low_stock_threshold,
            extensions=admin_only(),
            description=_ADMIN + "Set the units at or under which a variant is low "
            "(isLowStock, lowStockVariants, lowStockAlerts from the next stock event); 0 turns "
            "its alerts off. Not a stock change: no ledger row. userErrors: INVALID_INPUT "
            "(below 0 or above 1000000), UNKNOWN_SKU.",
        ),
        input="The SKU and its new threshold.",
    )
    update_variant_inventory: UpdateVariantInventoryPayload = with_arguments(
        strawberry.field(
            resolver=low_stock.update_variant_inventory,
            extensions=admin_only(),
            description=_ADMIN + "Set a variant's inventoryPolicy, backorderLimit, "
            "maxPerOrder and lowStockThreshold in one call; a field left out keeps its "
            "value. Not a stock change: no ledger row. A new maxPerOrder applies to the next "
            "reserveStock or updateReservation (PURCHASE_LIMIT_EXCEEDED past it); carts "
            "already holding more keep their units. userErrors: INVALID_INPUT (a number "
            "below 0 or above 1000000, a null policy or threshold, a backorderLimit with "
            "DENY), UNKNOWN_SKU, IDEMPOTENCY_CONFLICT.",
        ),
        input="The SKU and the settings to change.",
    )
    bulk_adjust_stock: BulkAdjustStockPayload = with_arguments(
        strawberry.field(
            resolver=low_stock.bulk_adjust_stock,
            extensions=admin_only(),
            description=_ADMIN + "Many adjustStock lines in one call, one ledger row per "
            "line. atomic (default): one transaction, any refusal refuses every line and "
            "all are reported; otherwise each line on its own. userErrors (fields under "
            '["lines", "<index>"]): those of adjustStock, and INVALID_INPUT for no or more '
            "than 500 lines, a SKU and location given twice, or a line with an idempotencyKey.",
        ),
        input="The lines and whether they apply all or none.",
    )
    move_stock_state: AdjustStockPayload = with_arguments(
        strawberry.field(
            resolver=admin.move_stock_state,
            extensions=admin_only(),
            description=_ADMIN + "Move on-hand units at one location between AVAILABLE and "
            "DAMAGED / QUALITY_CONTROL / SAFETY_STOCK (or between two of those), writing one "
            "STATE_CHANGE ledger row (onHand and reserved unchanged). Units out of AVAILABLE "
            "are never reserved or sold until moved back. userErrors: INVALID_INPUT (quantity "
            "below 1, from = to), UNKNOWN_SKU, UNKNOWN_LOCATION, INSUFFICIENT_STOCK (the "
            "`from` state holds fewer units at that location; `available` says how many), "
            "IDEMPOTENCY_CONFLICT.",
        ),
        input="The SKU, location, quantity and the two states.",
    )
    transfer_stock: TransferStockPayload = with_arguments(
        strawberry.field(
            resolver=admin.transfer_stock,
            extensions=admin_only(),
            description=_ADMIN + "Move units of one SKU between two locations in one "
            "transaction: two TRANSFER ledger rows sharing one reference (transfer:<id>), "
            "onHand -n at the source and +n at the destination (its level created if "
            "missing). Both levels are locked in id order. Only available units move "
            "(onHand - reserved - unavailable at the source). userErrors: INVALID_INPUT "
            "(quantity below 1, the same location twice), UNKNOWN_SKU, UNKNOWN_LOCATION, "
            "INSUFFICIENT_STOCK (`available` at the source), IDEMPOTENCY_CONFLICT.",
        ),
        input="The SKU, both locations and the quantity.",
    )
    create_inbound_shipment: InboundShipmentPayload = with_arguments(
        strawberry.field(
            resolver=shipments.create_inbound_shipment,
            extensions=admin_only(),
            description=_ADMIN + "Create an OPEN inbound shipment to one location: its lines' "
            "units count as `incoming` there (never reserved or sold) until received or "
            "cancelled; no stock movement yet. userErrors: INVALID_INPUT (no or over 1000 "
            "lines, a SKU twice, quantity not 1 to 1000000), UNKNOWN_SKU, UNKNOWN_LOCATION, "
            "IDEMPOTENCY_CONFLICT; every line's refusal is listed.",
        ),
        input="The lines, location, reference and expected date.",
    )
    receive_inbound_shipment: InboundShipmentPayload = with_arguments(
        strawberry.field(
            resolver=shipments.receive_inbound_shipment,
            extensions=admin_only(),
            description=_ADMIN + "Receive units of an OPEN or PARTIALLY_RECEIVED shipment: "
            "one RECEIPT movement per stock level (reference shipment:<id>), "
            "quantityReceived raised, status PARTIALLY_RECEIVED, or RECEIVED once every line "
            "is in. The shipment is locked first, so two receipts never receive a unit twice. "
            "userErrors: SHIPMENT_NOT_FOUND, INVALID_SHIPMENT_STATE (RECEIVED or CANCELLED), "
            "INVALID_INPUT (a SKU not on the shipment, more than still expected), "
            "IDEMPOTENCY_CONFLICT.",
        ),
        input="The shipment and what arrived (null lines: everything still expected).",
    )
    cancel_inbound_shipment: InboundShipmentPayload = with_arguments(
        strawberry.field(
            resolver=shipments.cancel_inbound_shipment,
            extensions=admin_only(),
            description=_ADMIN + "Cancel an OPEN or PARTIALLY_RECEIVED shipment: what it still "
            "expects is no longer incoming; units received before stay on hand. userErrors: "
            "SHIPMENT_NOT_FOUND, INVALID_SHIPMENT_STATE (already RECEIVED or CANCELLED).",
        ),
        shipment_id="InboundShipment.id.",
    )
    create_webhook_endpoint: CreateWebhookEndpointPayload = with_arguments(
        strawberry.field(
            resolver=webhooks.create_webhook_endpoint,
            extensions=admin_only(),
            description=_ADMIN + "Register a webhook endpoint (Standard Webhooks): events of "
            "its topics are POSTed to its URL, signed. Returns the signing secret ONCE: store "
            "it now, it is never shown again (it is kept encrypted). userErrors: "
            "WEBHOOK_URL_NOT_ALLOWED (malformed, over 2048 characters, not https, or resolving "
            "to a loopback, private, link-local or metadata address outside development), "
            "INVALID_INPUT (no topics, a topic twice, a description over 500 characters).",
        ),
        input="The URL, topics and note.",
    )
    update_webhook_endpoint: WebhookEndpointPayload = with_arguments(
        strawberry.field(
            resolver=webhooks.update_webhook_endpoint,
            extensions=admin_only(),
            description=_ADMIN + "Change an endpoint's URL (checked again), topics, note, or "
            "turn it on or off (enabled: true also re-enables one a 410 answer disabled). "
            "userErrors: WEBHOOK_ENDPOINT_NOT_FOUND, then those of createWebhookEndpoint.",
        ),
        input="The endpoint and what to change; fields left out stay as they are.",
    )
    delete_webhook_endpoint: WebhookEndpointPayload = with_arguments(
        strawberry.field(
            resolver=webhooks.delete_webhook_endpoint,
            extensions=admin_only(),
            description=_ADMIN + "Delete an endpoint with all its deliveries (pending ones are "
            "never sent); returns it as it was. userErrors: WEBHOOK_ENDPOINT_NOT_FOUND.",
        ),
        id="WebhookEndpoint.id.",
    )
    rotate_webhook_endpoint_secret: CreateWebhookEndpointPayload = with_arguments(
        strawberry.field(
            resolver=webhooks.rotate_webhook_endpoint_secret,
            extensions=admin_only(),
            description=_ADMIN + "Issue a new signing secret for an endpoint, returned ONCE. "
            "The previous secret still signs for WEBHOOK_SECRET_OVERLAP_SECONDS (default 24 h; "
            "endpoint.previousSecretExpiresAt), so receivers can switch without losing an "
            "event. userErrors: WEBHOOK_ENDPOINT_NOT_FOUND.",
        ),
        id="WebhookEndpoint.id.",
    )
    retry_webhook_delivery: WebhookDeliveryPayload = with_arguments(
        strawberry.field(
            resolver=webhooks.retry_webhook_delivery,
            extensions=admin_only(),
            description=_ADMIN + "Send a FAILED (or PENDING) delivery again now: PENDING, due "
            "now, with the same webhook-id (attempts are kept). userErrors: "
            "WEBHOOK_ENDPOINT_NOT_FOUND (no webhook delivery has this id), INVALID_INPUT (it "
            "SUCCEEDED already).",
        ),
        id="WebhookDelivery.id.",
    )
