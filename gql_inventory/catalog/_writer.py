"""Shared writing half of the catalog importers (Shopify CSV and the demo catalog).

The readers (`shopify`, `demo.py`) turn their input into `ProductSpec`s and
`StockSpec`s; `write_catalog` upserts them and receives stock into levels that have
none yet, through `gql_inventory.stock.ledger`; existing stock changes only on a count
(`count_existing`), so a re-run never undoes sales or adjustments made since
(docs/catalog.md). Nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Table, any_, bindparam, exists, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import String

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import Location, MovementKind, Product, Variant
from gql_inventory.stock.adjust import set_on_hand
from gql_inventory.stock.backorders import fill_backorders
from gql_inventory.stock.ledger import apply_movement, ensure_level, lock_level_ids

#: Name and priority of the location created when the database has none.
DEFAULT_LOCATION_NAME = "Main warehouse"
DEFAULT_LOCATION_PRIORITY = 10

#: Rows per multi-row INSERT (asyncpg allows at most 32767 bind parameters).
_BATCH = 1000

_products = cast(Table, Product.__table__)
_variants = cast(Table, Variant.__table__)
_locations = cast(Table, Location.__table__)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RefusedCount:
    """A count that could not be applied: `counted` units is below the `reserved` ones."""

    sku: str
    location: str
    counted: int
    reserved: int


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import or the demo seeding changed.

    - `products_created` / `products_updated`: products inserted / existing
      products whose title, vendor or type changed (unchanged ones count in neither).
    - `variants_created` / `variants_updated`: the same for variants (SKU is
      the key; product, title, options, position, price or currency changed).
    - `units_received`: sum of the on-hand deltas of the RECEIPT movements written
      (levels that had no stock movement yet).
    - `levels_counted`: number of COUNT movements written (only with `count_existing`:
      existing levels whose figure differed).
    - `levels_kept`: levels with stock movements left as they were (no `count_existing`).
    - `location`: name of the location the stock went to (the default one for the demo,
      which spreads stock over several).
    - `refused_counts`: counts below the units reserved at that level, left unapplied.
    """

    products_created: int
    products_updated: int
    variants_created: int
    variants_updated: int
    units_received: int
    levels_counted: int
    location: str
    refused_counts: tuple[RefusedCount, ...] = ()
    levels_kept: int = 0


@dataclass(frozen=True, slots=True)
class VariantSpec:
    """One variant to upsert. `price_amount` is in the currency's minor units.

    `options` holds ``(name, value)`` pairs in the product's option order
    (empty for a "Default Title" variant); `position` is 1-based.
    """

    sku: str
    title: str
    options: tuple[tuple[str, str], ...]
    position: int
    price_amount: int
    currency_code: str


@dataclass(frozen=True, slots=True)
class ProductSpec:
    """One product to upsert (keyed by `handle`) with its variants."""

    handle: str
    title: str
    vendor: str | None
    product_type: str | None
    variants: tuple[VariantSpec, ...]


@dataclass(frozen=True, slots=True)
class StockSpec:
    """The on-hand units (>= 0) that one variant should have at one location."""

    sku: str
    location_name: str
    on_hand: int


