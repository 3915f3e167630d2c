"""Catalog commands: import-shopify, seed-demo, export-stock."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from gql_inventory.cli._common import in_transaction, in_unit_of_work
from gql_inventory.domain.uow import IMPORT


def import_shopify(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    location: Annotated[str | None, typer.Option(help="Location receiving the stock.")] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency of the prices.")] = "USD",
) -> None:
    """Import Shopify product CSV exports; a bad file is refused whole (exit 1)."""
    from gql_inventory.catalog.shopify import CatalogImportError, import_shopify_files

    try:
        report = in_unit_of_work(
            lambda s: import_shopify_files(s, files, location_name=location, currency=currency),
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
    )


def seed_demo() -> None:
    """Load the generated demo catalog (apparel in sizes, three locations)."""
    from gql_inventory.catalog.demo import seed_demo_catalog

    report = in_unit_of_work(seed_demo_catalog, actor=IMPORT)
    typer.echo(
        f"demo catalog: {report.products_created} products new, "
        f"{report.variants_created} variants new, {report.units_received} units received"
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
