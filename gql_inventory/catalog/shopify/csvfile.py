"""Reading one Shopify product CSV export: its columns, its data rows, and the problems
that refuse an import (`ImportProblem`, `CatalogImportError`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gql_inventory.kit.csvcells import read_cell

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
class Row:
    """One data row: where it starts (`path`, 1-based `line`), its cells and the
    file's header (casefolded column name -> index)."""

    path: str
    line: int
    cells: tuple[str, ...]
    columns: dict[str, int]

    def get(self, column: str) -> str:
        """The cell of `column` (any case) without surrounding blanks, never un-guarded
        (`kit.csvcells.read_cell`); "" when blank or absent."""
        index = self.columns.get(column.casefold())
        if index is None or index >= len(self.cells):
            return ""
        return read_cell(self.cells[index])


def read_rows(
    path: Path,
    problems: list[ImportProblem],
    *,
    required: Sequence[str | tuple[str, ...]] = REQUIRED_COLUMNS,
    max_bytes: int | None = None,
    max_rows: int | None = None,
) -> list[Row]:
    """The non-blank data rows of one file, or none (with problems) if unusable.

    `required`: columns the header must name (a tuple: one of them); `max_bytes` and
    `max_rows` (data rows) refuse a bigger file before or while reading it (None: no
    limit, the Shopify import's case). The shipment import uses all three.
    """
    name = str(path)
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            problems.append(
                ImportProblem(name, 0, f"the file has {size} bytes, more than {max_bytes}")
            )
            return []
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
    rows: list[Row] = []
    columns: dict[str, int] | None = None
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if columns is None:
                columns = {}
                for index, header in enumerate(cells):
                    columns.setdefault(header.strip().casefold(), index)
                missing = [
                    " or ".join(c) if isinstance(c, tuple) else c
                    for c in required
                    if not any(
                        a.casefold() in columns for a in (c if isinstance(c, tuple) else (c,))
                    )
                ]
                if missing:
                    problems.append(
                        ImportProblem(
                            name, line, f"missing required column(s): {', '.join(missing)}"
                        )
                    )
                    return []
                continue
            if any(cell.strip() for cell in cells):
                if max_rows is not None and len(rows) == max_rows:
                    problems.append(ImportProblem(name, line, f"more than {max_rows} rows"))
                    return []
                rows.append(Row(name, line, tuple(cells), columns))
    except csv.Error as exc:
        problems.append(ImportProblem(name, start, f"malformed CSV: {exc}"))
        return []
    if columns is None:
        problems.append(ImportProblem(name, 1, "the file is empty (no header row)"))
    return rows
