"""Stock CSV export after an import and the demo seeding."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.catalog import export_stock_csv, import_shopify_files, seed_demo_catalog
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit.csvcells import guard_cell, read_cell
from gql_inventory.models import MovementKind
from gql_inventory.stock.ledger import apply_movement
from tests.test_catalog_import import MULTI_OPTION_CSV, row, write_csv

Sessions = async_sessionmaker[AsyncSession]


async def test_export_matches_database(sessions: Sessions) -> None:
    async with sessions.begin() as s:
        await import_shopify_files(UnitOfWork(s, actor="system"), [MULTI_OPTION_CSV])
        await seed_demo_catalog(UnitOfWork(s, actor="system"))
    async with sessions.begin() as s:
        level_id = (
            await s.execute(
                text(
                    "SELECT l.id FROM stock_levels l JOIN variants v ON v.id = l.variant_id "
                    "WHERE v.sku = 'CT-BLK-S'"
                )
            )
        ).scalar_one()
        await apply_movement(
            UnitOfWork(s, actor="system"),
            level_id=level_id,
            kind=MovementKind.RESERVATION,
            reserved_delta=3,
        )

    out = io.StringIO()
    async with sessions.begin() as s:
        written = await export_stock_csv(s, out)
        db_rows = [
            (sku, name, str(on_hand), str(reserved), str(on_hand - reserved))
            for sku, name, on_hand, reserved in await s.execute(
                text(
                    "SELECT v.sku, o.name, l.on_hand, l.reserved FROM stock_levels l "
                    "JOIN variants v ON v.id = l.variant_id "
                    "JOIN locations o ON o.id = l.location_id ORDER BY v.sku, o.name"
                )
            )
        ]

    content = out.getvalue()
    assert "\r" not in content
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0] == ["sku", "location", "on_hand", "reserved", "available"]
    data = [tuple(r) for r in rows[1:]]
    assert written == len(data) == 8 + 44 * 3
    assert data == db_rows
    assert ("CT-BLK-S", "Main warehouse", "10", "3", "7") in data
    # Grouped by SKU, locations in name order within each SKU.
    skus = [r[0] for r in data]
    for sku in set(skus):
        names = [r[1] for r in data if r[0] == sku]
        assert names == sorted(names)
        first = skus.index(sku)
        assert skus[first : first + len(names)] == [sku] * len(names)


async def test_export_of_empty_database(sessions: Sessions) -> None:
    out = io.StringIO()
    async with sessions.begin() as s:
        assert await export_stock_csv(s, out) == 0
    assert out.getvalue() == "sku,location,on_hand,reserved,available\n"


# ------------------------------------------------ formula injection (issue 15 item 11)

#: SKU cell as written in the imported file -> SKU stored -> SKU cell in the export.
HOSTILE_SKUS = [
    ('=HYPERLINK("http://evil.example","x")', '=HYPERLINK("http://evil.example","x")'),
    ("+1+1", "+1+1"),
    ("-2+3", "-2+3"),
    ("@SUM(1+1)", "@SUM(1+1)"),
    ("\t=1+1", "\t=1+1"),  # a tab-guarded cell imports as the text it holds
    ("'=2+2", "'=2+2"),  # so does a quote-guarded one
]
HOSTILE_LOCATION = "=cmd|' /C calc'!A0"


async def test_hostile_skus_and_locations_are_stored_as_is_and_exported_guarded(
    sessions: Sessions, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "hostile.csv",
        [row(f"h{n}", f"Hostile {n}", sku=cell) for n, (cell, _) in enumerate(HOSTILE_SKUS)],
    )
    async with sessions.begin() as s:
        await import_shopify_files(
            UnitOfWork(s, actor="system"), [path], location_name=HOSTILE_LOCATION
        )
    async with sessions.begin() as s:
        stored = set((await s.execute(text("SELECT sku FROM variants"))).scalars())
        locations = list((await s.execute(text("SELECT name FROM locations"))).scalars())
    assert stored == {sku for _, sku in HOSTILE_SKUS}
    assert locations == [HOSTILE_LOCATION]

    out = io.StringIO()
    async with sessions.begin() as s:
        await export_stock_csv(s, out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))[1:]

    assert {r[0] for r in rows} == {guarded(sku) for _, sku in HOSTILE_SKUS}
    assert {r[1] for r in rows} == {"'" + HOSTILE_LOCATION}
    for sku_cell, location_cell, *_ in rows:
        for cell in (sku_cell, location_cell):
            assert cell[0] not in "=+-@\t\r", cell  # nothing a spreadsheet would run


def guarded(sku: str) -> str:
    """OWASP's CSV injection rule: a quote before a cell that starts like a formula."""
    return "'" + sku if sku[0] in "=+-@\t\r" else sku


def test_the_guard_and_the_reader() -> None:
    assert [guard_cell(v) for v in ("=1", "+A1", "-1+1", "@A", "\tx", "\rx", "a=1", "", "'=1")] == [
        "'=1",
        "'+A1",
        "'-1+1",
        "'@A",
        "'\tx",
        "'\rx",
        "a=1",
        "",
        "'=1",
    ]
    assert [guard_cell(v) for v in ("-5", "-10.00", "+3")] == ["-5", "-10.00", "+3"]  # numbers
    # surrounding blanks go, but never the blank that guards a formula
    assert [read_cell(v) for v in (" SKU-1 ", "\t=1+1", " =1 ", "'=1", "=1 ")] == [
        "SKU-1",
        "\t=1+1",
        " =1",
        "'=1",
        "=1",
    ]


def test_the_report_csv_uses_the_same_guard() -> None:
    from gql_inventory.cli import report

    assert report.guard_cell is guard_cell
