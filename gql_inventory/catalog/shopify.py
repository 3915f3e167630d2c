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
`import_shopify_files`) through the stock ledger: a RECEIPT the first time, a
COUNT afterwards.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import String

from gql_inventory.catalog._writer import (
    ImportReport,
    ProductSpec,
    RefusedCount,
    StockSpec,
    VariantSpec,
    resolve_location,
    write_catalog,
)
from gql_inventory.inventory.uow import UnitOfWork
from gql_inventory.models import Product, Variant
from gql_inventory.money import to_minor_units

__all__ = [
    "CatalogImportError",
    "ImportProblem",
    "ImportReport",
    "RefusedCount",
    "derive_sku",
    "import_shopify_files",
]

HANDLE = "Handle"
TITLE = "Title"
VENDOR = "Vendor"
TYPE = "Type"
SKU = "Variant SKU"
PRICE = "Variant Price"
QUANTITY = "Variant Inventory Qty"
OPTION_NAMES = ("Option1 Name", "Option2 Name", "Option3 Name")
OPTION_VALUES = ("Option1 Value", "Option2 Value", "Option3 Value")
REQUIRED_COLUMNS = (HANDLE, TITLE, OPTION_NAMES[0], OPTION_VALUES[0], SKU, PRICE, QUANTITY)

DEFAULT_TITLE = "Default Title"
MAX_KEY_LENGTH = 255  # products.handle, variants.sku
MAX_QUANTITY = 2_147_483_647  # stock_levels.on_hand is an integer
MAX_AMOUNT = 9_223_372_036_854_775_807  # variants.price_amount is a bigint

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """Why a file cannot be imported: `path` as given, 1-based physical `line`, `message`.

    `line` is the line where the offending row starts, as an editor numbers
    them (the header is line 1; a quoted cell may span lines). It is 0 when
    the file as a whole could not be read.
    """

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class CatalogImportError(Exception):
    """The files were refused and nothing was written; `problems` lists every reason."""

    def __init__(self, problems: Sequence[ImportProblem]) -> None:
        self.problems: list[ImportProblem] = list(problems)
        count = len(self.problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in the catalog files:\n{lines}"
        )


@dataclass(frozen=True, slots=True)
class _Row:
    path: str
    line: int
    cells: tuple[str, ...]
    columns: dict[str, int]

    def get(self, column: str) -> str:
        index = self.columns.get(column.casefold())
        if index is None or index >= len(self.cells):
            return ""
        return self.cells[index].strip()


@dataclass(slots=True)
class _Variant:
    path: str
    line: int
    values: tuple[str, ...]
    options_valid: bool
    explicit_sku: str | None
    price_amount: int | None
    quantity: int | None
    sku: str = ""


@dataclass(slots=True)
class _Product:
    path: str
    line: int
    handle: str
    title: str
    vendor: str | None
    product_type: str | None
    option_names: tuple[str, ...]
    variants: list[_Variant] = field(default_factory=list)
    seen: dict[tuple[str, ...], _Variant] = field(default_factory=dict)


