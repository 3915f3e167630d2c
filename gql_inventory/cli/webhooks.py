"""`gql-inventory webhooks`: list the endpoints with their recent deliveries by status, and
retry a delivery (the same use case as the `retryWebhookDelivery` mutation)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.cli._common import in_transaction, in_unit_of_work
from gql_inventory.domain.errors import DomainError
from gql_inventory.domain.uow import SYSTEM
from gql_inventory.models import DeliveryStatus
from gql_inventory.outbound import deliveries, endpoints

app = typer.Typer(help="Webhook endpoints and their deliveries.", no_args_is_help=True)


@app.command("list")
def list_command(
    hours: Annotated[
        int, typer.Option("--hours", min=1, help="Count deliveries created in the last N hours.")
    ] = 24,
) -> None:
    """Every endpoint (id, enabled, URL, topics) and its deliveries of the last `--hours`
    by status (PENDING, SUCCEEDED, FAILED). Secrets are never shown."""
    since = datetime.now(UTC) - timedelta(hours=hours)

    async def read(
        session: AsyncSession,
    ) -> tuple[list[endpoints.EndpointView], dict[uuid.UUID, dict[str, int]]]:
        found = await endpoints.list_endpoints(session)
        return found, dict(await deliveries.status_counts(session, since=since))

    found, counts = in_transaction(read)
    for view in found:
        state = "enabled" if view.enabled else f"disabled ({view.disabled_reason or 'by hand'})"
        by_status = counts.get(view.id, {})
        figures = " ".join(f"{s.value}={by_status.get(s.value, 0)}" for s in DeliveryStatus)
        typer.echo(f"{view.id} {state} {view.url}")
        typer.echo(f"  topics: {','.join(t.value for t in view.topics)}")
        if view.description:
            typer.echo(f"  description: {view.description}")
        typer.echo(f"  deliveries, last {hours} h: {figures}")
    typer.echo(f"{len(found)} endpoint(s)", err=True)


def retry_command(
    delivery_id: Annotated[str, typer.Argument(metavar="ID", help="WebhookDelivery.id.")],
) -> None:
    """Send a FAILED (or PENDING) webhook delivery again now, with the same webhook-id.
    Exit 1 when there is no such delivery or it SUCCEEDED already."""
    try:
        row = in_unit_of_work(
            lambda uow: deliveries.retry_delivery(
                uow, delivery_id=deliveries.parse_delivery_id(delivery_id)
            ),
            actor=SYSTEM,
        )
    except DomainError as error:
        typer.echo(f"{error.code.value}: {error.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"delivery {row['id']} ({row['message_id']}) is {row['status']}, due now; "
        f"{row['attempts']} attempt(s) so far"
    )


app.command("retry")(retry_command)
