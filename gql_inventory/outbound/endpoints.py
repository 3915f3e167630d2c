"""Webhook endpoints (admin): create, update, delete, rotate the signing secret, list.

A new endpoint's URL passes `outbound.urls.check_url` (the SSRF guard); its secret is made
here (`secrets.new_secret`), stored only sealed (`SecretBox.seal`) and handed back once, to
the caller, never logged. Writes run in the caller's transaction and never commit; the
endpoint row is locked (``FOR UPDATE``) before an update, a rotation or a delete.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.errors import (
    DomainError,
    FieldPath,
    InvalidInput,
    WebhookEndpointNotFound,
    argument,
    in_input,
    raise_all,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import WebhookEndpoint, WebhookTopic
from gql_inventory.outbound.secrets import new_secret, secret_box
from gql_inventory.outbound.urls import check_url
from gql_inventory.settings import Settings

#: Longest endpoint `description`, in characters.
MAX_DESCRIPTION_LENGTH = 500
#: Why an endpoint was turned off by an admin (`disabled_reason`; a 410 answer sets its own).
DISABLED_BY_ADMIN = "disabled by an admin"

ENDPOINT_ID = in_input("id")
ID_ARGUMENT = argument("id")


class _Keep(enum.Enum):
    KEEP = "KEEP"


#: "Leave this field as it is" for `update_endpoint`.
KEEP: Final = _Keep.KEEP


@dataclass(frozen=True, slots=True)
class EndpointView:
    """An endpoint as clients see it (no secret): `topics` in `WebhookTopic` order."""

    id: uuid.UUID
    url: str
    topics: list[WebhookTopic]
    enabled: bool
    disabled_reason: str | None
    description: str | None
    created_at: datetime
    previous_secret_expires_at: datetime | None

    @classmethod
    def of(cls, row: WebhookEndpoint) -> EndpointView:
        """The view of a `webhook_endpoints` row."""
        return cls(
            id=row.id,
            url=row.url,
            topics=_ordered(WebhookTopic(t) for t in row.topics),
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            description=row.description,
            created_at=row.created_at,
            previous_secret_expires_at=row.previous_secret_expires_at,
        )


@dataclass(frozen=True, slots=True)
class EndpointWithSecret:
    """An endpoint and its new signing secret (``whsec_`` + base64), shown this once."""

    endpoint: EndpointView
    secret: str


def _ordered(topics: object) -> list[WebhookTopic]:
    chosen = set(topics)  # type: ignore[call-overload]
    return [t for t in WebhookTopic if t in chosen]


def parse_endpoint_id(raw: str, *, field: FieldPath = ENDPOINT_ID) -> uuid.UUID:
    """An endpoint id as issued (a UUID). Anything else is `WebhookEndpointNotFound`."""
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise WebhookEndpointNotFound("no such webhook endpoint", field=field) from None


def _topic_errors(topics: Sequence[WebhookTopic], field: FieldPath) -> list[DomainError]:
    if not topics:
        return [InvalidInput("give at least one topic", field=field)]
    if len(set(topics)) != len(topics):
        return [InvalidInput("a topic is listed twice", field=field)]
    return []


def _description_errors(description: str | None, field: FieldPath) -> list[DomainError]:
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        return [
            InvalidInput(
                f"the description is longer than {MAX_DESCRIPTION_LENGTH} characters",
                field=field,
            )
        ]
    return []


async def _check(url: str | None, settings: Settings, errors: list[DomainError]) -> None:
    """`errors` plus the URL's refusal (when one is given), all raised at once."""
    if url is not None:
        try:
            await check_url(
                url, allow_private=settings.private_urls_allowed(), field=in_input("url")
            )
        except DomainError as error:
            errors.insert(0, error)
    raise_all(errors)


def _blank_to_none(description: str | None) -> str | None:
    return description if description is None or description.strip() else None