def _chunks(items: Sequence[_T], size: int = _BATCH) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def options_json(options: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """The `variants.options` JSON of ``(name, value)`` pairs."""
    return [{"name": name, "value": value} for name, value in options]


async def ensure_location(session: AsyncSession, name: str, *, priority: int | None = None) -> int:
    """The id of the location called `name`, created (not default) if missing.

    An existing location keeps its priority; `priority` None uses the column default.
    """
    values: dict[str, Any] = {"name": name, "is_default": False}
    if priority is not None:
        values["priority"] = priority
    await session.execute(
        insert(_locations).values(values).on_conflict_do_nothing(index_elements=["name"])
    )
    location_id = await session.scalar(select(_locations.c.id).where(_locations.c.name == name))
    if location_id is None:  # pragma: no cover - inserted or present just above
        raise RuntimeError(f"location {name!r} vanished")
    return int(location_id)


async def make_default_if_none(session: AsyncSession, name: str) -> None:
    """Mark location `name` as the default when no location is the default yet."""
    other_default = exists().where(_locations.c.is_default.is_(True))
    await session.execute(
        update(_locations).where(_locations.c.name == name, ~other_default).values(is_default=True)
    )


async def resolve_location(session: AsyncSession, name: str | None) -> tuple[int, str]:
    """``(id, name)`` of the location an import writes to, creating it if needed.

    `name` given: that location, created if missing (and made the default when
    no location is the default yet, so there always is one). `name` None: the
    default location; when there is none, "Main warehouse" (priority 10) is
    created if missing and made the default.
    """
    if name is not None:
        location_id = await ensure_location(session, name)
        await make_default_if_none(session, name)
        return location_id, name
    row = (
        await session.execute(
            select(_locations.c.id, _locations.c.name).where(_locations.c.is_default.is_(True))
        )
    ).first()
    if row is not None:
        return int(row.id), str(row.name)
    location_id = await ensure_location(
        session, DEFAULT_LOCATION_NAME, priority=DEFAULT_LOCATION_PRIORITY
    )
    await make_default_if_none(session, DEFAULT_LOCATION_NAME)
    return location_id, DEFAULT_LOCATION_NAME


async def _upsert_products(
    session: AsyncSession, products: Sequence[ProductSpec], *, update_existing: bool
) -> tuple[dict[str, int], int, int]:
    """Insert new products, update changed ones (only with `update_existing`);
    ``(id by handle, created, updated)``."""
    handles = [p.handle for p in products]
    by_handle = bindparam("handles", handles, type_=ARRAY(String()))
    existing = {
        row.handle: row
        for row in await session.execute(
            select(
                _products.c.handle,
                _products.c.title,
                _products.c.vendor,
                _products.c.product_type,
            ).where(_products.c.handle == any_(by_handle))
        )
    }
    created = updated = 0
    rows: list[dict[str, Any]] = []
    for p in products:
        old = existing.get(p.handle)
        if old is None:
            created += 1
        elif update_existing and tuple(old) != (p.handle, p.title, p.vendor, p.product_type):
            updated += 1
        else:
            continue
        rows.append(
            {
                "handle": p.handle,
                "title": p.title,
                "vendor": p.vendor,
                "product_type": p.product_type,
            }
        )
    for chunk in _chunks(rows):
        stmt = insert(_products).values(list(chunk))
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["handle"],
                set_={
                    "title": stmt.excluded.title,
                    "vendor": stmt.excluded.vendor,
                    "product_type": stmt.excluded.product_type,
                },
            )
        )
    ids = {
        str(row.handle): int(row.id)
        for row in await session.execute(
            select(_products.c.id, _products.c.handle).where(_products.c.handle == any_(by_handle))
        )
    }
    return ids, created, updated


async def _upsert_variants(
    session: AsyncSession,
    products: Sequence[ProductSpec],
    product_ids: Mapping[str, int],
    *,
    update_existing: bool,
) -> tuple[dict[str, int], int, int]:
    """Insert new variants, update changed ones (only with `update_existing`);
    ``(id by SKU, created, updated)``."""
    wanted: list[dict[str, Any]] = [
        {
            "product_id": product_ids[p.handle],
            "sku": v.sku,
            "title": v.title,
            "options": options_json(v.options),
            "position": v.position,
            "price_amount": v.price_amount,
            "currency_code": v.currency_code,
        }
        for p in products
        for v in p.variants
    ]
    compared = ("product_id", "title", "options", "position", "price_amount", "currency_code")
    by_sku = bindparam("skus", [w["sku"] for w in wanted], type_=ARRAY(String()))
    existing = {
        row.sku: row
        for row in await session.execute(
            select(_variants.c.sku, *(_variants.c[name] for name in compared)).where(
                _variants.c.sku == any_(by_sku)
            )
        )
    }
    created = updated = 0
    rows: list[dict[str, Any]] = []
    for w in wanted:
        old = existing.get(w["sku"])
        if old is None:
            created += 1
        elif update_existing and any(getattr(old, name) != w[name] for name in compared):
            updated += 1
        else:
            continue
        rows.append(w)
    for chunk in _chunks(rows):
        stmt = insert(_variants).values(list(chunk))
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["sku"],
                set_={name: stmt.excluded[name] for name in compared},
            )
        )
    ids = {
        str(row.sku): int(row.id)
        for row in await session.execute(
            select(_variants.c.id, _variants.c.sku).where(_variants.c.sku == any_(by_sku))
        )
    }
    return ids, created, updated


