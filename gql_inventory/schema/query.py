"""The Query root: shapes here, logic in `gql_inventory.resolvers`."""

from __future__ import annotations

import strawberry

from gql_inventory.resolvers import (
    admin,
    backoffice,
    catalog,
    live,
    low_stock,
    reservations,
    shipments,
    webhooks,
)
from gql_inventory.resolvers import report as report_resolvers
from gql_inventory.resolvers.access import admin_only
from gql_inventory.schema.catalog import LocationType, ProductType, VariantType
from gql_inventory.schema.connections import (
    OrderConnection,
    ProductConnection,
    ReservationConnection,
    StockMovementConnection,
)
from gql_inventory.schema.docs import with_arguments
from gql_inventory.schema.low_stock import VariantConnection
from gql_inventory.schema.orders import OrderType, ReservationType
from gql_inventory.schema.report import InventoryReportType
from gql_inventory.schema.shipments import InboundShipmentConnection, InboundShipmentType
from gql_inventory.schema.webhooks import WebhookDeliveryConnection, WebhookEndpointType

_ADMIN = "Admin only: without `Authorization: Bearer <token>` it is a FORBIDDEN error. "


@strawberry.type(
    description="Read operations. Catalog and stock reads are public; a reservation or order "
    "is read with its unguessable id; the ledger needs an admin token. Refused arguments are "
    "GraphQL errors with `extensions.code` (BAD_USER_INPUT, BAD_CURSOR, FORBIDDEN)."
)
class Query:
    """Read operations. Storefront reads are public."""

    product: ProductType | None = with_arguments(
        strawberry.field(
            resolver=catalog.product,
            description="Public. A product by `id` or by `handle`: give exactly one (both or "
            "neither is a BAD_USER_INPUT error). Null when none matches.",
        ),
        id="Product.id.",
        handle="Product.handle, e.g. blue-shirt.",
    )
    products: ProductConnection = with_arguments(
        strawberry.field(
            resolver=catalog.products,
            description="Public. A forward page of products ordered by id (Relay connection).",
        ),
        first="Page size, 0 to 100; null: 20. Beyond: BAD_USER_INPUT.",
        after="`pageInfo.endCursor` of the previous page; a cursor not issued here: BAD_CURSOR.",
        query="Keeps products whose title, handle or any variant's SKU contains this text "
        "(case-insensitive); null or empty: all.",
        low_stock_only="Keeps products with at least one variant whose available units "
        "(summed over locations) are at or under its lowStockThreshold.",
        in_stock_only="Keeps products with a variant sellable now: one of its locations has "
        "units a buyer may reserve (onHand - reserved - unavailable - backordered above 0), "
        "or its inventoryPolicy is CONTINUE and its backordered units are under its "
        "backorderLimit (null: no limit). Pages walk the filtered products by id: none "
        "skipped or repeated when stock changes between pages.",
    )
    variant: VariantType | None = with_arguments(
        strawberry.field(
            resolver=catalog.variant,
            description="Public. The variant with this SKU, or null.",
        ),
        sku="The exact SKU (case-sensitive).",
    )
    variants: list[VariantType | None] = with_arguments(
        strawberry.field(
            resolver=catalog.variants,
            description="Public. Variants in the order of `skus`, null where a SKU is unknown "
            "(one round trip for a whole cart).",
        ),
        skus="Up to 250 SKUs (more: BAD_USER_INPUT).",
    )
    locations: list[LocationType] = strawberry.field(
        resolver=catalog.locations,
        description="Public. Every location by priority: the order reservations draw from.",
    )
    reservation: ReservationType | None = with_arguments(
        strawberry.field(
            resolver=reservations.reservation,
            description="Public: the id itself is the right to read it. Null when no "
            "reservation has this id.",
        ),
        id="Reservation.id as reserveStock returned it.",
    )
    order: OrderType | None = with_arguments(
        strawberry.field(
            resolver=reservations.order,
            description="An order, or null when none has this id. Admins read any order; "
            "without an admin token the order's `reservationId` must be given, else FORBIDDEN.",
        ),
        id="Order.id.",
        reservation_id="The id of the reservation the order was made from: the buyer's proof. "
        "Not needed with an admin token.",
    )
    stock_movements: StockMovementConnection = with_arguments(
        strawberry.field(
            resolver=admin.stock_movements,
            extensions=admin_only(),
            description=_ADMIN + "The stock ledger, newest first: every change of every "
            "stock level, with why and after what.",
        ),
        sku="Only this SKU's movements; null: all.",
        first="Page size, 0 to 250; null: 50. Beyond: BAD_USER_INPUT.",
        after="`pageInfo.endCursor` of the previous page: read on with older movements.",
        reference="Only movements with this reference, e.g. order:<id> or reservation:<id>.",
    )
    low_stock_variants: VariantConnection = with_arguments(
        strawberry.field(
            resolver=low_stock.low_stock_variants,
            extensions=admin_only(),
            description=_ADMIN + "Variants (not products) whose available units are at or "
            "under their lowStockThreshold, fewest available first (then by id); a threshold "
            "of 0 keeps a variant out (alerts off). The same rule as Variant.isLowStock and "
            "lowStockAlerts.",
        ),
        location_id="Location.id: compare the units available at that location (only "
        "variants with a stock level there; an unknown location gives an empty list). Null: "
        "summed over every location.",
        first="Page size, 0 to 250; null: 50. Beyond: BAD_USER_INPUT.",
        after="`pageInfo.endCursor` of the previous page; a cursor not issued here: BAD_CURSOR.",
    )
    orders: OrderConnection = with_arguments(
        strawberry.field(
            resolver=backoffice.orders,
            extensions=admin_only(),
            description=_ADMIN + "Orders, newest first (then by id), e.g. every "
            "NEEDS_ATTENTION order with its attentionReason, or the payments still pending.",
        ),
        status="Only orders in one of these statuses; null: every status.",
        created_after="Only orders created strictly after this instant (no offset: UTC).",
        created_before="Only orders created strictly before this instant (no offset: UTC).",
        first="Page size, 0 to 250; null: 50. Beyond: BAD_USER_INPUT.",
        after="`pageInfo.endCursor` of the previous page: read on with older orders; a "
        "cursor not issued here: BAD_CURSOR. Orders created meanwhile never shift a page.",
    )
    reservations: ReservationConnection = with_arguments(
        strawberry.field(
            resolver=backoffice.reservations,
            extensions=admin_only(),
            description=_ADMIN + "Reservations, soonest expiry first (then by id), e.g. "
            "the ACTIVE ones holding stock, or the EXPIRED ones. Without `status` every "
            "reservation is listed, ended ones (COMPLETED, RELEASED, EXPIRED) included. A "
            "reservation past its expiresAt stays ACTIVE, holding its units, until the "
            "expiry sweep makes it EXPIRED.",
        ),
        status="Only reservations in one of these statuses; null: every status.",
        expires_before="Only reservations whose expiresAt is strictly before this instant "
        "(no offset: UTC).",
        sku="Only reservations with a line of the variant with this exact SKU (each listed "
        "once); an unknown SKU gives an empty list. Null: every SKU.",
        first="Page size, 0 to 250; null: 50. Beyond: BAD_USER_INPUT.",
        after="`pageInfo.endCursor` of the previous page: read on with later expiries; a "
        "cursor not issued here: BAD_CURSOR.",
    )
    stock_cursor: str = strawberry.field(
        resolver=live.stock_cursor,
        description="Public. Cursor of the newest stock event: pass it as "
        "stockChanged(after:) to get every change from now on, with no race between a read "
        "and the subscription.",
    )
    inventory_report: InventoryReportType = with_arguments(
        strawberry.field(
            resolver=report_resolvers.inventory_report,
            extensions=admin_only(),
            description=_ADMIN + "The operator's report for the window [from, to): "
            "reservations, conversion, sales, refunds, revenue, stockouts, count "
            "discrepancies. A window that is empty, reversed, without a time zone or longer "
            "than 366 days is a BAD_USER_INPUT error.",
        ),
        from_="Start of the window (included), ISO 8601 with an offset.",
        to="End of the window (excluded), ISO 8601 with an offset.",
    )
    inbound_shipments: InboundShipmentConnection = with_arguments(
        strawberry.field(
            resolver=shipments.inbound_shipments,
            extensions=admin_only(),
            description=_ADMIN + "Inbound shipments, newest first (createdAt, then id), e.g. "
            "the OPEN and PARTIALLY_RECEIVED ones still expected.",
        ),
        status="Only shipments in one of these statuses; null: every status.",
        first="Page size, 0 to 250; null: 50. Beyond: BAD_USER_INPUT.",
        after="`pageInfo.endCursor` of the previous page: read on with older shipments; a "
        "cursor not issued here: BAD_CURSOR.",
    )
    inbound_shipment: InboundShipmentType | None = with_arguments(
        strawberry.field(
            resolver=shipments.inbound_shipment,
            extensions=admin_only(),
            description=_ADMIN + "One inbound shipment, or null when none has this id.",
        ),
        id="InboundShipment.id.",
    )
    webhook_endpoints: list[WebhookEndpointType] = strawberry.field(
        resolver=webhooks.webhook_endpoints,
        extensions=admin_only(),
        description=_ADMIN + "Every webhook endpoint, oldest first (no secrets: they are "
        "shown once, at creation or rotation).",
    )
    webhook_deliveries: WebhookDeliveryConnection = with_arguments(
        strawberry.field(
            resolver=webhooks.webhook_deliveries,
            extensions=admin_only(),
            description=_ADMIN + "Webhook deliveries (one event for one endpoint), newest "
            "first, e.g. the FAILED ones to retry.",
        ),
        endpoint_id="Only this endpoint's deliveries; an id no endpoint has: none.",
        status="Only deliveries in one of these statuses; null: every status.",
        first="Page size, 0 to 250; null: 50. Beyond: BAD_USER_INPUT.",
        after="`pageInfo.endCursor` of the previous page: read on with older deliveries; a "
        "cursor not issued here: BAD_CURSOR.",
    )