async def create_endpoint(
    uow: UnitOfWork,
    *,
    url: str,
    topics: Sequence[WebhookTopic],
    description: str | None,
    settings: Settings,
) -> EndpointWithSecret:
    """A new enabled endpoint and its secret (returned once; stored sealed only).

    Refusals (all listed together): `UrlNotAllowed` (field url: malformed, too long, not
    https or private outside development, see `check_url`), `InvalidInput` (no topics, a
    topic twice; a description over 500 characters).
    """
    errors = _topic_errors(topics, in_input("topics"))
    errors += _description_errors(description, in_input("description"))
    await _check(url, settings, errors)
    secret = new_secret()
    row = WebhookEndpoint(
        id=uuid.uuid4(),
        url=url,
        topics=[t.value for t in _ordered(topics)],
        description=_blank_to_none(description),
        secret_ciphertext=secret_box(settings).seal(secret),
    )
    uow.session.add(row)
    await uow.session.flush()
    await uow.session.refresh(row)
    return EndpointWithSecret(endpoint=EndpointView.of(row), secret=secret)


async def _locked(
    session: AsyncSession, endpoint_id: uuid.UUID, field: FieldPath
) -> WebhookEndpoint:
    row = await session.scalar(
        select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).with_for_update()
    )
    if row is None:
        raise WebhookEndpointNotFound("no such webhook endpoint", field=field)
    return row


async def update_endpoint(
    uow: UnitOfWork,
    *,
    endpoint_id: uuid.UUID,
    settings: Settings,
    url: str | _Keep = KEEP,
    topics: Sequence[WebhookTopic] | _Keep = KEEP,
    enabled: bool | _Keep = KEEP,
    description: str | _Keep | None = KEEP,
) -> EndpointView:
    """Change what is given (`KEEP`: as it is). A changed URL is checked again; `enabled`
    true turns the endpoint back on (its `disabled_reason` cleared), false turns it off
    (`DISABLED_BY_ADMIN`); a null or blank `description` clears it.

    Refusals: `WebhookEndpointNotFound` (field id), then those of `create_endpoint`.
    """
    row = await _locked(uow.session, endpoint_id, ENDPOINT_ID)
    errors: list[DomainError] = []
    if not isinstance(topics, _Keep):
        errors += _topic_errors(topics, in_input("topics"))
    if not isinstance(description, _Keep):
        errors += _description_errors(description, in_input("description"))
    changed_url = url if not isinstance(url, _Keep) and url != row.url else None
    await _check(changed_url, settings, errors)
    if changed_url is not None:
        row.url = changed_url
    if not isinstance(topics, _Keep):
        row.topics = [t.value for t in _ordered(topics)]
    if not isinstance(description, _Keep):
        row.description = _blank_to_none(description)
    if not isinstance(enabled, _Keep) and enabled != row.enabled:
        row.enabled = enabled
        row.disabled_reason = None if enabled else DISABLED_BY_ADMIN
    row.updated_at = func.now()
    await uow.session.flush()
    await uow.session.refresh(row)
    return EndpointView.of(row)


async def rotate_secret(
    uow: UnitOfWork, *, endpoint_id: uuid.UUID, settings: Settings
) -> EndpointWithSecret:
    """A new secret for the endpoint (returned once). The current one becomes the previous
    secret and still signs for `WEBHOOK_SECRET_OVERLAP_SECONDS` (until
    `previous_secret_expires_at`); an older previous secret is dropped.

    Refusal: `WebhookEndpointNotFound` (argument id).
    """
    row = await _locked(uow.session, endpoint_id, ID_ARGUMENT)
    secret = new_secret()
    now = await uow.session.scalar(select(func.now()))
    assert now is not None
    row.previous_secret_ciphertext = row.secret_ciphertext
    row.previous_secret_expires_at = now + timedelta(
        seconds=settings.webhook_secret_overlap_seconds
    )
    row.secret_ciphertext = secret_box(settings).seal(secret)
    row.updated_at = now
    await uow.session.flush()
    await uow.session.refresh(row)
    return EndpointWithSecret(endpoint=EndpointView.of(row), secret=secret)


async def delete_endpoint(uow: UnitOfWork, *, endpoint_id: uuid.UUID) -> EndpointView:
    """Delete the endpoint and, by the foreign key's ON DELETE CASCADE, its deliveries
    (pending ones are never sent). Returns it as it was.

    Refusal: `WebhookEndpointNotFound` (argument id).
    """
    row = await _locked(uow.session, endpoint_id, ID_ARGUMENT)
    view = EndpointView.of(row)
    await uow.session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
    uow.session.expunge(row)
    return view


async def list_endpoints(session: AsyncSession) -> list[EndpointView]:
    """Every endpoint, oldest first (`created_at`, then id)."""
    rows = await session.scalars(
        select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return [EndpointView.of(r) for r in rows]
