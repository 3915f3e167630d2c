"""A variant's inventory settings: policy (DENY / CONTINUE), backorder limit, per-order
limit (`max_per_order`) and low-stock threshold, written by one function
(`update_variant_inventory`: updateVariantInventory, and setLowStockThreshold through it).

A catalog write, not a stock movement: no ledger row. The `variants` trigger bumps
`catalog_version` (migration 0006), so every process's catalog snapshot reloads, and
`UnitOfWork.mark_catalog_changed` has this process read it back at once (ADR 0016).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Executable, select, update

from gql_inventory.domain import idempotency
from gql_inventory.domain.errors import (
    DomainError,
    FieldPath,
    InvalidInput,
    UnknownSku,
    in_input,
    raise_all,
)
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import InventoryPolicy, Variant

#: The highest threshold or limit accepted (units), as for one adjustment.
MAX_UNITS = 1_000_000

_SCOPE = "updateVariantInventory"

#: Each setting as the caller names it (messages).
_NAMES = {
    "inventory_policy": "inventoryPolicy",
    "backorder_limit": "backorderLimit",
    "max_per_order": "maxPerOrder",
    "low_stock_threshold": "lowStockThreshold",
}


class Keep(enum.Enum):
    """A setting left out of the call: it keeps its stored value."""

    KEEP = "KEEP"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class InventorySettings:
    """What to change; `KEEP` (the default) leaves a setting as stored.

    `backorder_limit`: units a CONTINUE variant may promise beyond stock, None for no
    limit. `max_per_order`: units of the variant one reservation may hold; 0 or None
    removes the limit (stored NULL). `low_stock_threshold`: units (0: alerts off).
    `inventory_policy` and `low_stock_threshold` cannot be None (refused).
    """

    inventory_policy: InventoryPolicy | Keep | None = KEEP
    backorder_limit: int | Keep | None = KEEP
    max_per_order: int | Keep | None = KEEP
    low_stock_threshold: int | Keep | None = KEEP

    def given(self) -> dict[str, Any]:
        """``{column: value as sent}`` of the settings not left as `KEEP`."""
        return {name: value for name, value in asdict(self).items() if value is not KEEP}


def check_units(value: int, *, name: str, field: FieldPath) -> None:
    """Raise `InvalidInput` unless ``0 <= value <= MAX_UNITS`` (`name` as the caller sent it)."""
    if not 0 <= value <= MAX_UNITS:
        raise InvalidInput(f"{name} must be between 0 and {MAX_UNITS}", field=field)


def _checked(settings: InventorySettings) -> dict[str, Any]:
    """The column values to write, or `InvalidInput` for every bad setting at once."""
    values = settings.given()
    errors: list[DomainError] = []
    for column in ("inventory_policy", "low_stock_threshold"):
        if column in values and values[column] is None:
            errors.append(
                InvalidInput(
                    f"{_NAMES[column]} cannot be null; leave it out to keep it",
                    field=in_input(column),
                )
            )
    for column in ("backorder_limit", "max_per_order", "low_stock_threshold"):
        if isinstance(values.get(column), int):
            name = _NAMES[column]
            try:
                check_units(values[column], name=name, field=in_input(column))
            except InvalidInput as error:
                errors.append(error)
    raise_all(errors)
    if values.get("max_per_order") == 0:
        values["max_per_order"] = None  # 0 removes the limit, as NULL stores "none"
    if isinstance(values.get("inventory_policy"), InventoryPolicy):
        values["inventory_policy"] = values["inventory_policy"].value
    return values


async def update_variant_inventory(
    uow: UnitOfWork,
    *,
    sku: str,
    settings: InventorySettings,
    idempotency_key: IdempotencyKey | None = None,
) -> int:
    """Change the given inventory settings of the variant `sku` in one statement; its id.

    Raises `InvalidInput` (a threshold or limit below 0 or above `MAX_UNITS`, a null
    policy or threshold, a non-null `backorder_limit` sent while the resulting policy
    is DENY: it would mean nothing), `UnknownSku`, `IdempotencyConflict`. The same key
    and settings replay the first call's variant without writing again. A lowered
    `max_per_order` leaves reservations already above it as they are (only increases
    are refused, `allocation.check_purchase_limit`).
    """
    session = uow.session
    values = _checked(settings)
    if idempotency_key is not None:
        payload = {"sku": sku, **values}
        replay = await idempotency.claim(
            session, scope=_SCOPE, key=idempotency_key, payload=payload
        )
        if replay is not None:
            return int(replay["variant_id"])
    found: Executable = select(Variant.id, Variant.inventory_policy).where(Variant.sku == sku)
    if values:
        found = (
            update(Variant)
            .where(Variant.sku == sku)
            .values(**values)
            .returning(Variant.id, Variant.inventory_policy)
        )
    row = (await session.execute(found)).one_or_none()
    if row is None:
        raise UnknownSku(sku, field=in_input("sku"))
    if values.get("backorder_limit") is not None and row.inventory_policy != "CONTINUE":
        raise InvalidInput(  # the caller's transaction rolls the update back
            "backorderLimit applies only with inventoryPolicy CONTINUE",
            field=in_input("backorder_limit"),
        )
    if values:
        uow.mark_catalog_changed()
    if idempotency_key is not None:
        await idempotency.record(
            session, scope=_SCOPE, key=idempotency_key, result={"variant_id": int(row.id)}
        )
    return int(row.id)
