"""`gql-inventory import-shipment FILE` (docs/cli.md): a good file makes one OPEN
shipment; a hostile one is refused whole, every problem listed with its line, and
nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.catalog import Catalog
from tests.support.cli import run_cli
from tests.support.graphql import snapshot
from tests.support.scenarios import fetch_all

Sessions = async_sessionmaker[AsyncSession]


async def _nothing_written(sessions: Sessions) -> list[object]:
    return await fetch_all(sessions, "SELECT id FROM inbound_shipments")


async def test_a_shopify_like_file_makes_one_open_shipment(
    tmp_path: Path, sessions: Sessions, catalog: Catalog, cli_env: None
) -> None:
    path = tmp_path / "po.csv"
    path.write_text("Handle,Variant SKU,Incoming\nmug,MUG,12\n,,\nshirt,SHIRT-S,+3\n")
    before = await snapshot(sessions)
    result = await run_cli(
        "import-shipment",
        str(path),
        "--location",
        "Store",
        "--reference",
        "PO-9",
        "--expected-at",
        "2027-02-01T08:00:00+01:00",
    )
    assert result.exit_code == 0, result.output
    assert "2 lines, 15 units" in result.output
    rows = await fetch_all(
        sessions,
        """SELECT s.status, s.reference, s.location_id, s.expected_at, s.actor, v.sku,
                  l.quantity_expected, l.quantity_received
             FROM inbound_shipments s JOIN inbound_shipment_lines l ON l.shipment_id = s.id
             JOIN variants v ON v.id = l.variant_id ORDER BY l.position""",
    )
    store = catalog.locations["Store"]
    assert [(r[0], r[1], r[2], r[4], r[5], r[6], r[7]) for r in rows] == [
        ("OPEN", "PO-9", store, "import", "MUG", 12, 0),
        ("OPEN", "PO-9", store, "import", "SHIRT-S", 3, 0),
    ]
    assert rows[0][3].isoformat() == "2027-02-01T07:00:00+00:00"
    assert await snapshot(sessions) == before  # no stock moved


HOSTILE = [
    (
        "SKU,Quantity\nMUG,5\nNOPE,1\nMUG,2\nCAP,0\nSHIRT-S,-4\nSHIRT-M,2.5\nSHIRT-L,x\n,3\n",
        [
            ":3: unknown SKU 'NOPE'",
            ":4: SKU 'MUG' is already on line 2",
            ":5: quantity '0' is not a whole number",
            ":6: quantity '-4' is not a whole number",
            ":7: quantity '2.5' is not a whole number",
            ":8: quantity 'x' is not a whole number",
            ":9: the SKU is blank",
        ],
    ),
    (
        'SKU,Quantity\n"=HYPERLINK(""http://evil"")",1\nMUG,=1+1\n"\t@SUM(A1)",2\n',
        [
            ":2: '=HYPERLINK(\"http://evil\")' looks like a spreadsheet formula",
            ":3: '=1+1' looks like a spreadsheet formula",
            ":4: '\\t@SUM(A1)' looks like a spreadsheet formula",
        ],
    ),
    ("Variant SKU,Units\nMUG,3\n", [":1: missing required column(s): Quantity or Incoming"]),
    ("Title,Quantity\nMug,3\n", [":1: missing required column(s): SKU or Variant SKU"]),
    ("SKU,Quantity\n", [":1: no data row"]),
    ("", [":1: the file is empty"]),
    ('SKU,Quantity\n"MUG,3\n', [":2: malformed CSV"]),
    ("SKU,Quantity\n" + "".join(f"X{i},1\n" for i in range(1001)), [":1002: more than 1000 rows"]),
    ("SKU,Quantity,Note\nMUG,1," + "x" * (1 << 20) + "\n", [":0: the file has"]),
]


@pytest.mark.parametrize(
    ("content", "problems"),
    HOSTILE,
    ids=[
        "bad-rows",
        "formulas",
        "no-quantity",
        "no-sku",
        "no-rows",
        "empty",
        "malformed",
        "too-many-rows",
        "too-big",
    ],
)
async def test_a_hostile_file_is_refused_whole(
    tmp_path: Path,
    sessions: Sessions,
    catalog: Catalog,
    cli_env: None,
    content: str,
    problems: list[str],
) -> None:
    path = tmp_path / "hostile.csv"
    path.write_text(content)
    before = await snapshot(sessions)
    result = await run_cli("import-shipment", str(path))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[-1].endswith("nothing imported"), result.output
    for expected in problems:
        assert any(f"{path}{expected}" in line for line in lines), (expected, result.output)
    assert len(lines) == len(problems) + 1, result.output  # every problem, nothing else
    assert await _nothing_written(sessions) == []
    assert await snapshot(sessions) == before


async def test_an_unknown_location_or_a_bad_date_is_refused(
    tmp_path: Path, sessions: Sessions, catalog: Catalog, cli_env: None
) -> None:
    path = tmp_path / "po.csv"
    path.write_text("SKU,Quantity\nMUG,1\n")
    nowhere = await run_cli("import-shipment", str(path), "--location", "Nowhere")
    assert nowhere.exit_code == 1
    assert "unknown location 'Nowhere'" in nowhere.output
    naive = await run_cli("import-shipment", str(path), "--expected-at", "2027-02-01T08:00:00")
    assert naive.exit_code == 2
    assert "offset" in naive.output
    assert await _nothing_written(sessions) == []
