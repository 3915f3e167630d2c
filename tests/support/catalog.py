"""Small catalogs built straight through the ledger, for tests that need stock to exist."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import Location, MovementKind, Product, Variant
from gql_inventory.stock.ledger import apply_movement, ensure_level


@dataclass
class Catalog:
    """Ids of what `make_catalog` created: location names -> id, SKU -> variant id."""

    locations: dict[str, int] = field(default_factory=dict)
    variants: dict[str, int] = field(default_factory=dict)
    products: dict[str, int] = field(default_factory=dict)


async def make_location(
    session: AsyncSession, name: str, *, priority: int = 100, default: bool = False
) -> int:
    """Insert a location; returns its id."""
    result = await session.execute(
        insert(Location)
        .values(name=name, priority=priority, is_default=default)
        .returning(Location.id)
    )
    return int(result.scalar_one())


async def make_product(
    session: AsyncSession,
    catalog: Catalog,
    handle: str,
    title: str,
    variants: list[tuple[str, str, int, dict[str, int]]],
    *,
    threshold: int = 5,
    currency: str = "USD",
) -> int:
    """Insert a product with variants ``(sku, title, price_minor, {location: units})``."""
    product_id = int(
        (
            await session.execute(
                insert(Product).values(handle=handle, title=title).returning(Product.id)
            )
        ).scalar_one()
    )
    catalog.products[handle] = product_id
    for position, (sku, vtitle, price, stock) in enumerate(variants):
        options = [] if vtitle == "Default Title" else [{"name": "Size", "value": vtitle}]
        variant_id = int(
            (
                await session.execute(
                    insert(Variant)
                    .values(
                        product_id=product_id,
                        sku=sku,
                        title=vtitle,
                        options=options,
                        position=position,
                        price_amount=price,
                        currency_code=currency,
                        low_stock_threshold=threshold,
                    )
                    .returning(Variant.id)
                )
            ).scalar_one()
        )
        catalog.variants[sku] = variant_id
        for location, units in stock.items():
            level_id = await ensure_level(
                session, variant_id=variant_id, location_id=catalog.locations[location]
            )
            if units:
                await apply_movement(
                    UnitOfWork(session, actor="import"),
                    level_id=level_id,
                    kind=MovementKind.RECEIPT,
                    on_hand_delta=units,
                )
    return product_id


async def make_catalog(session: AsyncSession) -> Catalog:
    """Two locations; a shirt in S/M/L, a mug (Default Title), a cap out of stock."""
    catalog = Catalog()
    catalog.locations["Main"] = await make_location(session, "Main", priority=10, default=True)
    catalog.locations["Store"] = await make_location(session, "Store", priority=20)
    await make_product(
        session,
        catalog,
        "blue-shirt",
        "Blue Shirt",
        [
            ("SHIRT-S", "Small", 2500, {"Main": 10, "Store": 2}),
            ("SHIRT-M", "Medium", 2500, {"Main": 3}),
            ("SHIRT-L", "Large", 2600, {"Main": 0, "Store": 20}),
        ],
    )
    await make_product(
        session, catalog, "white-mug", "White Mug", [("MUG", "Default Title", 999, {"Main": 50})]
    )
    await make_product(
        session, catalog, "red-cap", "Red Cap", [("CAP", "Default Title", 1500, {"Main": 0})]
    )
    return catalog
