"""Shopify product CSV import: the shared sample exports, a multi-option fixture, broken files."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gql_inventory.catalog import (
    CatalogImportError,
    ImportReport,
    derive_sku,
    import_shopify_files,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import MovementKind
from tests.conftest import SHARED_CSV_DIR, GraphQLCaller
from tests.support import graphql
from tests.support.invariants import assert_invariants
from tests.support.payments import pending_order, send

FIXTURES = Path(__file__).resolve().parent / "data" / "catalog"
MULTI_OPTION_CSV = FIXTURES / "multi-option.csv"

Sessions = async_sessionmaker[AsyncSession]


def shared_files() -> list[Path]:
    if not SHARED_CSV_DIR.is_dir():
        pytest.skip(f"shared Shopify CSVs not found at {SHARED_CSV_DIR}")
    files = sorted(SHARED_CSV_DIR.glob("*.csv"))
    assert files, f"no CSV in {SHARED_CSV_DIR}"
    return files


def copy_files(paths: list[Path], folder: Path) -> list[Path]:
    return [Path(shutil.copy(p, folder / p.name)) for p in paths]


def edit_file(path: Path, old: str, new: str, *, source: Path | None = None) -> None:
    """Write `source` (default: `path` itself) to `path` with the one `old` replaced by `new`."""
    content = (source or path).read_text(encoding="utf-8-sig")
    assert content.count(old) == 1, old
    path.write_text(content.replace(old, new), encoding="utf-8")


def expected_from_csv(paths: list[Path]) -> tuple[int, int, int, int]:
    """(products, variants, units, levels with units) counted the simple way, independently."""
    handles: set[str] = set()
    variants = units = stocked = 0
    for path in paths:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                handles.add(row["Handle"])
                if row["Option1 Value"] or row["Variant SKU"] or row["Variant Price"]:
                    variants += 1
                    qty = int(row["Variant Inventory Qty"] or 0)
                    units += qty
                    stocked += qty > 0
    return len(handles), variants, units, stocked


async def scalar(session: AsyncSession, sql: str, **params: Any) -> Any:
    return (await session.execute(text(sql), params)).scalar_one()


async def table_counts(sessions: Sessions) -> dict[str, int]:
    async with sessions.begin() as s:
        return {
            table: await scalar(s, f"SELECT count(*) FROM {table}")
            for table in ("products", "variants", "locations", "stock_levels", "stock_movements")
        }


async def movement_counts(sessions: Sessions) -> dict[str, int]:
    async with sessions.begin() as s:
        rows = await s.execute(text("SELECT kind, count(*) FROM stock_movements GROUP BY kind"))
        return {str(kind): int(n) for kind, n in rows}


async def stock_by_sku(sessions: Sessions) -> dict[str, int]:
    async with sessions.begin() as s:
        rows = await s.execute(
            text(
                "SELECT v.sku, sum(l.on_hand) FROM stock_levels l "
                "JOIN variants v ON v.id = l.variant_id GROUP BY v.sku"
            )
        )
        return {str(sku): int(n) for sku, n in rows}


async def assert_ledger_consistent(sessions: Sessions) -> None:
    """Every level's on_hand / reserved equals the sum of its movements' deltas."""
    async with sessions.begin() as s:
        rows = await s.execute(
            text(
                """
                SELECT l.id, l.on_hand, l.reserved,
                       coalesce(sum(m.on_hand_delta), 0), coalesce(sum(m.reserved_delta), 0)
                  FROM stock_levels l LEFT JOIN stock_movements m ON m.stock_level_id = l.id
                 GROUP BY l.id
                """
            )
        )
        for level_id, on_hand, reserved, on_hand_sum, reserved_sum in rows:
            assert (on_hand, reserved) == (on_hand_sum, reserved_sum), f"level {level_id}"


async def run_import(sessions: Sessions, paths: list[Path], **kwargs: Any) -> ImportReport:
    async with sessions.begin() as s:
        return await import_shopify_files(UnitOfWork(s, actor="system"), paths, **kwargs)


# --- the shared sample exports ---------------------------------------------------------------


async def test_shared_files_import_counts(sessions: Sessions) -> None:
    paths = shared_files()
    products, variants, units, stocked = expected_from_csv(paths)
    # The same figures, read off the two files by hand (apparel: 20 products, 22 variants,
    # 22 units; home-and-garden: 20 products, 21 variants, 65 units, 2 variants at zero).
    if [p.name for p in paths] == ["apparel.csv", "home-and-garden.csv"]:
        assert (products, variants, units, stocked) == (40, 43, 87, 41)

    report = await run_import(sessions, paths)

    assert report.products_created == products
    assert report.variants_created == variants
    assert report.units_received == units
    assert (report.products_updated, report.variants_updated, report.levels_counted) == (0, 0, 0)
    assert report.location == "Main warehouse"
    assert report.refused_counts == ()
    counts = await table_counts(sessions)
    assert counts == {
        "products": products,
        "variants": variants,
        "locations": 1,
        "stock_levels": variants,
        "stock_movements": stocked,
    }
    assert await movement_counts(sessions) == {"RECEIPT": stocked}
    async with sessions.begin() as s:
        assert await scalar(s, "SELECT sum(on_hand) FROM stock_levels") == units
        assert await scalar(s, "SELECT bool_and(is_default) FROM locations")
        assert await scalar(s, "SELECT count(*) FROM variants WHERE currency_code = 'USD'") == (
            variants
        )
    await assert_ledger_consistent(sessions)


async def test_shared_files_values(sessions: Sessions) -> None:
    paths = shared_files()
    await run_import(sessions, paths)
    async with sessions.begin() as s:
        rows = await s.execute(
            text(
                "SELECT p.handle, p.title, p.vendor, p.product_type, v.sku, v.title, v.options, "
                "v.position, v.price_amount FROM variants v JOIN products p ON p.id = v.product_id"
            )
        )
        by_sku = {row[4]: row for row in rows}
    # Default Title: one variant, no options, SKU derived from the handle alone.
    shirt = by_sku["OCEAN-BLUE-SHIRT"]
    assert shirt == (
        "ocean-blue-shirt",
        "Ocean Blue Shirt",
        "partners-demo",
        None,
        "OCEAN-BLUE-SHIRT",
        "Default Title",
        [],
        1,
        5000,
    )
    # One option, blank option names on continuation rows.
    for position, size in enumerate(("Small", "Medium", "Large"), start=1):
        sku = f"CLASSIC-VARSITY-TOP-{size.upper()}"
        row = by_sku[sku]
        assert row[5:] == (size, [{"name": "Size", "value": size}], position, 6000)
    # Decimal prices to cents, and a continuation row with its own price.
    assert by_sku["CLAY-PLANT-POT-REGULAR"][8] == 999
    assert by_sku["CLAY-PLANT-POT-LARGE"][8] == 1599
    assert by_sku["COPPER-LIGHT"][8] == 5999


async def test_shared_files_reimport_changes_nothing(sessions: Sessions) -> None:
    paths = shared_files()
    await run_import(sessions, paths)
    skus_before = set(await stock_by_sku(sessions))
    stock_before = await stock_by_sku(sessions)
    movements_before = await movement_counts(sessions)
    counts_before = await table_counts(sessions)

    report = await run_import(sessions, paths)

    # Every level that has stock is kept (the zero-quantity ones have no movement).
    assert report == ImportReport(
        0, 0, 0, 0, 0, 0, "Main warehouse", levels_kept=sum(movements_before.values())
    )
    assert await table_counts(sessions) == counts_before
    assert await movement_counts(sessions) == movements_before
    assert await stock_by_sku(sessions) == stock_before
    # Derived SKUs are stable: the same file gives the same SKUs.
    assert set(await stock_by_sku(sessions)) == skus_before
    assert all(sku == sku.upper() for sku in skus_before)
    await assert_ledger_consistent(sessions)


async def test_reimport_with_changed_quantity_counts_once_when_asked(
    sessions: Sessions, tmp_path: Path
) -> None:
    paths = copy_files(shared_files(), tmp_path)
    await run_import(sessions, paths)
    target = tmp_path / "home-and-garden.csv"
    if target not in paths:
        pytest.skip("home-and-garden.csv is not among the shared files")
    # cream-sofa: 4 units -> 9
    edit_file(target, ",,4,deny,manual,500,750,", ",,9,deny,manual,500,750,")
    stock_before = await stock_by_sku(sessions)

    kept = await run_import(sessions, paths)  # not a count: existing stock stays
    assert (kept.levels_counted, kept.units_received) == (0, 0)
    assert await stock_by_sku(sessions) == stock_before

    report = await run_import(sessions, paths, count_existing=True)

    assert report.levels_counted == 1
    assert (report.units_received, report.products_created, report.variants_created) == (0, 0, 0)
    async with sessions.begin() as s:
        rows = (
            await s.execute(
                text(
                    "SELECT v.sku, m.on_hand_delta, m.on_hand_after FROM stock_movements m "
                    "JOIN variants v ON v.id = m.variant_id WHERE m.kind = 'COUNT'"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [("CREAM-SOFA", 5, 9)]
    assert (await stock_by_sku(sessions))["CREAM-SOFA"] == 9
    await assert_ledger_consistent(sessions)


async def test_reimport_updates_price_and_title(sessions: Sessions, tmp_path: Path) -> None:
    source = next(p for p in shared_files() if p.name == "apparel.csv")
    [path] = copy_files([source], tmp_path)
    await run_import(sessions, [path])
    edit_file(
        path,
        "ocean-blue-shirt,Ocean Blue Shirt,",
        "ocean-blue-shirt,Ocean Shirt,",
    )
    edit_file(
        path,
        ",50,,true,true,,https://burst.shopifycdn.com/photos/young-man",
        ",55.5,,true,true,,https://burst.shopifycdn.com/photos/young-man",
    )

    report = await run_import(sessions, [path])

    assert (report.products_created, report.products_updated) == (0, 1)
    assert (report.variants_created, report.variants_updated) == (0, 1)
    async with sessions.begin() as s:
        assert await scalar(s, "SELECT title FROM products WHERE handle = 'ocean-blue-shirt'") == (
            "Ocean Shirt"
        )
        price = await scalar(s, "SELECT price_amount FROM variants WHERE sku = 'OCEAN-BLUE-SHIRT'")
        assert price == 5550


# --- multi-option fixture ---------------------------------------------------------------------


async def test_multi_option_file(sessions: Sessions) -> None:
    report = await run_import(sessions, [MULTI_OPTION_CSV], location_name="Back room")

    assert report == ImportReport(4, 0, 8, 0, 132, 0, "Back room")
    async with sessions.begin() as s:
        rows = await s.execute(
            text(
                "SELECT p.handle, v.sku, v.title, v.options, v.position, v.price_amount "
                "FROM variants v JOIN products p ON p.id = v.product_id ORDER BY p.id, v.position"
            )
        )
        variants = [tuple(r) for r in rows]
        location = (await s.execute(text("SELECT name, is_default FROM locations"))).one()
        product = (
            await s.execute(
                text("SELECT title, vendor, product_type FROM products WHERE handle = 'cafe-mug'")
            )
        ).one()

    size_colour = [
        ("classic-tee", "CT-BLK-S", "Small", "Black", 1, 1999),
        ("classic-tee", "CT-BLK-M", "Medium", "Black", 2, 1999),
        ("classic-tee", "CLASSIC-TEE-SMALL-WHITE", "Small", "White", 3, 1999),
        ("classic-tee", "CLASSIC-TEE-MEDIUM-WHITE", "Medium", "White", 4, 2100),
    ]
    expected: list[tuple[Any, ...]] = [
        (
            handle,
            sku,
            f"{size} / {colour}",
            [{"name": "Size", "value": size}, {"name": "Color", "value": colour}],
            position,
            price,
        )
        for handle, sku, size, colour, position, price in size_colour
    ]
    wool = [{"name": "Color", "value": "Grey"}, {"name": "Material", "value": "Merino Wool"}]
    expected += [
        (
            "trail-sock",
            f"TRAIL-SOCK-{size}-GREY-MERINO-WOOL",
            f"{size} / Grey / Merino Wool",
            [{"name": "Size", "value": size}, *wool],
            position,
            1250,
        )
        for position, size in enumerate(("M", "L"), start=1)
    ]
    expected += [
        ("gift-card", "GIFT-25", "Default Title", [], 1, 2500),
        ("cafe-mug", "CAFE-MUG-CREME", "Crème", [{"name": "Glaze", "value": "Crème"}], 1, 900),
    ]
    assert variants == expected
    assert tuple(location) == ("Back room", True)
    assert tuple(product) == ("Café Mug", None, "Kitchen")
    stock = await stock_by_sku(sessions)
    assert stock["CLASSIC-TEE-SMALL-WHITE"] == 0  # blank quantity
    assert stock["CT-BLK-S"] == 10
    # A zero quantity makes a level but no movement.
    assert await movement_counts(sessions) == {"RECEIPT": 7}
    await assert_ledger_consistent(sessions)


async def test_derive_sku_rule() -> None:
    assert derive_sku("ocean-blue-shirt", []) == "OCEAN-BLUE-SHIRT"
    assert derive_sku("classic-tee", ["Small", "Navy  Blue"]) == "CLASSIC-TEE-SMALL-NAVY-BLUE"
    assert derive_sku("Cafe_Mug", ["Crème brûlée", "1/2 L"]) == "CAFE-MUG-CREME-BRULEE-1-2-L"
    odd = derive_sku("mug", ["★"])
    assert odd.startswith("MUG-")
    assert len(odd) == len("MUG-") + 8
    assert derive_sku("mug", ["★"]) == odd
    long_sku = derive_sku("h" * 200, ["v" * 200])
    assert len(long_sku) == 255
    assert long_sku == derive_sku("h" * 200, ["v" * 200])


async def test_import_into_existing_default_and_named_location(sessions: Sessions) -> None:
    await run_import(sessions, [MULTI_OPTION_CSV])
    report = await run_import(sessions, [MULTI_OPTION_CSV], location_name="Annex")

    # Same products and variants; the new location's levels are received once.
    assert report == ImportReport(0, 0, 0, 0, 132, 0, "Annex")
    async with sessions.begin() as s:
        rows = await s.execute(text("SELECT name, is_default FROM locations ORDER BY id"))
        assert [tuple(r) for r in rows] == [("Main warehouse", True), ("Annex", False)]
    await assert_ledger_consistent(sessions)


async def test_count_below_reserved_is_refused_not_applied(
    sessions: Sessions, tmp_path: Path
) -> None:
    from gql_inventory.stock.ledger import apply_movement

    await run_import(sessions, [MULTI_OPTION_CSV])
    async with sessions.begin() as s:
        level_id = await scalar(
            s,
            "SELECT l.id FROM stock_levels l JOIN variants v ON v.id = l.variant_id "
            "WHERE v.sku = 'CT-BLK-S'",
        )
        await apply_movement(
            UnitOfWork(s, actor="system"),
            level_id=level_id,
            kind=MovementKind.RESERVATION,
            reserved_delta=8,
        )
    path = tmp_path / "multi-option.csv"
    edit_file(
        path, ",CT-BLK-S,200,shopify,10,", ",CT-BLK-S,200,shopify,5,", source=MULTI_OPTION_CSV
    )
    report = await run_import(sessions, [path], count_existing=True)
    assert report.levels_counted == 0
    assert [(r.sku, r.location, r.counted, r.reserved) for r in report.refused_counts] == [
        ("CT-BLK-S", "Main warehouse", 5, 8)
    ]
    assert (await stock_by_sku(sessions))["CT-BLK-S"] == 10


# --- broken files -----------------------------------------------------------------------------

HEADER = [
    "Handle",
    "Title",
    "Vendor",
    "Option1 Name",
    "Option1 Value",
    "Option2 Name",
    "Option2 Value",
    "Variant SKU",
    "Variant Inventory Qty",
    "Variant Price",
    "Image Src",
]


def write_csv(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER if header is None else header)
        writer.writerows(rows)
    return path


def row(
    handle: str,
    title: str = "",
    value: str = "",
    *,
    name: str = "",
    sku: str = "",
    qty: str = "1",
    price: str = "10.00",
    value2: str = "",
    name2: str = "",
    image: str = "",
) -> list[str]:
    return [handle, title, "Vendor", name, value, name2, value2, sku, qty, price, image]


async def refused(sessions: Sessions, paths: list[Path]) -> list[tuple[str, int, str]]:
    """Import `paths`, expect a refusal, check nothing was written; (file name, line, message)."""
    with pytest.raises(CatalogImportError) as info:
        await run_import(sessions, paths)
    assert await table_counts(sessions) == dict.fromkeys(
        ("products", "variants", "locations", "stock_levels", "stock_movements"), 0
    )
    assert str(info.value).count("\n") == len(info.value.problems)
    return [(Path(p.path).name, p.line, p.message) for p in info.value.problems]


def lines(problems: list[tuple[str, int, str]]) -> list[tuple[str, int]]:
    return [(name, line) for name, line, _ in problems]


async def test_missing_required_column(sessions: Sessions, tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "Variant Price"]
    path = write_csv(
        tmp_path / "no-price.csv", [["a", "A", "Vendor", "Title", "Default Title"]], header
    )
    problems = await refused(sessions, [path])
    assert lines(problems) == [("no-price.csv", 1)]
    assert "Variant Price" in problems[0][2]


async def test_a_file_over_the_size_or_row_limit_is_refused_whole(
    sessions: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile file (too many bytes or rows) is refused before anything is written."""
    from gql_inventory.catalog.shopify import rows as shopify_rows

    path = write_csv(
        tmp_path / "big.csv",
        [row("tee", "Tee", "S", name="Size", qty="3"), row("tee", value="M", qty="2")],
    )
    monkeypatch.setattr(shopify_rows, "MAX_FILE_ROWS", 1)
    problems = await refused(sessions, [path])
    assert len(problems) == 1
    assert "rows" in problems[0][2]
    monkeypatch.setattr(shopify_rows, "MAX_FILE_ROWS", 1000)
    monkeypatch.setattr(shopify_rows, "MAX_FILE_BYTES", path.stat().st_size - 1)
    problems = await refused(sessions, [path])
    assert lines(problems) == [("big.csv", 0)]
    assert "bytes" in problems[0][2]


