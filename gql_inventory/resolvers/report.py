"""The admin inventoryReport query (figures: `gql_inventory.stock.report`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.domain.errors import InvalidInput
from gql_inventory.schema.errors import BadRequest
from gql_inventory.schema.report import InventoryReportType
from gql_inventory.stock.report import inventory_report as compute_report


async def inventory_report(
    info: Info[Context, None],
    from_: Annotated[datetime, strawberry.argument(name="from")],
    to: datetime,
) -> InventoryReportType:
    """The report for ``[from, to)`` (admin). A bad window is a BAD_USER_INPUT error."""
    try:
        async with info.context.engine.connect() as conn:
            report = await compute_report(conn, from_, to)
    except InvalidInput as error:
        raise BadRequest(error.message) from None
    return InventoryReportType.build(report)
