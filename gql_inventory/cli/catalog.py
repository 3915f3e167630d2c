"""Catalog commands: import-shopify, import-shipment, seed-demo, export-stock."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from gql_inventory.cli._common import in_transaction, in_unit_of_work
from gql_inventory.domain.uow import IMPORT


def import_shopify(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    location: Annotated[str | None, typer.Option(help="Location receiving the stock.")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency of the prices.")] = "USD",
    count_stock: Annotated[
        bool,
        typer.Option(
            "--count-stock",
            help="The file is a stock count: set levels that already have stock to its "
            "quantities (COUNT movements). Without it they are left as they are.",
        ),
    ] = False,
) -> None:
    """Import Shopify product CSV exports; a bad file is refused whole (exit 1).

    New variants' stock is received into the location. Stock that already exists there
    is never changed by a re-import (sales and adjustments made since stay) unless
    --count-stock says the file is a count.
    """
    from gql_inventory.catalog.shopify import CatalogImportError, import_shopify_files

    try:
        report = in_unit_of_work(
            lambda s: import_shopify_files(
                s, files, location_name=location, currency=currency, count_existing=count_stock
            ),
            actor=IMPORT,
        )
    except CatalogImportError as exc:
        for problem in exc.problems:
            typer.echo(f"{problem.path}:{problem.line}: {problem.message}", err=True)
        typer.echo(f"refused: {len(exc.problems)} problem(s), nothing imported", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"imported into {report.location}: products {report.products_created} new, "
        f"{report.products_updated} updated; variants {report.variants_created} new, "
        f"{report.variants_updated} updated; {report.units_received} units received, "
        f"{report.levels_counted} levels counted"
        + _kept(report.levels_kept, hint=" (--count-stock sets them to the file)")
    )
    for refused in report.refused_counts:
        typer.echo(
            f"count refused: {refused.sku} at {refused.location}: {refused.counted} counted, "
            f"{refused.reserved} reserved",
            err=True,
        )


def _moment(value: str | None) -> datetime | None:
    """An ISO 8601 instant with its offset (typer callback); None stays None."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give the offset too, e.g. 2027-01-10T09:00:00+00:00")
    return moment


def import_shipment(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    location: Annotated[
        str | None, typer.Option(help="Name of the receiving location; default: the default one.")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="The supplier's or shop's own number.")
    ] = None,
    expected_at: Annotated[
        str | None,
        typer.Option(help="When it should arrive: ISO 8601 with offset.", callback=_moment),
    ] = None,
) -> None:
    """Create an OPEN inbound shipment from a CSV file (columns SKU or Variant SKU, and
    Quantity or Incoming); a bad file is refused whole (exit 1), every problem listed."""
    from gql_inventory.catalog.shipment_csv import import_shipment_file
    from gql_inventory.catalog.shopify import CatalogImportError
    from gql_inventory.domain.errors import DomainError

    try:
        done = in_unit_of_work(
            lambda uow: import_shipment_file(
                uow,
                file,
                location_name=location,
                reference=reference,
                expected_at=expected_at,  # type: ignore[arg-type]  # parsed by _moment
            ),
            actor=IMPORT,
        )
    except CatalogImportError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"refused: {len(exc.problems)} problem(s), nothing imported", err=True)
        raise typer.Exit(1) from exc
    except DomainError as exc:
        typer.echo(f"refused: {exc.message}, nothing imported", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"inbound shipment {done.shipment_id}: {done.lines} lines, {done.units} units")


def _kept(levels: int, *, hint: str = "") -> str:
    """The summary's part about existing stock levels left unchanged ("" when none)."""
    if not levels:
        return ""
    return f"; {levels} existing stock levels left as they were{hint}"


def seed_demo() -> None:
    """Load the generated demo catalog (apparel in sizes, three locations).

    Fills in only what is missing: products, variants, locations and stock levels that
    exist (stock adjusted or sold since included) are never changed, so every
    `make run` may run it.
    """
    from gql_inventory.catalog.demo import seed_demo_catalog

    report = in_unit_of_work(seed_demo_catalog, actor=IMPORT)
    typer.echo(
        f"demo catalog: {report.products_created} products new, "
        f"{report.variants_created} variants new, {report.units_received} units received"
        + _kept(report.levels_kept)
    )


def export_stock(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File; default stdout.")
    ] = None,
) -> None:
    """Write every stock level as CSV: sku, location, on_hand, reserved, available."""
    from gql_inventory.catalog.export import export_stock_csv

    if output is None:
        in_transaction(lambda s: export_stock_csv(s, sys.stdout))
        return
    with output.open("w", newline="", encoding="utf-8") as fh:
        count = in_transaction(lambda s: export_stock_csv(s, fh))
    typer.echo(f"{count} stock levels written to {output}", err=True)