async def test_bad_price(sessions: Sessions, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad-price.csv",
        [
            row("tee", "Tee", "S", name="Size", price="12.99"),
            row("tee", value="M", price="twelve"),
            row("tee", value="L", price="1.999"),
            row("tee", value="XL", price="-3"),
            row("cap", "Cap", "Default Title", name="Title", price=""),
        ],
    )
    problems = await refused(sessions, [path])
    assert lines(problems) == [("bad-price.csv", n) for n in (3, 4, 5, 6)]
    messages = [m for _, _, m in problems]
    assert "not a number" in messages[0]
    assert "more decimals" in messages[1]
    assert "negative" in messages[2]
    assert "blank" in messages[3]


async def test_bad_quantity(sessions: Sessions, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad-qty.csv",
        [
            row("tee", "Tee", "S", name="Size", qty="2.5"),
            row("tee", value="M", qty="lots"),
            row("tee", value="L", qty=""),  # blank is 0: fine
        ],
    )
    problems = await refused(sessions, [path])
    assert lines(problems) == [("bad-qty.csv", 2), ("bad-qty.csv", 3)]
    assert all("not a whole number" in m for _, _, m in problems)


async def test_negative_quantity(sessions: Sessions, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "negative.csv",
        [row("tee", "Tee", "S", name="Size", qty="3"), row("tee", value="M", qty="-2")],
    )
    problems = await refused(sessions, [path])
    assert lines(problems) == [("negative.csv", 3)]
    assert "negative" in problems[0][2]


