"""Commands that talk to a running service over HTTP: query, stripe-event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from gql_inventory.cli._common import in_transaction, refuse_unsafe_settings
from gql_inventory.cli.server import CONFIGURED_TOKENS, dev_token_file, running_server_admin
from gql_inventory.settings import get_settings

if TYPE_CHECKING:
    import httpx


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
            "--admin",
            help="Send an admin token: --token, else the first ADMIN_TOKENS token (environment "
            "or .env), else the development token when the server uses it.",
        ),
    ] = False,
    token: Annotated[
        str | None, typer.Option("--token", help="The admin token to send (implies --admin).")
    ] = None,
) -> None:
    """Post a GraphQL operation to a running service and print the JSON answer (one line).

    Exit 1 when the answer carries GraphQL errors or is not HTTP 200; exit 2 when an
    admin token was asked for and none is known.
    """
    import json

    import httpx

    headers = {}
    if admin or token is not None:
        headers["Authorization"] = f"Bearer {token or _admin_token()}"
    body: dict[str, object] = {"query": document}
    if variables:
        body["variables"] = json.loads(variables)
    response = httpx.post(url, json=body, headers=headers, timeout=30)
    typer.echo(response.text.strip())
    if response.status_code != 200 or "errors" in response.json():
        if headers and _forbidden(response):
            typer.echo(
                "the server refused the admin token: pass the one it accepts with --token, "
                "or set ADMIN_TOKENS (environment or .env) as the server has it",
                err=True,
            )
        raise typer.Exit(1)


def _admin_token() -> str:
    """The admin token `query --admin` sends without --token: the first ADMIN_TOKENS
    token of this process's settings (environment or .env); else the development token
    file, unless the `serve` running on this DATA_DIR accepts only its own ADMIN_TOKENS
    (`make run ADMIN_TOKENS=...`), whose value this process cannot know. Exit 2 when none."""
    from gql_inventory.context import admin_identities

    tokens = admin_identities(get_settings().admin_tokens)
    if tokens:
        return tokens[0][1]
    if running_server_admin() == CONFIGURED_TOKENS:
        typer.echo(
            "the server running here was started with ADMIN_TOKENS, so it refuses the "
            f"development token in {dev_token_file()}: pass one of its tokens with --token, "
            "or set ADMIN_TOKENS (environment or .env) as the server has it",
            err=True,
        )
        raise typer.Exit(2)
    if dev_token_file().exists():
        return dev_token_file().read_text().strip()
    typer.echo("no admin token: pass --token, or set ADMIN_TOKENS (environment or .env)", err=True)
    raise typer.Exit(2)


def _forbidden(response: httpx.Response) -> bool:
    """True when the answer is an authorization refusal (HTTP 401/403, or FORBIDDEN)."""
    if response.status_code in (401, 403):
        return True
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return False
    return any((e.get("extensions") or {}).get("code") == "FORBIDDEN" for e in errors)


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
