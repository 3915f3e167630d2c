"""``gql-inventory report``: the inventory report (`stock.report`) as text, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.cli._common import in_transaction
from gql_inventory.domain.errors import InvalidInput
from gql_inventory.kit.csvcells import guard_cell
from gql_inventory.kit.money import to_decimal
from gql_inventory.stock.report import (
    MAX_WINDOW,
    InventoryReport,
    LowStock,
    inventory_report,
    low_stock_now,
)

#: The window when --from/--to are not given: the last 24 hours.
DEFAULT_WINDOW = timedelta(hours=24)


class ReportFormat(StrEnum):
    """Output formats of the report command."""

    TEXT = "text"
    CSV = "csv"
    JSON = "json"


def _instant(value: str | None, option: str) -> datetime | None:
    """ISO 8601 to an aware datetime; no offset means UTC. Raises `typer.BadParameter`."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"not an ISO 8601 date-time: {value!r}", param_hint=option
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def report_fields(report: InventoryReport) -> dict[str, Any]:
    """The report as the GraphQL `InventoryReport` spells it (money as decimal strings)."""
    return {
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "reservationsCreated": report.reservations_created,
        "reservationsCheckedOut": report.reservations_checked_out,
        "reservationsExpired": report.reservations_expired,
        "reservationsReleased": report.reservations_released,
        "conversionRate": report.conversion_rate,
        "expiryRate": report.expiry_rate,
        "ordersPaid": report.orders_paid,
        "unitsSold": report.units_sold,
        "unitsReturned": report.units_returned,
        "refundRate": report.refund_rate,
        "revenue": [
            {"amount": str(to_decimal(net, code)), "currencyCode": code}
            for code, net in report.revenue.items()
        ],
        "stockouts": report.stockouts,
        "topStockouts": [
            {"sku": v.sku, "stockouts": v.stockouts, "outOfStockSeconds": v.out_of_stock_seconds}
            for v in report.top_stockouts
        ],
        "countDiscrepancyUnits": report.count_discrepancy_units,
        "ordersNeedingAttention": report.orders_needing_attention,
        "topSellers": [{"sku": v.sku, "unitsSold": v.units_sold} for v in report.top_sellers],
        "ordersCancelled": report.orders_cancelled,
        "unitsReservedNow": report.units_reserved_now,
        "unitsUnavailableByState": {
            "damaged": report.unavailable_now.damaged,
            "qualityControl": report.unavailable_now.quality_control,
            "safetyStock": report.unavailable_now.safety_stock,
        },
    }


def _rows(fields: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) pairs: revenue as ``revenue:<currency>``, top stockouts as
    ``topStockouts:<sku>:stockouts`` and ``topStockouts:<sku>:outOfStockSeconds``, top
    sellers as ``topSellers:<sku>:unitsSold``, unavailable units as
    ``unitsUnavailableByState:<state>``."""
    rows: list[tuple[str, str]] = []
    for name, value in fields.items():
        if name == "revenue":
            rows += [(f"revenue:{m['currencyCode']}", m["amount"]) for m in value]
        elif name == "topStockouts":
            for v in value:
                rows.append((f"topStockouts:{v['sku']}:stockouts", str(v["stockouts"])))
                rows.append(
                    (f"topStockouts:{v['sku']}:outOfStockSeconds", str(v["outOfStockSeconds"]))
                )
        elif name == "topSellers":
            rows += [(f"topSellers:{v['sku']}:unitsSold", str(v["unitsSold"])) for v in value]
        elif name == "unitsUnavailableByState":
            rows += [(f"{name}:{state}", str(units)) for state, units in value.items()]
        elif name == "lowStock":
            rows += [(f"lowStock:{v['sku']}", f"{v['available']}/{v['threshold']}") for v in value]
        elif isinstance(value, float):
            rows.append((name, f"{value:.4f}"))
        else:
            rows.append((name, str(value)))
    return rows


def render(
    report: InventoryReport, fmt: ReportFormat, low_stock: list[LowStock] | None = None
) -> str:
    """The report in `fmt`: an aligned two-column table, ``metric,value`` CSV, or JSON.

    `low_stock` (given with --low-stock) adds ``lowStock``: variants at or under their
    threshold now, as ``lowStock:<sku>`` rows whose value is ``available/threshold``.
    """
    fields = report_fields(report)
    if low_stock is not None:
        fields["lowStock"] = [
            {"sku": v.sku, "available": v.available, "threshold": v.threshold} for v in low_stock
        ]
    if fmt is ReportFormat.JSON:
        return json.dumps(fields, indent=2)
    if fmt is ReportFormat.CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["metric", "value"])
        writer.writerows((guard_cell(name), guard_cell(value)) for name, value in _rows(fields))
        return out.getvalue().rstrip("\n")
    rows = _rows(fields)
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def report_command(
    start: Annotated[
        str | None,
        typer.Option(
            "--from", help="Start (included), ISO 8601; no offset: UTC. Default: to - 24 h."
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="End (excluded), ISO 8601; no offset: UTC. Default: now."),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(
            "--days",
            min=1,
            max=MAX_WINDOW.days,
            help="Window length ending at --to, in days (1: daily, 7: weekly); instead of --from.",
        ),
    ] = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="text (aligned table), csv or json.")
    ] = ReportFormat.TEXT,
    low_stock: Annotated[
        bool,
        typer.Option(
            "--low-stock",
            help="Also list the variants at or under their low-stock threshold now.",
        ),
    ] = False,
) -> None:
    """Print the inventory report for [from, to): the figures of the inventoryReport query.

    Exit 2 for a bad window (unparsable, empty, reversed, over 366 days).
    """
    if start is not None and days is not None:
        raise typer.BadParameter("give --from or --days, not both", param_hint="--days")
    to = _instant(end, "--to") or datetime.now(UTC)
    since = _instant(start, "--from") or to - (timedelta(days=days) if days else DEFAULT_WINDOW)

    async def read(session: AsyncSession) -> tuple[InventoryReport, list[LowStock] | None]:
        conn = await session.connection()
        report = await inventory_report(conn, since, to)
        return report, (await low_stock_now(conn) if low_stock else None)

    try:
        report, low = in_transaction(read)
    except InvalidInput as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(render(report, fmt, low))