async def test_duplicate_sku_within_a_file(sessions: Sessions, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "dup.csv",
        [
            row("tee", "Tee", "S", name="Size", sku="TEE-1"),
            row("tee", value="M", sku="TEE-2"),
            row("cap", "Cap", "Default Title", name="Title", sku="TEE-1"),
        ],
    )
    problems = await refused(sessions, [path])
    assert lines(problems) == [("dup.csv", 4)]
    assert "duplicate SKU 'TEE-1'" in problems[0][2]
    assert f"{path}:2" in problems[0][2]


async def test_duplicate_sku_across_files(sessions: Sessions, tmp_path: Path) -> None:
    first = write_csv(
        tmp_path / "one.csv",
        [row("tee", "Tee", "S", name="Size", sku="SHARED"), row("tee", value="M", sku="T-M")],
    )
    second = write_csv(
        tmp_path / "two.csv",
        [row("cap", "Cap", "Default Title", name="Title"), row("hat", "Hat", sku="SHARED")],
    )
    problems = await refused(sessions, [first, second])
    assert lines(problems) == [("two.csv", 3)]
    assert f"also on {first}:2" in problems[0][2]


async def test_duplicate_variant_and_derived_sku_collision(
    sessions: Sessions, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "clash.csv",
        [
            row("tee", "Tee", "Small", name="Size"),
            row("tee", value="small", sku="X-1"),  # same options (case-insensitive)
            row("mug", "Mug", "Default Title", name="Title", sku="TEE-SMALL"),
            row("tee-small", "Tee Small", "Default Title", name="Title"),  # derives TEE-SMALL
        ],
    )
    problems = await refused(sessions, [path])
    assert lines(problems) == [("clash.csv", 2), ("clash.csv", 3), ("clash.csv", 5)]
    assert "derived SKU 'TEE-SMALL' equals the explicit SKU" in problems[0][2]
    assert "duplicate variant 'small'" in problems[1][2]
    assert "derived SKU 'TEE-SMALL' equals the explicit SKU" in problems[2][2]


