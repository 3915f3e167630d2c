"""Webhook endpoints and deliveries (admin): createWebhookEndpoint, updateWebhookEndpoint,
deleteWebhookEndpoint, rotateWebhookEndpointSecret, retryWebhookDelivery,
webhookEndpoints, webhookDeliveries.

Their fields declare the `IsAdmin` permission (`schema.query`, `schema.mutation`). Each
mutation is one domain call (`outbound.endpoints`, `outbound.deliveries`) in one
transaction; the secret a create or rotation returns goes into the payload and nowhere else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import strawberry
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.domain.errors import DomainError, WebhookEndpointNotFound
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.outbound import deliveries, endpoints
from gql_inventory.outbound.endpoints import KEEP
from gql_inventory.resolvers.backoffice import DEFAULT_LIST_PAGE, list_page_size
from gql_inventory.resolvers.cursors import decode_cursor
from gql_inventory.schema.connections import PageInfo, forward_page
from gql_inventory.schema.payloads import user_errors
from gql_inventory.schema.webhooks import (
    CreateWebhookEndpointInput,
    CreateWebhookEndpointPayload,
    UpdateWebhookEndpointInput,
    WebhookDeliveryConnection,
    WebhookDeliveryEdge,
    WebhookDeliveryPayload,
    WebhookDeliveryStatus,
    WebhookDeliveryType,
    WebhookEndpointPayload,
    WebhookEndpointType,
)
from gql_inventory.uow import run_in_transaction

_KIND = "delivery"
T = TypeVar("T")


async def _run(info: Info[Context, None], work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    return await run_in_transaction(info.context.services, work, actor=info.context.actor)


async def create_webhook_endpoint(
    info: Info[Context, None], input: CreateWebhookEndpointInput
) -> CreateWebhookEndpointPayload:
    """A new endpoint and its secret, shown once (admin)."""
    settings = info.context.services.settings
    try:
        made = await _run(
            info,
            lambda uow: endpoints.create_endpoint(
                uow,
                url=input.url,
                topics=input.topics,
                description=input.description,
                settings=settings,
            ),
        )
    except DomainError as error:
        return CreateWebhookEndpointPayload(
            endpoint=None, secret=None, user_errors=user_errors(error)
        )
    return CreateWebhookEndpointPayload(
        endpoint=WebhookEndpointType.of(made.endpoint), secret=made.secret, user_errors=[]
    )


async def rotate_webhook_endpoint_secret(
    info: Info[Context, None], id: strawberry.ID
) -> CreateWebhookEndpointPayload:
    """A new secret for an endpoint, shown once; the old one signs on for the overlap."""
    settings = info.context.services.settings

    async def work(uow: UnitOfWork) -> endpoints.EndpointWithSecret:
        endpoint_id = endpoints.parse_endpoint_id(id, field=endpoints.ID_ARGUMENT)
        return await endpoints.rotate_secret(uow, endpoint_id=endpoint_id, settings=settings)

    try:
        made = await _run(info, work)
    except DomainError as error:
        return CreateWebhookEndpointPayload(
            endpoint=None, secret=None, user_errors=user_errors(error)
        )
    return CreateWebhookEndpointPayload(
        endpoint=WebhookEndpointType.of(made.endpoint), secret=made.secret, user_errors=[]
    )


async def update_webhook_endpoint(
    info: Info[Context, None], input: UpdateWebhookEndpointInput
) -> WebhookEndpointPayload:
    """Change an endpoint's URL, topics, note or enabled flag (admin)."""
    settings = info.context.services.settings

    async def work(uow: UnitOfWork) -> endpoints.EndpointView:
        return await endpoints.update_endpoint(
            uow,
            endpoint_id=endpoints.parse_endpoint_id(input.id),
            settings=settings,
            url=KEEP if input.url is None else input.url,
            topics=KEEP if input.topics is None else input.topics,
            enabled=KEEP if input.enabled is None else input.enabled,
            description=KEEP if input.description is strawberry.UNSET else input.description,
        )

    try:
        view = await _run(info, work)
    except DomainError as error:
        return WebhookEndpointPayload(endpoint=None, user_errors=user_errors(error))
    return WebhookEndpointPayload(endpoint=WebhookEndpointType.of(view), user_errors=[])


async def delete_webhook_endpoint(
    info: Info[Context, None], id: strawberry.ID
) -> WebhookEndpointPayload:
    """Delete an endpoint and its deliveries (admin); the endpoint as it was."""

    async def work(uow: UnitOfWork) -> endpoints.EndpointView:
        endpoint_id = endpoints.parse_endpoint_id(id, field=endpoints.ID_ARGUMENT)
        return await endpoints.delete_endpoint(uow, endpoint_id=endpoint_id)

    try:
        view = await _run(info, work)
    except DomainError as error:
        return WebhookEndpointPayload(endpoint=None, user_errors=user_errors(error))
    return WebhookEndpointPayload(endpoint=WebhookEndpointType.of(view), user_errors=[])


async def retry_webhook_delivery(
    info: Info[Context, None], id: strawberry.ID
) -> WebhookDeliveryPayload:
    """Send a FAILED (or PENDING) delivery again, now (admin)."""

    async def work(uow: UnitOfWork) -> WebhookDeliveryType:
        delivery_id = deliveries.parse_delivery_id(id)
        row = await deliveries.retry_delivery(uow, delivery_id=delivery_id)
        return WebhookDeliveryType.from_row(row)

    try:
        delivery = await _run(info, work)
    except DomainError as error:
        return WebhookDeliveryPayload(delivery=None, user_errors=user_errors(error))
    return WebhookDeliveryPayload(delivery=delivery, user_errors=[])


async def webhook_endpoints(info: Info[Context, None]) -> list[WebhookEndpointType]:
    """Every endpoint, oldest first (admin)."""
    async with info.context.services.sessions() as session:
        return [WebhookEndpointType.of(v) for v in await endpoints.list_endpoints(session)]


async def webhook_deliveries(
    info: Info[Context, None],
    endpoint_id: strawberry.ID | None = None,
    status: list[WebhookDeliveryStatus] | None = None,
    first: int | None = DEFAULT_LIST_PAGE,
    after: str | None = None,
) -> WebhookDeliveryConnection:
    """Webhook deliveries newest first, by endpoint and status (admin). An endpoint id
    that is not one (malformed or unknown) matches no delivery."""
    size = list_page_size(first)
    before_id = None if after is None else decode_cursor(_KIND, after)
    try:
        endpoint = None if endpoint_id is None else endpoints.parse_endpoint_id(endpoint_id)
    except WebhookEndpointNotFound:
        nothing = PageInfo(
            has_next_page=False,
            has_previous_page=before_id is not None,
            start_cursor=None,
            end_cursor=None,
        )
        return WebhookDeliveryConnection(edges=[], page_info=nothing, total_count=0)
    async with info.context.engine.connect() as conn:
        page = await deliveries.delivery_page(
            conn,
            first=size,
            before_id=before_id,
            endpoint_id=endpoint,
            statuses=None if status is None else [s.value for s in status],
        )
    edges, page_info = forward_page(
        page.rows,
        kind=_KIND,
        key=lambda row: int(row["id"]),
        node=WebhookDeliveryType.from_row,
        edge=WebhookDeliveryEdge,
        has_next_page=page.has_next_page,
        after_given=before_id is not None,
    )
    return WebhookDeliveryConnection(edges=edges, page_info=page_info, total_count=page.total_count)
