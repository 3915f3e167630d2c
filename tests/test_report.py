"""inventoryReport: every figure against a scripted day whose answers are worked out by hand.

The history is tests/support/report_history.py; the window is ``[T0, T0 + 24 h)``
(half-open: an event exactly at `from` counts, one exactly at `to` does not).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gql_inventory.domain.errors import InvalidInput
from gql_inventory.stock.report import (
    InventoryReport,
    UnitsByState,
    VariantSales,
    VariantStockouts,
    inventory_report,
)
from tests.conftest import GraphQLCaller
from tests.support.cli import run_cli
from tests.support.report_history import END, T0, write_history

# Reservations created in the window: 4 paid (created at 0, 1, 2, 3 h; 0 h is exactly
# `from`), 3 expired (4, 5, 6 h), 2 released (7, 8 h), 1 active (23.9 h), and 1 created
# at 23 h that was paid exactly at `to` -> 4 + 3 + 2 + 1 + 1 = 11.
CREATED = 11
# Became COMPLETED in the window: the 4 above + 1 created at -1 h, paid at 0.5 h = 5
# (the one paid exactly at `to` does not count).
CHECKED_OUT = 5
EXPIRED = 3  # at 4.25, 5.25, 6.25 h; the one expired at -1.75 h is before the window
RELEASED = 2  # at 7.1, 8.1 h
# Created in the window and paid before `to`: the 4 created at 0..3 h.
CONVERTED = 4
# Orders paid at 0 h (= from), 3 h, 4 h, 5 h; not the one at 24 h (= to) nor at -20 h.
ORDERS_PAID = 4
# SALE movements in the window: A sells 2 at 2 h and 3 at 3 h (B's sale at -1 h is outside).
UNITS_SOLD = 2 + 3
# Refunds in the window that did not fail: 1 unit (succeeded, 5 h) + 1 (pending, 7 h)
# + 1 (GBP, succeeded, 1 h); the failed one and the one exactly at `to` do not count.
UNITS_RETURNED = 1 + 1 + 1
# Paid minus refunded, per currency, minor units:
#   USD: paid 5000 + 2500 + 1000 = 8500; refunded 1250 + 1000 = 2250 -> 6250
#   EUR: paid 3000; its refund is exactly at `to` -> 3000
#   GBP: paid before the window; 700 refunded inside -> -700
REVENUE = {"EUR": 3000, "GBP": -700, "USD": 6250}
# A: available 5 -> 3 (reserved 2) -> 3 (sold 2 reserved) -> 0 at 3 h (stockout) -> 1 at
#    5 h -> 0 at 6 h (LOST, stockout) -> 4 at 22 h.  Seconds at 0: (5-3) h + (22-6) h = 18 h.
A_SECONDS = 18 * 3600  # 64800
# B: Main 0 at -1 h but Store 1 (the variant is not out); Store DAMAGED at -0.5 h -> 0
#    before the window, back only exactly at `to`: 0 for the whole window, no stockout in it.
B_SECONDS = 24 * 3600  # 86400
# C: FOUND 2 at 0 h -> 1 at 8 h -> 0 at 9 h (stockout) -> one same-instant receive-and-
#    remove at 12 h (still 0, no stockout).  Seconds: 24 h - 9 h = 15 h.
C_SECONDS = 15 * 3600  # 54000
STOCKOUTS = 2 + 0 + 1
# |delta| of: A LOST 1 (6 h) + A COUNT 4 (22 h) + C FOUND 2 (exactly at `from`) + C DAMAGED
# 1 (9 h) = 8. Not: B DAMAGED (-0.5 h), B COUNT (exactly at `to`), CORRECTIONs.
DISCREPANCY = 1 + 4 + 2 + 1
# NEEDS_ATTENTION orders created before `to`: the one at 6 h (not the one at 24 h).
NEEDING_ATTENTION = 1


@pytest.fixture
async def history(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions.begin() as session:
        catalog = await write_history(session)
    return catalog.variants


async def test_report_figures_match_the_hand_worked_answers(
    engine: AsyncEngine, history: dict[str, int]
) -> None:
    async with engine.connect() as conn:
        report = await inventory_report(conn, T0, END)
    assert report == InventoryReport(
        start=T0,
        end=END,
        reservations_created=CREATED,
        reservations_checked_out=CHECKED_OUT,
        reservations_expired=EXPIRED,
        reservations_released=RELEASED,
        reservations_converted=CONVERTED,
        orders_paid=ORDERS_PAID,
        units_sold=UNITS_SOLD,
        units_returned=UNITS_RETURNED,
        revenue=REVENUE,
        stockouts=STOCKOUTS,
        top_stockouts=[
            VariantStockouts(history["RPT-A"], "RPT-A", 2, A_SECONDS),
            VariantStockouts(history["RPT-C"], "RPT-C", 1, C_SECONDS),
            VariantStockouts(history["RPT-B"], "RPT-B", 0, B_SECONDS),
        ],
        count_discrepancy_units=DISCREPANCY,
        orders_needing_attention=NEEDING_ATTENTION,
        # A's SALE movements at 2 h and 3 h (B's at -1 h is outside)
        top_sellers=[VariantSales(history["RPT-A"], "RPT-A", UNITS_SOLD)],
        orders_cancelled=0,  # no cancellation event in the history
        units_reserved_now=0,  # A's 2 reserved units were sold
        unavailable_now=UnitsByState(),
    )
    assert report.conversion_rate == 4 / 11
    assert report.expiry_rate == 3 / 11
    assert report.refund_rate == 3 / 5


async def test_an_empty_window_has_zero_figures_and_zero_rates(
    engine: AsyncEngine, history: dict[str, int]
) -> None:
    start = T0 - timedelta(days=30)  # nothing happened then: 0 denominators give 0.0
    async with engine.connect() as conn:
        report = await inventory_report(conn, start, start + timedelta(hours=1))
    assert (report.reservations_created, report.units_sold, report.revenue) == (0, 0, {})
    assert (report.conversion_rate, report.expiry_rate, report.refund_rate) == (0.0, 0.0, 0.0)
    assert report.top_stockouts == []


@pytest.mark.parametrize(
    ("start", "end"),
    [(END, T0), (T0, T0), (T0, T0 + timedelta(days=367)), (T0.replace(tzinfo=None), END)],
)
async def test_a_bad_window_is_refused(engine: AsyncEngine, start: Any, end: Any) -> None:
    async with engine.connect() as conn:
        with pytest.raises(InvalidInput):
            await inventory_report(conn, start, end)


REPORT = """query($from: DateTime!, $to: DateTime!) { inventoryReport(from: $from, to: $to) {
  from to reservationsCreated reservationsCheckedOut reservationsExpired reservationsReleased
  conversionRate expiryRate ordersPaid unitsSold unitsReturned refundRate
  revenue { amount currencyCode } stockouts
  topStockouts { variant { sku } stockouts outOfStockSeconds }
  countDiscrepancyUnits ordersNeedingAttention } }"""


async def test_inventory_report_query_serves_the_same_figures(
    gql: GraphQLCaller, history: dict[str, int]
) -> None:
    window = {"from": T0.isoformat(), "to": END.isoformat()}
    body = await gql(REPORT, window, admin=True)
    assert body.get("errors") is None
    assert body["data"]["inventoryReport"] == {
        "from": "2026-03-02T00:00:00+00:00",
        "to": "2026-03-03T00:00:00+00:00",
        "reservationsCreated": CREATED,
        "reservationsCheckedOut": CHECKED_OUT,
        "reservationsExpired": EXPIRED,
        "reservationsReleased": RELEASED,
        "conversionRate": 4 / 11,
        "expiryRate": 3 / 11,
        "ordersPaid": ORDERS_PAID,
        "unitsSold": UNITS_SOLD,
        "unitsReturned": UNITS_RETURNED,
        "refundRate": 0.6,
        "revenue": [  # minor units of REVENUE as decimals, ordered by currency code
            {"amount": "30.00", "currencyCode": "EUR"},
            {"amount": "-7.00", "currencyCode": "GBP"},
            {"amount": "62.50", "currencyCode": "USD"},
        ],
        "stockouts": STOCKOUTS,
        "topStockouts": [
            {"variant": {"sku": "RPT-A"}, "stockouts": 2, "outOfStockSeconds": A_SECONDS},
            {"variant": {"sku": "RPT-C"}, "stockouts": 1, "outOfStockSeconds": C_SECONDS},
            {"variant": {"sku": "RPT-B"}, "stockouts": 0, "outOfStockSeconds": B_SECONDS},
        ],
        "countDiscrepancyUnits": DISCREPANCY,
        "ordersNeedingAttention": NEEDING_ATTENTION,
    }


async def test_inventory_report_needs_an_admin_and_a_sane_window(gql: GraphQLCaller) -> None:
    window = {"from": T0.isoformat(), "to": END.isoformat()}
    forbidden = await gql(REPORT, window)
    assert forbidden["data"] is None
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    reversed_window = {"from": END.isoformat(), "to": T0.isoformat()}
    refused = await gql(REPORT, reversed_window, admin=True)
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert refused["errors"][0]["message"] == "to must be after from"


# ---------------------------------------------------------------- the command line


WINDOW_ARGS = ("--from", "2026-03-02T00:00:00Z", "--to", "2026-03-03T00:00:00")  # naive: UTC


async def test_report_command_prints_json(cli_env: None, history: dict[str, int]) -> None:
    result = await run_cli("report", *WINDOW_ARGS, "--format", "json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["from"] == "2026-03-02T00:00:00+00:00"
    assert printed["to"] == "2026-03-03T00:00:00+00:00"
    assert printed["reservationsCreated"] == CREATED
    assert printed["conversionRate"] == 4 / 11
    assert printed["revenue"] == [
        {"amount": "30.00", "currencyCode": "EUR"},
        {"amount": "-7.00", "currencyCode": "GBP"},
        {"amount": "62.50", "currencyCode": "USD"},
    ]
    assert printed["topStockouts"][0] == {
        "sku": "RPT-A",
        "stockouts": 2,
        "outOfStockSeconds": A_SECONDS,
    }
    assert printed["countDiscrepancyUnits"] == DISCREPANCY


async def test_report_command_prints_csv(cli_env: None, history: dict[str, int]) -> None:
    result = await run_cli("report", *WINDOW_ARGS, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["metric", "value"]
    values = dict(rows[1:])
    assert values["reservationsCreated"] == "11"
    assert values["expiryRate"] == "0.2727"  # 3 / 11
    assert values["refundRate"] == "0.6000"  # 3 / 5
    assert values["revenue:USD"] == "62.50"
    assert values["topStockouts:RPT-B:outOfStockSeconds"] == str(B_SECONDS)
    assert values["ordersNeedingAttention"] == "1"


async def test_report_command_prints_an_aligned_table(
    cli_env: None, history: dict[str, int]
) -> None:
    result = await run_cli("report", *WINDOW_ARGS)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2].split() == ["reservationsCreated", "11"]
    value_columns = {len(line) - len(line.split()[-1]) for line in lines}
    assert len(value_columns) == 1  # every value starts in the same column
    assert lines[-1].split() == ["unitsUnavailableByState:safetyStock", "0"]
    assert ["ordersNeedingAttention", "1"] in [line.split() for line in lines]
    assert ["topSellers:RPT-A:unitsSold", "5"] in [line.split() for line in lines]


async def test_report_command_refuses_a_bad_window(cli_env: None, engine: AsyncEngine) -> None:
    reversed_window = await run_cli("report", "--from", "2026-03-03", "--to", "2026-03-02")
    assert reversed_window.exit_code == 2
    assert "to must be after from" in reversed_window.stderr
    garbage = await run_cli("report", "--from", "yesterday")
    assert garbage.exit_code == 2
    assert "not an ISO 8601 date-time" in garbage.stderr


async def test_report_command_defaults_to_the_last_24_hours(
    cli_env: None, engine: AsyncEngine
) -> None:
    result = await run_cli("report", "--format", "json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    span = datetime.fromisoformat(printed["to"]) - datetime.fromisoformat(printed["from"])
    assert span == timedelta(hours=24)


async def test_report_command_weekly_with_the_low_stock_list(
    cli_env: None, history: dict[str, int]
) -> None:
    result = await run_cli(
        "report", "--to", "2026-03-03T00:00:00Z", "--days", "7", "--low-stock", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["from"] == "2026-02-24T00:00:00+00:00"  # 7 days before --to
    # the 11 of the day + the two created at -1 h and -2 h (inside the week)
    assert printed["reservationsCreated"] == 11 + 2
    # available now (all history, B's count at `to` included): C 0, B 0 + 3 = 3, A 4;
    # every threshold is 5, so all three are listed, fewest first
    assert printed["lowStock"] == [
        {"sku": "RPT-C", "available": 0, "threshold": 5},
        {"sku": "RPT-B", "available": 3, "threshold": 5},
        {"sku": "RPT-A", "available": 4, "threshold": 5},
    ]
    text = await run_cli("report", "--days", "1", "--low-stock")
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines()[-1].split() == ["lowStock:RPT-A", "4/5"]
    both = await run_cli("report", "--from", "2026-03-01", "--days", "7")
    assert both.exit_code == 2
    assert "not both" in both.stderr