async def test_derived_sku_owned_by_another_product_in_database(
    sessions: Sessions, tmp_path: Path
) -> None:
    first = write_csv(
        tmp_path / "a.csv", [row("tee-small", "Tee Small", "Default Title", name="Title")]
    )
    await run_import(sessions, [first])
    second = write_csv(tmp_path / "b.csv", [row("tee", "Tee", "Small", name="Size")])
    with pytest.raises(CatalogImportError) as info:
        await run_import(sessions, [second])
    [problem] = info.value.problems
    assert problem.line == 2
    assert "derived SKU 'TEE-SMALL' already belongs to product 'tee-small'" in problem.message
    assert (await table_counts(sessions))["products"] == 1


async def test_every_problem_reported_with_physical_lines(
    sessions: Sessions, tmp_path: Path
) -> None:
    header = [*HEADER, "Body (HTML)"]
    body = "<p>first line\nsecond line\nthird line</p>"
    rows = [
        [*row("tee", "Tee", "S", name="Size", sku="T-S"), body],  # lines 2-4
        [*row("tee", value="M", price="abc"), ""],  # 5: bad price
        [*row("tee", image="https://example.com/x.jpg", price="", qty=""), ""],  # 6: image only
        [*row("tee", value="L", qty="-1", sku="T-L"), body],  # 7-9: negative qty
        [*row("tee", value="XL", qty="x"), ""],  # 10: bad qty
        [*row("cap", "", "Default Title", name="Title"), ""],  # 11: no title
        [*row("cap", value="Red", sku="T-S"), ""],  # 12: value without option, dup SKU
        [*row("", "Orphan", "Default Title", name="Title"), ""],  # 13: blank handle
        [*row("tee", value="S", sku="T-S2"), ""],  # 14: duplicate variant
        [
            *row("sock", "Sock", "M", name="Size", value2="Red", price="5"),
            "",
        ],  # 15: no Option2 Name
    ]
    path = write_csv(tmp_path / "many.csv", rows, header)
    other = write_csv(
        tmp_path / "other.csv", [row("hat", "Hat", "Default Title", name="Title", price="-1")]
    )

    problems = await refused(sessions, [path, other])

    assert lines(problems) == [
        ("many.csv", 5),
        ("many.csv", 7),
        ("many.csv", 10),
        ("many.csv", 11),
        ("many.csv", 12),
        ("many.csv", 12),
        ("many.csv", 13),
        ("many.csv", 14),
        ("many.csv", 15),
        ("other.csv", 2),
    ]
    messages = {(line, m) for _, line, m in problems}
    assert any(line == 12 and "duplicate SKU 'T-S'" in m for line, m in messages)
    assert any(line == 12 and "has no options" in m for line, m in messages)
    assert any(line == 15 and "Option2 Name" in m for line, m in messages)
    assert any(line == 11 and "Title is blank" in m for line, m in messages)


