"""What a delivery worker hands a sender, and what the sender answers (both channels)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

#: Response bodies are kept to this many characters (issue 17: 1 KiB).
MAX_KEPT_BODY = 1024


@dataclass(frozen=True, slots=True)
class EndpointSnapshot:
    """A webhook endpoint as its message's claim read it (same statement): `url`,
    `enabled`, the sealed (Fernet token) current secret and, during a rotation, the
    previous one and when it stops signing."""

    url: str
    enabled: bool
    secret: str
    previous: str | None
    previous_until: datetime | None


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """An outbox row claimed for one attempt: `attempt` counts from 1; `payload` is the exact
    JSON body; `endpoint_id` for WEBHOOK rows (`endpoint`: that endpoint as the claim
    read it), `recipient` for EMAIL rows."""

    id: int
    channel: str
    message_id: str
    topic: str
    payload: str
    attempt: int
    created_at: datetime
    endpoint_id: uuid.UUID | None = None
    recipient: str | None = None
    endpoint: EndpointSnapshot | None = None


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """How one attempt went: `delivered` (2xx, or the SMTP server accepted it); `gone` (the
    receiver answered 410: disable the endpoint, no retry; for an EMAIL row, which has no
    endpoint: a permanent refusal, FAILED now, no retry); otherwise retried on the
    schedule. `status_code` is the HTTP status (or SMTP reply code), `error` a short reason
    (timeout, refused address...), `body` the response body cut to `MAX_KEPT_BODY`."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None
    body: str | None = None
    gone: bool = False


class Sender(Protocol):
    """One channel's sender: one attempt of `message`, never raising for the receiver's
    failures (they are a `SendOutcome`)."""

    async def __call__(self, message: ClaimedMessage) -> SendOutcome: ...


def kept_body(text: str | None) -> str | None:
    """`text` cut to `MAX_KEPT_BODY` characters (None stays None)."""
    return None if text is None else text[:MAX_KEPT_BODY]
