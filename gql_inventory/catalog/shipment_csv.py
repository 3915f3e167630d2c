"""Import one inbound shipment from a CSV file (`gql-inventory import-shipment`,
docs/cli.md "Importing an inbound shipment").

Columns (header names match case-insensitively, other columns are ignored): the SKU in
``SKU`` or Shopify's ``Variant SKU``, the units in ``Quantity`` or ``Incoming`` (the first
of each pair the header names is used). All or nothing, as the Shopify import: the file
is read with the same reader (`catalog.shopify.csvfile.read_rows`) and every problem of
every row is listed with its line before anything is written: a missing column, a blank
or unknown SKU, a SKU on two rows, a quantity that is not a whole number from 1 to
1,000,000, a cell that a spreadsheet would run as a formula (`kit.csvcells`), more than
1,000 rows, a file over 1 MiB, an unknown location.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from gql_inventory.catalog.shopify.csvfile import (
    CatalogImportError,
    ImportProblem,
    Row,
    read_rows,
)
from gql_inventory.domain.errors import DomainError, DomainErrors
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit.csvcells import guard_cell
from gql_inventory.models import Location
from gql_inventory.stock.adjust import MAX_ADJUSTMENT
from gql_inventory.stock.levels import LineRequest, variant_ids_by_sku
from gql_inventory.stock.shipments import MAX_SHIPMENT_LINES, create_shipment

SKU_COLUMNS = ("SKU", "Variant SKU")
QUANTITY_COLUMNS = ("Quantity", "Incoming")
#: The largest file accepted, in bytes.
MAX_FILE_BYTES = 1 << 20
_WHOLE_NUMBER = re.compile(r"\+?\d+")


@dataclass(frozen=True, slots=True)
class ShipmentImport:
    """The shipment created (OPEN), its number of lines and units expected."""

    shipment_id: uuid.UUID
    lines: int
    units: int


def _column(row: Row, names: tuple[str, ...]) -> str:
    """The cell of the first of `names` the header has."""
    return next((row.get(n) for n in names if n.casefold() in row.columns), "")


def _lines(rows: list[Row], problems: list[ImportProblem]) -> tuple[list[LineRequest], list[Row]]:
    """The rows as lines (one per SKU), problems appended; rows kept for line numbers."""
    lines: list[LineRequest] = []
    kept: list[Row] = []
    seen: dict[str, int] = {}
    for row in rows:
        sku, quantity = _column(row, SKU_COLUMNS), _column(row, QUANTITY_COLUMNS)
        found: list[str] = []
        for value in (sku, quantity):
            if guard_cell(value) != value:
                found.append(f"{value!r} looks like a spreadsheet formula")
        if not sku:
            found.append("the SKU is blank")
        elif sku in seen:
            found.append(f"SKU {sku!r} is already on line {seen[sku]}")
        formula = guard_cell(quantity) != quantity
        if not formula and not (
            _WHOLE_NUMBER.fullmatch(quantity) and 1 <= int(quantity) <= MAX_ADJUSTMENT
        ):
            found.append(f"quantity {quantity!r} is not a whole number from 1 to {MAX_ADJUSTMENT}")
        seen.setdefault(sku, row.line)
        problems.extend(ImportProblem(row.path, row.line, m) for m in found)
        if not found:
            lines.append(LineRequest(sku, int(quantity)))
            kept.append(row)
    return lines, kept


async def import_shipment_file(
    uow: UnitOfWork,
    path: Path,
    *,
    location_name: str | None = None,
    reference: str | None = None,
    expected_at: datetime | None = None,
) -> ShipmentImport:
    """Create one OPEN inbound shipment from the CSV file at `path` (format: module
    docstring) to the location named `location_name` (None: the default location),
    through `stock.shipments.create_shipment`. Nothing else is written: no stock moves
    until it is received. Raises `CatalogImportError` listing every problem (nothing
    written), `DomainError` for a refusal of `create_shipment` itself (a reference over
    255 characters). Does not commit.
    """
    session = uow.session
    problems: list[ImportProblem] = []
    rows = await asyncio.to_thread(
        read_rows,
        path,
        problems,
        required=(SKU_COLUMNS, QUANTITY_COLUMNS),
        max_bytes=MAX_FILE_BYTES,
        max_rows=MAX_SHIPMENT_LINES,
    )
    if not rows and not problems:
        problems.append(ImportProblem(str(path), 1, "no data row: nothing to expect"))
    lines, kept = _lines(rows, problems)
    positions = {line.sku: i for i, line in enumerate(lines)}
    try:
        await variant_ids_by_sku(session, list(positions), positions=positions)
    except DomainError as error:
        unknown = error.errors if isinstance(error, DomainErrors) else [error]
        for e in unknown:
            row = kept[int(e.field.parts[1])] if e.field is not None else None
            problems.append(ImportProblem(str(path), row.line if row else 0, e.message))
    location_id = None
    if location_name is not None:
        found = (
            await session.execute(select(Location.id).where(Location.name == location_name))
        ).scalar()
        if found is None:
            problems.append(ImportProblem(str(path), 0, f"unknown location {location_name!r}"))
        location_id = None if found is None else str(found)
    if problems:
        raise CatalogImportError(sorted(problems, key=lambda p: p.line))
    shipment_id = await create_shipment(
        uow, location_id=location_id, lines=lines, reference=reference, expected_at=expected_at
    )
    return ShipmentImport(shipment_id, len(lines), sum(line.quantity for line in lines))
