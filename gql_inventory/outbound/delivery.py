"""The outbox's delivery statements: claim due messages under a lease, record how an
attempt went, read the pending figures (ADR 0019).

A claim is one statement in its own short transaction: it takes due PENDING rows with
``FOR UPDATE SKIP LOCKED`` (so concurrent workers never take the same row), counts the
attempt and moves ``next_attempt_at`` past a lease. Once it commits no other worker takes
the row until the lease ends; the send happens outside any transaction; the outcome is one
UPDATE guarded by the attempt number, so an attempt whose lease ran out cannot overwrite
a newer one. A process that dies after the claim leaves the row to be claimed again after
the lease, with the same message id: delivery is at least once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.kit import metrics
from gql_inventory.models import DeliveryStatus, OutboxChannel
from gql_inventory.outbound.messages import (
    ClaimedMessage,
    EndpointSnapshot,
    SendOutcome,
    kept_body,
)
from gql_inventory.outbound.outbox import NewMessage, OperatorTopic, enqueue, event_body
from gql_inventory.settings import Settings

#: The claim. Webhook rows: per enabled endpoint, at most its free slots
#: (`webhook_slots` less what this process has in flight to it), through the
#: (endpoint_id, next_attempt_at, id) partial index; e-mail rows: at most `email_slots`.
#: Rows of disabled endpoints are never claimed (they wait, PENDING, for a re-enable).
#: Each webhook row comes back with its endpoint's url, state and sealed secrets.
_CLAIM = text(
    """
    WITH webhook AS (
      SELECT m.id, m.next_attempt_at, e.id AS endpoint_id
      FROM webhook_endpoints e
      LEFT JOIN unnest(CAST(:busy_ids AS uuid[]), CAST(:busy_counts AS int[]))
        AS busy(endpoint_id, n) ON busy.endpoint_id = e.id
      CROSS JOIN LATERAL (
        SELECT o.id, o.next_attempt_at FROM outbox_messages o
        WHERE o.endpoint_id = e.id AND o.status = 'PENDING' AND o.next_attempt_at <= now()
        ORDER BY o.next_attempt_at, o.id
        LIMIT greatest(:webhook_slots - coalesce(busy.n, 0), 0)
        FOR UPDATE OF o SKIP LOCKED
      ) m
      WHERE e.enabled AND :webhook_slots > 0
    ), email AS (
      SELECT o.id, o.next_attempt_at, CAST(NULL AS uuid) AS endpoint_id FROM outbox_messages o
      WHERE o.channel = 'EMAIL' AND o.status = 'PENDING' AND o.next_attempt_at <= now()
      ORDER BY o.next_attempt_at, o.id
      LIMIT :email_slots
      FOR UPDATE SKIP LOCKED
    ), picked AS (
      SELECT id, endpoint_id FROM (SELECT * FROM webhook UNION ALL SELECT * FROM email) due
      ORDER BY next_attempt_at, id
      LIMIT :limit
    )
    UPDATE outbox_messages o
    SET attempts = o.attempts + 1,
        next_attempt_at = now() + make_interval(secs => :lease),
        updated_at = now()
    FROM picked LEFT JOIN webhook_endpoints e ON e.id = picked.endpoint_id
    WHERE o.id = picked.id
    RETURNING o.id, o.channel, o.message_id, o.topic, o.payload, o.attempts, o.created_at,
              o.endpoint_id, o.recipient, e.url, e.enabled, e.secret_ciphertext,
              e.previous_secret_ciphertext, e.previous_secret_expires_at
    """
)


async def claim(
    session: AsyncSession,
    *,
    webhook_slots: int,
    busy: Mapping[uuid.UUID, int],
    email_slots: int,
    limit: int,
    lease_seconds: float,
) -> list[ClaimedMessage]:
    """Claim up to `limit` due messages for one attempt each, oldest due first (see the
    module; the caller commits). `webhook_slots`: requests one process may have in flight
    per endpoint (0: claim no webhook rows), `busy`: those it has now, by endpoint id;
    `email_slots`: e-mail rows to take (0: none). Each claimed row's next_attempt_at moves
    `lease_seconds` ahead. Ordering between messages is not guaranteed to receivers."""
    if limit <= 0 or (webhook_slots <= 0 and email_slots <= 0):
        return []
    rows = await session.execute(
        _CLAIM,
        {
            "busy_ids": list(busy),
            "busy_counts": list(busy.values()),
            "webhook_slots": max(webhook_slots, 0),
            "email_slots": max(email_slots, 0),
            "limit": limit,
            "lease": float(lease_seconds),
        },
    )
    return [
        ClaimedMessage(
            id=r.id,
            channel=r.channel,
            message_id=r.message_id,
            topic=r.topic,
            payload=r.payload,
            attempt=r.attempts,
            created_at=r.created_at,
            endpoint_id=r.endpoint_id,
            recipient=r.recipient,
            endpoint=None
            if r.url is None
            else EndpointSnapshot(
                r.url,
                r.enabled,
                r.secret_ciphertext,
                r.previous_secret_ciphertext,
                r.previous_secret_expires_at,
            ),
        )
        for r in sorted(rows, key=lambda r: r.id)
    ]


#: Every outcome of a flush in one statement, each row guarded by its attempt.
_RECORD = text(
    """
    UPDATE outbox_messages o
    SET status = r.status, last_status_code = r.code, last_error = r.error,
        last_response_body = r.body, updated_at = now(),
        next_attempt_at = now() + make_interval(secs => r.delay),
        completed_at = CASE WHEN r.delay IS NULL THEN now() END
    FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS int[]), CAST(:statuses AS text[]),
                CAST(:codes AS int[]), CAST(:errors AS text[]), CAST(:bodies AS text[]),
                CAST(:delays AS float8[]))
      AS r(id, attempt, status, code, error, body, delay)
    WHERE o.id = r.id AND o.attempts = r.attempt AND o.status = 'PENDING'
    RETURNING o.id, o.attempts
    """
)

_DISABLE = text(
    """
    UPDATE webhook_endpoints SET enabled = false, disabled_reason = :reason, updated_at = now()
    WHERE id = :id AND enabled
    """
)


def next_status(attempt: int, outcome: SendOutcome, schedule: list[int]) -> tuple[str, int]:
    """The status an attempt (numbered from 1) leaves its message in, and the seconds until
    the next one: SUCCEEDED when delivered; FAILED on 410 Gone or once the schedule is
    used up (attempt ``len(schedule) + 1``); else PENDING after ``schedule[attempt - 1]``."""
    if outcome.delivered:
        return DeliveryStatus.SUCCEEDED.value, 0
    if outcome.gone or attempt > len(schedule):
        return DeliveryStatus.FAILED.value, 0
    return DeliveryStatus.PENDING.value, schedule[attempt - 1]


async def record(
    session: AsyncSession, message: ClaimedMessage, outcome: SendOutcome, settings: Settings
) -> str | None:
    """`record_many` of one attempt: its status, or None when it was stale."""
    (status,) = await record_many(session, [(message, outcome)], settings)
    return status


async def record_many(
    session: AsyncSession,
    attempts: Sequence[tuple[ClaimedMessage, SendOutcome]],
    settings: Settings,
) -> list[str | None]:
    """Record how each attempt went, in the caller's transaction, with one UPDATE for all:
    each message's new status (`next_status` with `settings.webhook_retry_schedule`), the
    answer (status code, error, body cut to 1 KiB). A 410 also disables the endpoint; a
    webhook delivery that turns FAILED enqueues one DELIVERY_FAILED e-mail per
    `settings.alert_emails` address. Returns each attempt's status in order, None for an
    attempt no longer its message's latest (its lease ran out and another worker claimed
    it again, or it was retried by hand): nothing written for it."""
    schedule = settings.webhook_retry_schedule
    moves = [next_status(m.attempt, o, schedule) for m, o in attempts]
    written = await session.execute(
        _RECORD,
        {
            "ids": [m.id for m, _ in attempts],
            "attempts": [m.attempt for m, _ in attempts],
            "statuses": [status for status, _ in moves],
            "codes": [o.status_code for _, o in attempts],
            "errors": [o.error for _, o in attempts],
            "bodies": [kept_body(o.body) for _, o in attempts],
            "delays": [
                float(delay) if status == DeliveryStatus.PENDING.value else None
                for status, delay in moves
            ],
        },
    )
    done = {(row.id, row.attempts) for row in written}
    found: list[str | None] = []
    for (message, outcome), (status, _) in zip(attempts, moves, strict=True):
        if (message.id, message.attempt) not in done:
            metrics.OUTBOX_ATTEMPTS.labels(message.channel, "STALE").inc()
            found.append(None)
            continue
        metrics.OUTBOX_ATTEMPTS.labels(message.channel, status).inc()
        found.append(status)
        if message.endpoint_id is None:
            continue
        if outcome.gone:
            at = datetime.now(UTC).isoformat()
            reason = f"410 Gone answered to {message.message_id} at {at}"
            await session.execute(_DISABLE, {"id": message.endpoint_id, "reason": reason})
        if status == DeliveryStatus.FAILED.value and settings.operator_mail_enabled():
            await _alert_operators(session, message, outcome, settings.alert_emails)
    return found


async def _alert_operators(
    session: AsyncSession, message: ClaimedMessage, outcome: SendOutcome, addresses: list[str]
) -> None:
    """One DELIVERY_FAILED e-mail per address, in the outcome's transaction."""
    url = (
        await session.execute(
            text("SELECT url FROM webhook_endpoints WHERE id = :id"), {"id": message.endpoint_id}
        )
    ).scalar_one_or_none()
    data = {
        "endpointId": str(message.endpoint_id),
        "url": url,
        "messageId": message.message_id,
        "topic": message.topic,
        "attempts": message.attempt,
        "lastStatusCode": outcome.status_code,
        "lastError": outcome.error,
        "endpointDisabled": outcome.gone,
    }
    body = event_body(OperatorTopic.DELIVERY_FAILED, data, datetime.now(UTC))
    await enqueue(
        session,
        [NewMessage(OperatorTopic.DELIVERY_FAILED, body, recipient=a) for a in addresses],
    )


_PENDING_FIGURES = text(
    """
    SELECT count(*) AS pending,
           coalesce(extract(epoch FROM now() - min(o.created_at)), 0) AS oldest
    FROM outbox_messages o
    LEFT JOIN webhook_endpoints e ON e.id = o.endpoint_id
    WHERE o.status = 'PENDING' AND (o.channel = :email OR e.enabled)
    """
)


async def refresh_gauges(session: AsyncSession) -> tuple[int, float]:
    """Read the PENDING count and the oldest PENDING message's age (seconds) into the
    metrics `OUTBOX_PENDING` and `OUTBOX_OLDEST_PENDING_SECONDS`, and return them. Rows of
    disabled endpoints are left out: nothing will send them until the endpoint is enabled."""
    row = (await session.execute(_PENDING_FIGURES, {"email": OutboxChannel.EMAIL.value})).one()
    pending, oldest = int(row.pending), float(row.oldest)
    metrics.OUTBOX_PENDING.set(pending)
    metrics.OUTBOX_OLDEST_PENDING_SECONDS.set(oldest)
    return pending, oldest
