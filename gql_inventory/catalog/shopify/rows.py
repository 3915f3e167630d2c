"""Checking the rows of Shopify exports and grouping them into products by `Handle`
(the rules: `gql_inventory.catalog.shopify`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from gql_inventory.catalog.shopify.csvfile import (
    DEFAULT_TITLE,
    HANDLE,
    MAX_AMOUNT,
    MAX_KEY_LENGTH,
    MAX_QUANTITY,
    OPTION_NAMES,
    OPTION_VALUES,
    PRICE,
    QUANTITY,
    SKU,
    TITLE,
    TYPE,
    VENDOR,
    ImportProblem,
    Row,
    read_rows,
)
from gql_inventory.kit.money import to_minor_units

_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)


@dataclass(slots=True)
class ParsedVariant:
    """A checked variant row: its option values, and price (minor units) and quantity
    (None when invalid: a problem was reported). `sku` is set by `assign_skus`."""

    path: str
    line: int
    values: tuple[str, ...]
    options_valid: bool
    explicit_sku: str | None
    price_amount: int | None
    quantity: int | None
    sku: str = ""


@dataclass(slots=True)
class ParsedProduct:
    """A product from the first row of its handle, with its variant rows in file order
    (`seen`: variants by casefolded option values, to report duplicates)."""

    path: str
    line: int
    handle: str
    title: str
    vendor: str | None
    product_type: str | None
    option_names: tuple[str, ...]
    variants: list[ParsedVariant] = field(default_factory=list)
    seen: dict[tuple[str, ...], ParsedVariant] = field(default_factory=dict)


def parse_price(text: str, currency: str) -> tuple[int | None, str | None]:
    """`Variant Price` in minor units of `currency` ("19.99" -> 1999), or the problem."""
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


def parse_quantity(text: str) -> tuple[int | None, str | None]:
    """`Variant Inventory Qty` (blank: 0), or the problem."""
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


def start_product(row: Row, handle: str, problems: list[ImportProblem]) -> ParsedProduct:
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
    return ParsedProduct(
        path=row.path,
        line=row.line,
        handle=handle,
        title=title,
        vendor=row.get(VENDOR) or None,
        product_type=row.get(TYPE) or None,
        option_names=tuple(names),
    )


def add_variant(
    product: ParsedProduct, row: Row, currency: str, problems: list[ImportProblem]
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

    price_amount, price_problem = parse_price(row.get(PRICE), currency)
    if price_problem:
        problem(price_problem)
    quantity, quantity_problem = parse_quantity(row.get(QUANTITY))
    if quantity_problem:
        problem(quantity_problem)
    explicit_sku = row.get(SKU) or None
    if explicit_sku is not None and len(explicit_sku) > MAX_KEY_LENGTH:
        problem(f"{SKU} is longer than {MAX_KEY_LENGTH} characters")

    variant = ParsedVariant(
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


#: Limits on one Shopify product CSV: a shop of 50,000 variants exports about 25 MB, so
#: these leave room while refusing a file meant to exhaust memory before parsing it.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_FILE_ROWS = 250_000


def group_products(
    paths: Sequence[Path], currency: str, problems: list[ImportProblem]
) -> dict[str, ParsedProduct]:
    """Products by handle, in first-seen order; problems appended to `problems`."""
    products: dict[str, ParsedProduct] = {}
    for path in paths:
        for row in read_rows(path, problems, max_bytes=MAX_FILE_BYTES, max_rows=MAX_FILE_ROWS):
            handle = row.get(HANDLE)
            if not handle:
                problems.append(ImportProblem(row.path, row.line, f"{HANDLE} is blank"))
                continue
            product = products.get(handle)
            if product is None:
                product = products[handle] = start_product(row, handle, problems)
            has_variant = (
                any(row.get(column) for column in OPTION_VALUES) or row.get(SKU) or row.get(PRICE)
            )
            if has_variant:
                add_variant(product, row, currency, problems)
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
