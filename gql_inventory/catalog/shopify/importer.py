"""`import_shopify_files`: read and check every file, then write the catalog and stock
(the format and its rules: `gql_inventory.catalog.shopify`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path

from gql_inventory.catalog._writer import (
    ImportReport,
    ProductSpec,
    StockSpec,
    VariantSpec,
    resolve_location,
    write_catalog,
)
from gql_inventory.catalog.shopify.csvfile import (
    DEFAULT_TITLE,
    MAX_KEY_LENGTH,
    CatalogImportError,
    ImportProblem,
)
from gql_inventory.catalog.shopify.rows import ParsedProduct, group_products
from gql_inventory.catalog.shopify.skus import assign_skus, check_derived_skus_owner
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit.csvcells import read_cell

_CURRENCY = re.compile(r"[A-Z]{3}")


def _specs(
    products: dict[str, ParsedProduct], currency: str, location_name: str
) -> tuple[list[ProductSpec], list[StockSpec]]:
    """What the writer needs: the products with their variants, and the stock of each
    variant at `location_name`."""
    product_specs: list[ProductSpec] = []
    stock: list[StockSpec] = []
    for product in products.values():
        variants: list[VariantSpec] = []
        for position, variant in enumerate(product.variants, start=1):
            assert variant.price_amount is not None
            assert variant.quantity is not None
            variants.append(
                VariantSpec(
                    sku=variant.sku,
                    title=" / ".join(variant.values) if variant.values else DEFAULT_TITLE,
                    options=tuple(zip(product.option_names, variant.values, strict=True)),
                    position=position,
                    price_amount=variant.price_amount,
                    currency_code=currency,
                )
            )
            stock.append(StockSpec(variant.sku, location_name, variant.quantity))
        product_specs.append(
            ProductSpec(
                handle=product.handle,
                title=product.title,
                vendor=product.vendor,
                product_type=product.product_type,
                variants=tuple(variants),
            )
        )
    return product_specs, stock


async def import_shopify_files(
    uow: UnitOfWork,
    paths: Sequence[Path],
    *,
    location_name: str | None = None,
    currency: str = "USD",
    count_existing: bool = False,
) -> ImportReport:
    """Import Shopify product CSV exports into the catalog and stock of one location.

    `paths` are read in order (format and SKU rule: `gql_inventory.catalog.shopify`). Prices
    are stored in minor units of `currency` (ISO 4217, e.g. "USD": "19.99" ->
    1999). Stock goes to `location_name`, created if missing, or to the
    default location ("Main warehouse", created as the default when the
    database has no default location). A stock level that never had a movement
    receives its quantity as a RECEIPT. A level with stock movements is left as it
    is (`levels_kept`): re-importing a file must not undo the adjustments and sales
    made since. With `count_existing` (the file is a stock count) such a level is
    COUNTed to the file's figure instead (no movement when it already matches;
    refused below its reserved units: `refused_counts`).

    Raises `CatalogImportError` (with every problem, nothing written) when any
    file is unreadable or invalid, and ValueError for no paths, a blank or
    over-long `location_name` or a malformed `currency`. Does not commit: the caller owns
    the transaction.
    """
    session = uow.session
    if not paths:
        raise ValueError("no file to import")
    if not _CURRENCY.fullmatch(currency):
        raise ValueError(f"currency must be an ISO 4217 code such as 'USD', not {currency!r}")
    if location_name is not None:
        location_name = read_cell(location_name)  # blanks go, a formula's guard stays
        if not location_name:
            raise ValueError("location_name is blank")
        if len(location_name) > MAX_KEY_LENGTH:
            raise ValueError(f"location_name is longer than {MAX_KEY_LENGTH} characters")

    problems: list[ImportProblem] = []
    # Reading and checking the files is blocking work: keep it off the event loop.
    products = await asyncio.to_thread(group_products, [Path(p) for p in paths], currency, problems)
    assign_skus(products, problems)
    await check_derived_skus_owner(session, products, problems)
    if problems:
        order = {str(Path(p)): index for index, p in enumerate(paths)}
        problems.sort(key=lambda p: (order.get(p.path, len(order)), p.line))
        raise CatalogImportError(problems)

    location_id, resolved_name = await resolve_location(session, location_name)
    product_specs, stock = _specs(products, currency, resolved_name)
    names = ", ".join(Path(p).name for p in paths)
    return await write_catalog(
        uow,
        product_specs,
        stock,
        {resolved_name: location_id},
        location_name=resolved_name,
        reason=f"Shopify CSV import ({names})",
        count_existing=count_existing,
    )
