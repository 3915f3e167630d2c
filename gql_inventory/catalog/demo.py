"""A generated demo catalog: apparel in sizes (and some colours) over three locations.

Deterministic (no randomness): 8 products, 44 variants, prices in USD minor
units, stock spread over "Main warehouse" (the default when the database has
none, priority 10), "Downtown store" (20) and "Online fulfilment" (30). Most
variants are well stocked; `LOW_STOCK_SKUS` have 3 units in all (at or under the
default low-stock threshold of 5) and `OUT_OF_STOCK_SKUS` none anywhere.

Seeding goes through the same writer as the Shopify importer and only fills in
what is missing: running it again (every `make run` does) changes no product,
variant, location or stock level that exists; a demo level that does not exist yet
gets its figure as a RECEIPT. Stock adjusted or sold since stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from gql_inventory.catalog._writer import (
    ImportReport,
    ProductSpec,
    StockSpec,
    VariantSpec,
    ensure_location,
    make_default_if_none,
    write_catalog,
)
from gql_inventory.domain.uow import UnitOfWork

__all__ = [
    "DEMO_LOCATIONS",
    "LOW_STOCK_SKUS",
    "OUT_OF_STOCK_SKUS",
    "demo_catalog",
    "seed_demo_catalog",
]

#: ``(name, priority)``; the first becomes the default when there is none.
DEMO_LOCATIONS: tuple[tuple[str, int], ...] = (
    ("Main warehouse", 10),
    ("Downtown store", 20),
    ("Online fulfilment", 30),
)

SIZES: tuple[tuple[str, str], ...] = (("S", "S"), ("M", "M"), ("L", "L"), ("XL", "XL"))


@dataclass(frozen=True, slots=True)
class _DemoProduct:
    handle: str
    title: str
    product_type: str
    sku_prefix: str
    price_cents: int
    #: ``(colour, SKU code)``; empty for a size-only product.
    colours: tuple[tuple[str, str], ...] = ()


VENDOR = "Northwind Apparel"

_PRODUCTS: tuple[_DemoProduct, ...] = (
    _DemoProduct(
        "classic-tee", "Classic Tee", "T-Shirts", "TEE", 1900, (("Black", "BLK"), ("White", "WHT"))
    ),
    _DemoProduct(
        "hooded-sweatshirt",
        "Hooded Sweatshirt",
        "Sweatshirts",
        "HOOD",
        4900,
        (("Heather Grey", "GRY"), ("Navy", "NVY")),
    ),
    _DemoProduct(
        "oxford-shirt", "Oxford Shirt", "Shirts", "OXF", 4500, (("Blue", "BLU"), ("White", "WHT"))
    ),
    _DemoProduct("denim-jacket", "Denim Jacket", "Jackets", "DNM", 8900),
    _DemoProduct("chino-trousers", "Chino Trousers", "Trousers", "CHN", 5950),
    _DemoProduct("rain-parka", "Rain Parka", "Jackets", "PRK", 12900),
    _DemoProduct("merino-sweater", "Merino Sweater", "Knitwear", "MER", 7995),
    _DemoProduct("running-shorts", "Running Shorts", "Activewear", "RUN", 2499),
)

#: Extra charge for XL, in minor units.
XL_SURCHARGE = 200

LOW_STOCK_SKUS: frozenset[str] = frozenset({"TEE-WHT-XL", "HOOD-NVY-S", "PRK-XL", "MER-S"})
OUT_OF_STOCK_SKUS: frozenset[str] = frozenset({"OXF-BLU-XL", "DNM-S", "RUN-XL"})


def _quantities(sku: str, index: int) -> tuple[int, int, int]:
    """Units at the three demo locations for the `index`-th variant."""
    if sku in OUT_OF_STOCK_SKUS:
        return (0, 0, 0)
    if sku in LOW_STOCK_SKUS:
        return (2, 1, 0)
    return (12 + (index * 7) % 29, (index * 3) % 7, (index * 5) % 11)


def demo_catalog() -> tuple[list[ProductSpec], list[StockSpec]]:
    """The demo products and their stock at each demo location (pure, deterministic)."""
    products: list[ProductSpec] = []
    stock: list[StockSpec] = []
    index = 0
    for product in _PRODUCTS:
        colours: tuple[tuple[str, str] | None, ...] = product.colours or (None,)
        variants: list[VariantSpec] = []
        for colour in colours:
            for size, size_code in SIZES:
                parts = [product.sku_prefix]
                options = [("Size", size)]
                if colour is not None:
                    parts.append(colour[1])
                    options.append(("Colour", colour[0]))
                parts.append(size_code)
                sku = "-".join(parts)
                price = product.price_cents + (XL_SURCHARGE if size == "XL" else 0)
                variants.append(
                    VariantSpec(
                        sku=sku,
                        title=" / ".join(value for _, value in options),
                        options=tuple(options),
                        position=len(variants) + 1,
                        price_amount=price,
                        currency_code="USD",
                    )
                )
                for (location, _), units in zip(
                    DEMO_LOCATIONS, _quantities(sku, index), strict=True
                ):
                    stock.append(StockSpec(sku, location, units))
                index += 1
        products.append(
            ProductSpec(
                handle=product.handle,
                title=product.title,
                vendor=VENDOR,
                product_type=product.product_type,
                variants=tuple(variants),
            )
        )
    return products, stock


async def seed_demo_catalog(uow: UnitOfWork) -> ImportReport:
    """Create what is missing of the demo catalog; see the module docstring.

    Creates the demo locations that are missing (existing ones keep their
    settings; "Main warehouse" becomes the default only when there is none),
    inserts the missing products and variants (existing ones are left as they
    are), and receives the demo figure into every demo stock level that has no
    stock movement yet (a RECEIPT through the stock ledger); levels that have one
    are counted in the report's `levels_kept`, never changed. The report's
    `location` is "Main warehouse". Does not commit.
    """
    session = uow.session
    location_ids: dict[str, int] = {}
    for name, priority in DEMO_LOCATIONS:
        location_ids[name] = await ensure_location(session, name, priority=priority)
    main = DEMO_LOCATIONS[0][0]
    await make_default_if_none(session, main)
    products, stock = demo_catalog()
    return await write_catalog(
        uow,
        products,
        stock,
        location_ids,
        location_name=main,
        reason="demo catalog",
        update_existing=False,
        count_existing=False,
    )