def unusable_files(tmp_path: Path) -> list[Path]:
    """An empty file, a Latin-1 file, one with an unterminated quote, and a missing one."""
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(b"Handle,Title\r\ncaf\xe9,Caf\xe9\r\n")
    unterminated = tmp_path / "quote.csv"
    write_csv(unterminated, [row("tee", "Tee", "S", name="Size")])
    with unterminated.open("a", encoding="utf-8") as fh:
        fh.write('tee,"unterminated,\n')
    return [empty, latin, unterminated, tmp_path / "missing.csv"]


async def test_unreadable_and_empty_files(sessions: Sessions, tmp_path: Path) -> None:
    problems = await refused(sessions, unusable_files(tmp_path))

    assert lines(problems) == [
        ("empty.csv", 1),
        ("latin1.csv", 2),
        ("quote.csv", 3),
        ("missing.csv", 0),
    ]


async def test_input_checked_before_anything(sessions: Sessions) -> None:
    async with sessions.begin() as s:
        with pytest.raises(ValueError, match="no file"):
            await import_shopify_files(UnitOfWork(s, actor="system"), [])
        with pytest.raises(ValueError, match="ISO 4217"):
            await import_shopify_files(
                UnitOfWork(s, actor="system"), [MULTI_OPTION_CSV], currency="usd"
            )
        with pytest.raises(ValueError, match="blank"):
            await import_shopify_files(
                UnitOfWork(s, actor="system"), [MULTI_OPTION_CSV], location_name="  "
            )