def _slug(value: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    return slug or hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


def derive_sku(handle: str, option_values: Sequence[str]) -> str:
    """The SKU of a variant whose `Variant SKU` is blank (see the module docstring).

    ``derive_sku("classic-tee", ["Small", "Navy Blue"]) == "CLASSIC-TEE-SMALL-NAVY-BLUE"``;
    pass no values for a "Default Title" variant.
    """
    sku = "-".join([_slug(handle), *(_slug(v) for v in option_values)]).upper()
    if len(sku) > MAX_KEY_LENGTH:
        digest = hashlib.sha256(sku.encode("utf-8")).hexdigest()[:8].upper()
        sku = f"{sku[: MAX_KEY_LENGTH - 9].rstrip('-')}-{digest}"
    return sku


def _read_rows(path: Path, problems: list[ImportProblem]) -> list[_Row]:
    """The non-blank data rows of one file, or none (with problems) if unusable."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(ImportProblem(name, 0, f"cannot read the file: {exc.strerror or exc}"))
        return []
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(ImportProblem(name, line, "not UTF-8 text (export the file as UTF-8)"))
        return []
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    rows: list[_Row] = []
    columns: dict[str, int] | None = None
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if columns is None:
                columns = {}
                for index, header in enumerate(cells):
                    columns.setdefault(header.strip().casefold(), index)
                missing = [c for c in REQUIRED_COLUMNS if c.casefold() not in columns]
                if missing:
                    problems.append(
                        ImportProblem(
                            name, line, f"missing required column(s): {', '.join(missing)}"
                        )
                    )
                    return []
                continue
            if any(cell.strip() for cell in cells):
                rows.append(_Row(name, line, tuple(cells), columns))
    except csv.Error as exc:
        problems.append(ImportProblem(name, start, f"malformed CSV: {exc}"))
        return []
    if columns is None:
        problems.append(ImportProblem(name, 1, "the file is empty (no header row)"))
    return rows


def _parse_price(text: str, currency: str) -> tuple[int | None, str | None]:
    if not text:
        return None, f"{PRICE} is blank"
    if not _DECIMAL.fullmatch(text):
        return None, f"{PRICE} {text!r} is not a number"
    amount = Decimal(text)
    if amount < 0:
        return None, f"{PRICE} {text!r} is negative"
    try:
        minor = to_minor_units(amount, currency)
    except ValueError:
        return None, f"{PRICE} {text!r} has more decimals than {currency} allows"
    if minor > MAX_AMOUNT:
        return None, f"{PRICE} {text!r} is too large"
    return minor, None


def _parse_quantity(text: str) -> tuple[int | None, str | None]:
    if not text:
        return 0, None
    if not _INTEGER.fullmatch(text):
        return None, f"{QUANTITY} {text!r} is not a whole number"
    quantity = int(text)
    if quantity < 0:
        return None, f"{QUANTITY} {text!r} is negative"
    if quantity > MAX_QUANTITY:
        return None, f"{QUANTITY} {text!r} is too large"
    return quantity, None


def _start_product(row: _Row, handle: str, problems: list[ImportProblem]) -> _Product:
    """The product described by the first row of `handle`."""

    def problem(message: str) -> None:
        problems.append(ImportProblem(row.path, row.line, message))

    title = row.get(TITLE)
    if not title:
        problem(f"{TITLE} is blank on the first row of product {handle!r}")
    if len(handle) > MAX_KEY_LENGTH:
        problem(f"{HANDLE} is longer than {MAX_KEY_LENGTH} characters")
    names = [row.get(column) for column in OPTION_NAMES]
    values = [row.get(column) for column in OPTION_VALUES]
    if names[0] == TITLE and values[0] == DEFAULT_TITLE and not any(names[1:]):
        names = []
    while names and not names[-1]:
        names.pop()
    for index, name in enumerate(names):
        if not name:
            problem(f"{OPTION_NAMES[index]} is blank but {OPTION_NAMES[len(names) - 1]} is not")
    folded = [n.casefold() for n in names if n]
    if len(set(folded)) != len(folded):
        problem(f"option names repeat: {', '.join(names)}")
    return _Product(
        path=row.path,
        line=row.line,
        handle=handle,
        title=title,
        vendor=row.get(VENDOR) or None,
        product_type=row.get(TYPE) or None,
        option_names=tuple(names),
    )


def _add_variant(
    product: _Product, row: _Row, currency: str, problems: list[ImportProblem]
) -> None:
    """Check one variant row of `product` and record it."""

    def problem(message: str) -> None:
        problems.append(ImportProblem(row.path, row.line, message))

    values = [row.get(column) for column in OPTION_VALUES]
    count = len(product.option_names)
    before = len(problems)
    if count == 0:
        if values[0] == DEFAULT_TITLE:
            values[0] = ""
        for index, value in enumerate(values):
            if value:
                problem(
                    f"{OPTION_VALUES[index]} {value!r} given but product {product.handle!r} "
                    "has no options (its first row names none)"
                )
    else:
        for index in range(count):
            if not values[index]:
                problem(f"{OPTION_VALUES[index]} ({product.option_names[index]}) is blank")
        for index in range(count, len(values)):
            if values[index]:
                problem(
                    f"{OPTION_VALUES[index]} {values[index]!r} given but product "
                    f"{product.handle!r} has no {OPTION_NAMES[index]} on its first row"
                )
    options_valid = len(problems) == before
    options = tuple(values[:count])

    price_amount, price_problem = _parse_price(row.get(PRICE), currency)
    if price_problem:
        problem(price_problem)
    quantity, quantity_problem = _parse_quantity(row.get(QUANTITY))
    if quantity_problem:
        problem(quantity_problem)
    explicit_sku = row.get(SKU) or None
    if explicit_sku is not None and len(explicit_sku) > MAX_KEY_LENGTH:
        problem(f"{SKU} is longer than {MAX_KEY_LENGTH} characters")

    variant = _Variant(
        row.path, row.line, options, options_valid, explicit_sku, price_amount, quantity
    )
    if options_valid:
        key = tuple(v.casefold() for v in options)
        first = product.seen.get(key)
        if first is not None:
            shown = " / ".join(options) if options else DEFAULT_TITLE
            problem(
                f"duplicate variant {shown!r} of product {product.handle!r} "
                f"(also on {first.path}:{first.line})"
            )
            return
        product.seen[key] = variant
    product.variants.append(variant)


def _parse(
    paths: Sequence[Path], currency: str, problems: list[ImportProblem]
) -> dict[str, _Product]:
    """Products by handle, in first-seen order; problems appended to `problems`."""
    products: dict[str, _Product] = {}
    for path in paths:
        for row in _read_rows(path, problems):
            handle = row.get(HANDLE)
            if not handle:
                problems.append(ImportProblem(row.path, row.line, f"{HANDLE} is blank"))
                continue
            product = products.get(handle)
            if product is None:
                product = products[handle] = _start_product(row, handle, problems)
            has_variant = (
                any(row.get(column) for column in OPTION_VALUES) or row.get(SKU) or row.get(PRICE)
            )
            if has_variant:
                _add_variant(product, row, currency, problems)
    for product in products.values():
        if not product.variants:
            problems.append(
                ImportProblem(
                    product.path,
                    product.line,
                    f"product {product.handle!r} has no variant row (no option value, SKU "
                    "or price)",
                )
            )
    return products


def _assign_skus(products: dict[str, _Product], problems: list[ImportProblem]) -> None:
    """Set every variant's SKU; report duplicates and derived-SKU collisions."""
    explicit: dict[str, _Variant] = {}
    for product in products.values():
        for variant in product.variants:
            if variant.explicit_sku is None:
                continue
            variant.sku = variant.explicit_sku
            first = explicit.get(variant.sku)
            if first is not None:
                problems.append(
                    ImportProblem(
                        variant.path,
                        variant.line,
                        f"duplicate SKU {variant.sku!r} (also on {first.path}:{first.line})",
                    )
                )
            else:
                explicit[variant.sku] = variant
    derived: dict[str, _Variant] = {}
    for product in products.values():
        for variant in product.variants:
            if variant.explicit_sku is not None or not variant.options_valid:
                continue
            variant.sku = derive_sku(product.handle, variant.values)
            clash = explicit.get(variant.sku) or derived.get(variant.sku)
            if clash is not None:
                kind = "the explicit SKU" if clash.explicit_sku else "the SKU derived"
                problems.append(
                    ImportProblem(
                        variant.path,
                        variant.line,
                        f"{SKU} is blank and the derived SKU {variant.sku!r} equals {kind} "
                        f"on {clash.path}:{clash.line}; give this row a {SKU}",
                    )
                )
            else:
                derived[variant.sku] = variant


async def _check_derived_skus_owner(
    session: AsyncSession, products: dict[str, _Product], problems: list[ImportProblem]
) -> None:
    """Refuse a derived SKU that already belongs to another product in the database."""
    wanted = {
        variant.sku: (product.handle, variant)
        for product in products.values()
        for variant in product.variants
        if variant.explicit_sku is None and variant.sku
    }
    if not wanted:
        return
    skus = bindparam("skus", list(wanted), type_=ARRAY(String()))
    rows = await session.execute(
        select(Variant.sku, Product.handle)
        .join(Product, Product.id == Variant.product_id)
        .where(Variant.sku == any_(skus))
    )
    for sku, owner in rows:
        handle, variant = wanted[sku]
        if owner != handle:
            problems.append(
                ImportProblem(
                    variant.path,
                    variant.line,
                    f"{SKU} is blank and the derived SKU {sku!r} already belongs to product "
                    f"{owner!r} in the database; give this row a {SKU}",
                )
            )


def _specs(
    products: dict[str, _Product], currency: str, location_name: str
) -> tuple[list[ProductSpec], list[StockSpec]]:
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
) -> ImportReport:
    """Import Shopify product CSV exports into the catalog and stock of one location.

    `paths` are read in order (format and SKU rule: module docstring). Prices
    are stored in minor units of `currency` (ISO 4217, e.g. "USD": "19.99" ->
    1999). Stock goes to `location_name`, created if missing, or to the
    default location ("Main warehouse", created as the default when the
    database has no default location). A stock level that never had a movement
    receives its quantity as a RECEIPT; an existing one is COUNTed to the file's
    figure (no movement when it already matches).

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
        location_name = location_name.strip()
        if not location_name:
            raise ValueError("location_name is blank")
        if len(location_name) > MAX_KEY_LENGTH:
            raise ValueError(f"location_name is longer than {MAX_KEY_LENGTH} characters")

    problems: list[ImportProblem] = []
    # Reading and checking the files is blocking work: keep it off the event loop.
    products = await asyncio.to_thread(_parse, [Path(p) for p in paths], currency, problems)
    _assign_skus(products, problems)
    await _check_derived_skus_owner(session, products, problems)
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
    )
