"""Outbound webhook types (admin): endpoints, deliveries, their page, inputs and payloads
(docs/backoffice.md, "Webhooks"; the events themselves: docs/webhooks.md)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy import RowMapping

from gql_inventory.models import DeliveryStatus, WebhookTopic
from gql_inventory.outbound.endpoints import EndpointView
from gql_inventory.schema.connections import PageInfo
from gql_inventory.schema.docs import describe_enum
from gql_inventory.schema.payloads import UserError

__all__ = [
    "CreateWebhookEndpointInput",
    "CreateWebhookEndpointPayload",
    "UpdateWebhookEndpointInput",
    "WebhookDeliveryConnection",
    "WebhookDeliveryEdge",
    "WebhookDeliveryPayload",
    "WebhookDeliveryStatus",
    "WebhookDeliveryType",
    "WebhookEndpointPayload",
    "WebhookEndpointType",
    "WebhookTopic",
]

_USER_ERRORS = (
    "Why the operation was refused; empty on success. A refusal changes nothing (the "
    "transaction is rolled back)."
)

describe_enum(
    WebhookTopic,
    description="What happened: the topics a webhook endpoint subscribes to. Each event's "
    "body is {type, timestamp, data} (Standard Webhooks); types and data: docs/webhooks.md.",
    values={
        "INVENTORY_LEVEL_UPDATED": "Any committed change to a stock level "
        "(inventory_level.updated).",
        "STOCK_LOW": "A variant's available units fell to its low-stock threshold (stock.low).",
        "STOCK_OUT": "A variant has no available unit left (stock.out).",
        "STOCK_BACK_IN": "A variant that was out has available units again (stock.back_in).",
        "ORDER_PAID": "An order's payment succeeded (order.paid).",
        "ORDER_NEEDS_ATTENTION": "An order needs a person, e.g. paid after its stock was "
        "gone (order.needs_attention).",
        "ORDER_REFUNDED": "An order was refunded, in part or in full (order.refunded).",
        "ORDER_CANCELLED": "An order was cancelled (order.cancelled).",
        "PAYMENT_FAILED": "A payment attempt failed, e.g. a declined card (payment.failed).",
        "RESERVATION_EXPIRED": "A reservation passed its expiry; its units are available "
        "again (reservation.expired).",
        "INBOUND_SHIPMENT_RECEIVED": "Units of an inbound shipment were received "
        "(inbound_shipment.received).",
    },
)

describe_enum(
    DeliveryStatus,
    name="WebhookDeliveryStatus",
    description="Where a webhook delivery stands.",
    values={
        "PENDING": "Not delivered yet: due at nextAttemptAt (retried on the schedule "
        "WEBHOOK_RETRY_SCHEDULE).",
        "SUCCEEDED": "The receiver answered 2xx. Final.",
        "FAILED": "Every retry was used, or the receiver answered 410 (its endpoint is "
        "then disabled). retryWebhookDelivery sends it again.",
    },
)
#: The contract's name of `models.DeliveryStatus`.
WebhookDeliveryStatus = DeliveryStatus


@strawberry.type(
    name="WebhookEndpoint",
    description="A receiver of events (Standard Webhooks): every event of its topics is "
    "POSTed to its URL, signed with its secret (headers webhook-id, webhook-timestamp, "
    "webhook-signature). The secret itself is never readable: it is shown once, by "
    "createWebhookEndpoint and rotateWebhookEndpointSecret.",
)
class WebhookEndpointType:
    """A receiver of events; no secret in it."""

    id: strawberry.ID = strawberry.field(description="A UUID.")
    url: str = strawberry.field(
        description="Where events are POSTed: https (http and private addresses only in "
        "development or with WEBHOOK_ALLOW_PRIVATE_URLS=true)."
    )
    topics: list[WebhookTopic] = strawberry.field(
        description="The topics it receives, in the enum's order."
    )
    enabled: bool = strawberry.field(
        description="False after a 410 answer, or by hand (updateWebhookEndpoint): nothing is "
        "sent to it meanwhile."
    )
    description: str | None = strawberry.field(
        description="The admin's note, up to 500 characters."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    disabled_reason: str | None = strawberry.field(
        description="Why it is disabled (a 410 answer, or an admin); null while enabled."
    )
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="After rotateWebhookEndpointSecret: until when the previous secret still "
        "signs too (two signatures in webhook-signature); null when no previous secret signs."
    )

    @classmethod
    def of(cls, view: EndpointView) -> WebhookEndpointType:
        """Build from the domain's view of an endpoint."""
        return cls(
            id=strawberry.ID(str(view.id)),
            url=view.url,
            topics=list(view.topics),
            enabled=view.enabled,
            description=view.description,
            created_at=view.created_at,
            disabled_reason=view.disabled_reason,
            previous_secret_expires_at=view.previous_secret_expires_at,
        )

    @classmethod
    def from_delivery_row(cls, row: RowMapping) -> WebhookEndpointType:
        """Build from a delivery row's ``endpoint_*`` columns (`outbound.deliveries`)."""
        return cls.of(
            EndpointView(
                id=row["endpoint_id"],
                url=row["endpoint_url"],
                topics=[t for t in WebhookTopic if t.value in set(row["endpoint_topics"])],
                enabled=row["endpoint_enabled"],
                disabled_reason=row["endpoint_disabled_reason"],
                description=row["endpoint_description"],
                created_at=row["endpoint_created_at"],
                previous_secret_expires_at=row["endpoint_previous_secret_expires_at"],
            )
        )


