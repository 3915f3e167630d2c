"""Catalog loading and export: Shopify product CSV import, the demo catalog, stock CSV export.

All functions take an `AsyncSession` and never commit (the caller owns the
transaction). Stock changes go through `gql_inventory.stock.ledger`.
"""

from __future__ import annotations

from gql_inventory.catalog._writer import ImportReport, RefusedCount
from gql_inventory.catalog.demo import seed_demo_catalog
from gql_inventory.catalog.export import export_stock_csv
from gql_inventory.catalog.shopify import (
    CatalogImportError,
    ImportProblem,
    derive_sku,
    import_shopify_files,
)

__all__ = [
    "CatalogImportError",
    "ImportProblem",
    "ImportReport",
    "RefusedCount",
    "derive_sku",
    "export_stock_csv",
    "import_shopify_files",
    "seed_demo_catalog",
]
