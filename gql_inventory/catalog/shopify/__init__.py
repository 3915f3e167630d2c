"""Import Shopify's product CSV export ("Export products" in the Shopify admin).

The files are read exactly as Shopify writes them:

- Rows are grouped by `Handle`. The first row of a handle (over all the files,
  in the order given) carries the product: `Title` (required there), `Vendor`,
  `Type` and the option names `Option1 Name` .. `Option3 Name`. Later rows of
  the handle add variants; their option names are ignored (they are often
  blank or spelt differently), the product's come from its first row.
- A row with a handle but no option value, no `Variant SKU` and no
  `Variant Price` is an image-only row and is skipped.
- A product whose first row is ``Option1 Name = "Title"``,
  ``Option1 Value = "Default Title"`` (or has no option at all) has no options:
  its single variant is titled "Default Title". Otherwise a variant's title is
  its option values joined by " / " (Shopify's rule).
- A blank `Variant Inventory Qty` is 0. Quantities must be whole numbers >= 0.
- `Variant Price` is a decimal amount (``"19.99"``), stored in the currency's
  minor units (``1999``) with `Decimal` arithmetic; it may not be negative nor
  carry more decimals than the currency has.

Required columns: Handle, Title, Option1 Name, Option1 Value, Variant SKU,
Variant Price, Variant Inventory Qty (header names match case-insensitively).
Shopify always writes them; a file without one of them is not such an export
(a missing SKU or quantity column would otherwise silently create new variants
or zero the stock).

SKUs: `Variant SKU` when not blank. Otherwise one is derived, deterministically
(importing the same file twice gives the same SKUs): the handle and each option
value are slugified (accents stripped, runs of anything but ``a-z0-9`` turned into
one ``-``), joined with ``-`` and upper-cased::

    ocean-blue-shirt, "Default Title"        -> OCEAN-BLUE-SHIRT
    classic-tee, "Small", "Navy Blue"        -> CLASSIC-TEE-SMALL-NAVY-BLUE

A value with nothing left after slugifying ("★") becomes the first 8 hex digits
of its SHA-256; a SKU longer than 255 characters is cut to 246 and ends with
``-`` and 8 hex digits of the SHA-256 of the whole. A derived SKU equal to an
explicit SKU of the import, to another derived SKU, or to the SKU of a variant
of another product already in the database is a problem (give that row a
`Variant SKU`); it is never silently renamed.

Everything is validated, over all files, before anything is written; any
problem raises `CatalogImportError` listing every one of them with its file and
line. Products are then upserted by handle and variants by SKU; variants absent
from the files are left alone. Stock goes to one location (see
`import_shopify_files`) through the stock ledger: a RECEIPT into a level that has
no stock yet; a level that has is left as it is (a re-import never undoes the
adjustments and sales made since), unless the import is asked to count it.
"""

from __future__ import annotations

from gql_inventory.catalog._writer import ImportReport, RefusedCount
from gql_inventory.catalog.shopify.csvfile import CatalogImportError, ImportProblem
from gql_inventory.catalog.shopify.importer import import_shopify_files
from gql_inventory.catalog.shopify.skus import derive_sku

__all__ = [
    "CatalogImportError",
    "ImportProblem",
    "ImportReport",
    "RefusedCount",
    "derive_sku",
    "import_shopify_files",
]
