"""Commands that talk to a running service over HTTP: query, stripe-event."""

from __future__ import annotations

from typing import Annotated

import typer

from gql_inventory.cli._common import in_transaction, refuse_unsafe_settings
from gql_inventory.cli.server import dev_token_file
from gql_inventory.settings import get_settings


def query(
    document: Annotated[str, typer.Argument(help="A GraphQL query or mutation.")],
    variables: Annotated[
        str | None, typer.Option("--variables", "-v", help="Variables as a JSON object.")
    ] = None,
    url: Annotated[str, typer.Option(help="The service's GraphQL endpoint.")] = (
        "http://127.0.0.1:8000/graphql"
    ),
    admin: Annotated[
        bool,
        typer.Option(
            "--admin", help="Send the first ADMIN_TOKENS token (or the development token)."
        ),
    ] = False,
) -> None:
    """Post a GraphQL operation to a running service and print the JSON answer (one line).

    Exit 1 when the answer carries GraphQL errors or is not HTTP 200.
    """
    import json

    import httpx

    from gql_inventory.context import admin_identities

    headers = {}
    if admin:
        tokens = admin_identities(get_settings().admin_tokens)
        token = tokens[0][1] if tokens else None
        if token is None and dev_token_file().exists():
            token = dev_token_file().read_text().strip()
        if token is None:
            typer.echo("no admin token: set ADMIN_TOKENS", err=True)
            raise typer.Exit(2)
        headers["Authorization"] = f"Bearer {token}"
    body: dict[str, object] = {"query": document}
    if variables:
        body["variables"] = json.loads(variables)
    response = httpx.post(url, json=body, headers=headers, timeout=30)
    typer.echo(response.text.strip())
    if response.status_code != 200 or "errors" in response.json():
        raise typer.Exit(1)


def stripe_event(
    event_type: Annotated[
        str,
        typer.Argument(
            metavar="TYPE",
            help="payment_intent.succeeded|payment_failed|processing|requires_action|canceled, "
            "charge.refunded, refund.created|updated|failed, charge.refund.updated",
        ),
    ],
    order: Annotated[str, typer.Option("--order", help="The order's id.")],
    url: Annotated[
        str, typer.Option(help="The webhook endpoint.")
    ] = "http://127.0.0.1:8000/webhooks/stripe",
    amount: Annotated[
        int | None,
        typer.Option(
            help="Minor units. PaymentIntent events: amount paid (default the order total); "
            "charge.refunded: total refunded so far (default what was refunded here, else all); "
            "refund events: the refund's amount."
        ),
    ] = None,
    refund_id: Annotated[
        str | None, typer.Option(help="Refund events: the refund (default the latest one).")
    ] = None,
) -> None:
    """Post a Stripe-shaped event about an order, signed with STRIPE_WEBHOOK_SECRET exactly
    as Stripe signs it, to the webhook (like `stripe trigger`), and print the answer."""
    import uuid

    import httpx

    from gql_inventory.devtools import stripe_events as events

    refuse_unsafe_settings()
    if event_type not in events.EVENT_TYPES:
        typer.echo(
            f"unsupported TYPE {event_type!r}; one of: {', '.join(events.EVENT_TYPES)}", err=True
        )
        raise typer.Exit(2)
    try:
        order_id = uuid.UUID(order)
    except ValueError as exc:
        typer.echo(f"--order must be an order id (UUID), not {order!r}", err=True)
        raise typer.Exit(2) from exc
    try:
        facts = in_transaction(lambda s: events.load_order_facts(s, order_id))
    except LookupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    event = events.event_for_order(event_type, facts, amount=amount, refund_id=refund_id)
    body, headers = events.signed(event, get_settings().webhook_secret())
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        typer.echo(f"could not post to {url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{event_type} {event['id']} -> HTTP {response.status_code} {response.text}")
    if response.is_error:
        raise typer.Exit(1)
