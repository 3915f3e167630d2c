"""`gql-inventory` command line (typer): serve, migrate, import, export, schema, maintenance.

`app` is the entry point (``gql-inventory = gql_inventory.cli:app``, and
``python -m gql_inventory.cli``). Each group of commands lives in its own module;
they are registered here, in the order `--help` lists them.
"""

from __future__ import annotations

import typer

from gql_inventory.cli import calls, catalog, maintenance, report, server, webhooks

app = typer.Typer(help="GraphQL inventory service.", no_args_is_help=True)

app.command("migrate")(server.migrate)
app.command("schema")(server.schema)
app.command("import-shopify")(catalog.import_shopify)
app.command("import-shipment")(catalog.import_shipment)
app.command("seed-demo")(catalog.seed_demo)
app.command("export-stock")(catalog.export_stock)
app.command("expire-reservations")(maintenance.expire_reservations_command)
app.command("check-pending-payments")(maintenance.check_pending_payments_command)
app.command("stripe-event")(calls.stripe_event)
app.command("check-invariants")(maintenance.check_invariants)
app.command("prune")(maintenance.prune_command)
app.command("deliver")(maintenance.deliver_command)
app.command("report")(report.report_command)
app.command("serve")(server.serve)
app.command("query")(calls.query)
app.command("stop-database")(server.stop_database)
app.command("database-status")(server.database_status)
app.add_typer(webhooks.app, name="webhooks")

__all__ = ["app"]