async def write_catalog(
    uow: UnitOfWork,
    products: Sequence[ProductSpec],
    stock: Sequence[StockSpec],
    location_ids: Mapping[str, int],
    *,
    location_name: str,
    reason: str,
    update_existing: bool = True,
    count_existing: bool = False,
) -> ImportReport:
    """Upsert `products` (by handle) and their variants (by SKU), then stock.

    Missing products and variants are inserted; existing ones are updated to the
    specs only with `update_existing` (else left as they are). Each `StockSpec`
    names a SKU among `products` and a location in `location_ids`. Its level is
    created at zero if missing (`ledger.ensure_level`). The levels are then locked
    in ascending id order; a level that has never had a movement gets a RECEIPT of
    the figure (none for zero). A level that has (stock exists there, perhaps
    adjusted or sold since) is left as it is (`levels_kept`), unless
    `count_existing`: then it gets a COUNT to the figure through
    `adjust.set_on_hand`, which writes nothing when the figure already matches and
    refuses a figure below the reserved units (`refused_counts`). Movements carry
    `reason`. `location_name` is only reported. Does not commit; marks the unit of
    work's catalog changed.
    """
    session = uow.session
    uow.mark_catalog_changed()  # products, variants, maybe a location: read back afresh
    product_ids, products_created, products_updated = await _upsert_products(
        session, products, update_existing=update_existing
    )
    variant_ids, variants_created, variants_updated = await _upsert_variants(
        session, products, product_ids, update_existing=update_existing
    )

    targets: dict[int, StockSpec] = {}
    for spec in stock:
        level_id = await ensure_level(
            session,
            variant_id=variant_ids[spec.sku],
            location_id=location_ids[spec.location_name],
        )
        targets[level_id] = spec

    units_received = levels_counted = levels_kept = 0
    refused: list[RefusedCount] = []
    if targets:
        for level in await lock_level_ids(session, targets):
            spec = targets[int(level.id)]
            on_hand, reserved = int(level.on_hand), int(level.reserved)
            if not level.has_movements and on_hand == 0:
                if spec.on_hand > 0:
                    movement = await apply_movement(
                        uow,
                        level_id=int(level.id),
                        kind=MovementKind.RECEIPT,
                        on_hand_delta=spec.on_hand,
                        reason=reason,
                    )
                    if movement is None:  # pragma: no cover - a receipt always fits
                        raise RuntimeError(f"receipt refused on stock level {level.id}")
                    units_received += spec.on_hand
                continue
            if not count_existing:
                levels_kept += 1
                continue
            if spec.on_hand == on_hand:
                continue
            movement, _, reserved = await set_on_hand(
                uow,
                level_id=int(level.id),
                on_hand=spec.on_hand,
                kind=MovementKind.COUNT,
                reason=reason,
            )
            if movement is not None:
                levels_counted += 1
            else:
                refused.append(
                    RefusedCount(
                        sku=spec.sku,
                        location=spec.location_name,
                        counted=spec.on_hand,
                        reserved=reserved,
                    )
                )
        if levels_counted:  # a count raising on hand fills backorders first (ADR 0018)
            await fill_backorders(uow, targets)

    return ImportReport(
        products_created=products_created,
        products_updated=products_updated,
        variants_created=variants_created,
        variants_updated=variants_updated,
        units_received=units_received,
        levels_counted=levels_counted,
        location=location_name,
        refused_counts=tuple(refused),
        levels_kept=levels_kept,
    )
