"""Shapes of updateVariantInventory (issue 16 item 6): a variant's inventory policy,
backorder limit, per-order limit and low-stock threshold in one admin call."""

from __future__ import annotations

import strawberry

from gql_inventory.schema.catalog import VariantType
from gql_inventory.schema.enums import InventoryPolicy
from gql_inventory.schema.payloads import UserError


@strawberry.input(
    description="Admin: a variant's inventory settings. A field left out keeps its value; "
    "null means what each field says."
)
class UpdateVariantInventoryInput:
    """Admin: the settings to change; fields left out (UNSET) keep their value."""

    sku: str = strawberry.field(description="The variant's SKU.")
    inventory_policy: InventoryPolicy | None = strawberry.field(
        default=strawberry.UNSET,
        description="DENY or CONTINUE; null is refused (INVALID_INPUT): leave it out to keep "
        "the policy.",
    )
    backorder_limit: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Units, 0 to 1000000: the most a CONTINUE variant promises beyond stock; "
        "null: no limit. A number is refused (INVALID_INPUT) when the policy after this call "
        "is DENY, where it would mean nothing; switching to DENY keeps the stored limit "
        "for a later CONTINUE.",
    )
    max_per_order: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Units, 1 to 1000000: the most units of this variant one reservation "
        "may hold; 0 (or null) removes the limit. Applies to the next reserveStock or "
        "updateReservation; carts already holding more keep their units.",
    )
    low_stock_threshold: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Units, 0 to 1000000, as setLowStockThreshold's threshold (0: alerts "
        "off); null is refused (INVALID_INPUT).",
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="Optional, 1 to 255 characters: the same key with the same input "
        "returns the first call's variant (as it is now) without writing again; with "
        "another input it is IDEMPOTENCY_CONFLICT.",
    )


@strawberry.type(description="The variant after updateVariantInventory.")
class UpdateVariantInventoryPayload:
    """The variant with its settings, or why not."""

    variant: VariantType | None = strawberry.field(
        description="The variant with its new settings; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why the call was refused (INVALID_INPUT, UNKNOWN_SKU, "
        "IDEMPOTENCY_CONFLICT); empty on success. A refusal changes nothing."
    )