async def test_currency_parameter(sessions: Sessions, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "yen.csv", [row("fan", "Fan", "Default Title", name="Title", price="1500")]
    )
    await run_import(sessions, [path], currency="JPY")
    async with sessions.begin() as s:
        row_ = (await s.execute(text("SELECT price_amount, currency_code FROM variants"))).one()
    assert tuple(row_) == (1500, "JPY")
    assert await stock_by_sku(sessions) == {"FAN": 1}


async def test_reimport_of_the_same_file_keeps_what_was_sold_and_adjusted(
    gql: GraphQLCaller,
    client: httpx.AsyncClient,
    sessions: Sessions,
    secret: str,
) -> None:
    """Issue 15 item 2, for the importer: re-importing the file a catalog came from (a
    second `make run CATALOG=...`) leaves stock adjusted and sold since as it is."""
    await run_import(sessions, [MULTI_OPTION_CSV])
    adjusted = await gql(
        graphql.ADJUST, {"input": {"sku": "CT-BLK-M", "delta": -2, "reason": "DAMAGED"}}, admin=True
    )
    assert adjusted["data"]["adjustStock"]["userErrors"] == []
    order_id, _ = await pending_order(gql, {"CT-BLK-S": 3})
    assert await send(client, sessions, secret, "payment_intent.succeeded", order_id) == "sold"
    before = await graphql.snapshot(sessions)
    stock_before = await stock_by_sku(sessions)

    report = await run_import(sessions, [MULTI_OPTION_CSV])

    assert await stock_by_sku(sessions) == stock_before
    assert await graphql.snapshot(sessions) == before
    assert (report.units_received, report.levels_counted) == (0, 0)
    assert report.levels_kept > 0
    await assert_invariants(sessions)