@strawberry.type(
    name="WebhookDelivery",
    description="One event for one endpoint, and how sending it went. Every attempt sends "
    "the same body with the same webhook-id.",
)
class WebhookDeliveryType:
    """One event for one endpoint."""

    id: strawberry.ID = strawberry.field(
        description="The delivery's number (retryWebhookDelivery)."
    )
    endpoint: WebhookEndpointType = strawberry.field(description="Where it goes.")
    message_id: str = strawberry.field(
        description="The webhook-id header: the same on every attempt, so a receiver can "
        "drop a repeat."
    )
    topic: WebhookTopic = strawberry.field(description="What happened.")
    status: WebhookDeliveryStatus = strawberry.field(description="Where it stands.")
    attempts: int = strawberry.field(description="Attempts made so far (0 before the first).")
    last_status_code: int | None = strawberry.field(
        description="The HTTP status of the last attempt; null before one, or when no answer "
        "came (timeout, refused connection)."
    )
    last_error: str | None = strawberry.field(
        description="Why the last attempt failed, when it did (timeout, a non-2xx status...)."
    )
    last_response_body: str | None = strawberry.field(
        description="The start of the receiver's last answer (at most 1024 characters)."
    )
    next_attempt_at: datetime | None = strawberry.field(
        description="When it is due next while PENDING; null once SUCCEEDED or FAILED."
    )
    created_at: datetime = strawberry.field(description="When the event was written.")
    payload: str = strawberry.field(description="The exact JSON body sent.")

    @classmethod
    def from_row(cls, row: RowMapping) -> WebhookDeliveryType:
        """Build from a row of `outbound.deliveries` (outbox columns and ``endpoint_*``)."""
        status = DeliveryStatus(row["status"])
        return cls(
            id=strawberry.ID(str(row["id"])),
            endpoint=WebhookEndpointType.from_delivery_row(row),
            message_id=row["message_id"],
            topic=WebhookTopic(row["topic"]),
            status=status,
            attempts=row["attempts"],
            last_status_code=row["last_status_code"],
            last_error=row["last_error"],
            last_response_body=row["last_response_body"],
            next_attempt_at=row["next_attempt_at"] if status == DeliveryStatus.PENDING else None,
            created_at=row["created_at"],
            payload=row["payload"],
        )


@strawberry.type(name="WebhookDeliveryEdge", description="A webhook delivery with its cursor.")
class WebhookDeliveryEdge:
    """A webhook delivery with its cursor."""

    cursor: str = strawberry.field(
        description="Opaque; pass as `webhookDeliveries(after:)` to read on with older ones."
    )
    node: WebhookDeliveryType = strawberry.field(description="The delivery.")


@strawberry.type(
    name="WebhookDeliveryConnection",
    description="A page of webhook deliveries, newest first.",
)
class WebhookDeliveryConnection:
    """A page of webhook deliveries, newest first."""

    edges: list[WebhookDeliveryEdge] = strawberry.field(description="The deliveries of this page.")
    page_info: PageInfo = strawberry.field(description="Whether older deliveries follow.")
    total_count: int = strawberry.field(
        description="How many deliveries match the filters in all, on every page together."
    )


@strawberry.input(description="Admin: a new webhook endpoint (createWebhookEndpoint).")
class CreateWebhookEndpointInput:
    """Admin: a new webhook endpoint."""

    url: str = strawberry.field(
        description="Absolute https URL, at most 2048 characters, no user info or fragment, "
        "whose host resolves to public addresses only (outside development); refused: "
        "WEBHOOK_URL_NOT_ALLOWED."
    )
    topics: list[WebhookTopic] = strawberry.field(
        description="1 to 11 distinct topics (INVALID_INPUT otherwise)."
    )
    description: str | None = strawberry.field(
        default=None, description="A note for admins, up to 500 characters."
    )


@strawberry.input(
    description="Admin: what to change on a webhook endpoint (updateWebhookEndpoint)."
)
class UpdateWebhookEndpointInput:
    """Admin: change an endpoint; fields left out stay as they are."""

    id: strawberry.ID = strawberry.field(description="WebhookEndpoint.id.")
    url: str | None = strawberry.field(
        default=None, description="A new URL, checked as at creation; null: unchanged."
    )
    topics: list[WebhookTopic] | None = strawberry.field(
        default=None, description="The new topics (1 to 11 distinct); null: unchanged."
    )
    enabled: bool | None = strawberry.field(
        default=None,
        description="True turns it back on (e.g. after a 410 disabled it), false off; null: "
        "unchanged.",
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="A new note (up to 500 characters); null or blank clears it; left out: "
        "unchanged.",
    )


@strawberry.type(
    description="The endpoint and its signing secret, after createWebhookEndpoint or "
    "rotateWebhookEndpointSecret."
)
class CreateWebhookEndpointPayload:
    """The endpoint and its new secret, or why not."""

    endpoint: WebhookEndpointType | None = strawberry.field(
        description="The endpoint as committed; null when refused."
    )
    secret: str | None = strawberry.field(
        description='The signing secret, "whsec_" + base64: shown this once and never again '
        "(it is stored encrypted). Verify with any Standard Webhooks library, e.g. "
        "`standardwebhooks.Webhook(secret).verify(body, headers)`. Null when refused."
    )
    user_errors: list[UserError] = strawberry.field(description=_USER_ERRORS)


@strawberry.type(description="The endpoint after updateWebhookEndpoint or deleteWebhookEndpoint.")
class WebhookEndpointPayload:
    """The endpoint, or why not."""

    endpoint: WebhookEndpointType | None = strawberry.field(
        description="The endpoint as committed (as it was, for a delete); null when refused."
    )
    user_errors: list[UserError] = strawberry.field(description=_USER_ERRORS)


@strawberry.type(description="The delivery after retryWebhookDelivery.")
class WebhookDeliveryPayload:
    """The delivery, or why not."""

    delivery: WebhookDeliveryType | None = strawberry.field(
        description="The delivery, PENDING and due now; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(description=_USER_ERRORS)
