"""Idempotency keys: the same key and input returns the first result; another input conflicts.

The record is claimed with ``INSERT ... ON CONFLICT DO NOTHING`` in the same
transaction as the work, so a concurrent second call waits on the unique index
until the first commits (then replays its result) or rolls back (then does the
work itself). A failed call stores nothing, so a retry with the same key may
succeed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.inventory.errors import IdempotencyConflict, InvalidInput
from gql_inventory.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


def request_hash(payload: Any) -> str:
    """SHA-256 hex of the canonical JSON of an operation's input."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(
    session: AsyncSession, *, scope: str, key: str, payload: Any
) -> dict[str, Any] | None:
    """Claim `key` in `scope` for this transaction's work.

    Returns None when the key is new (do the work, then call `record`), or the
    stored result of the first call with the same input. Raises
    `IdempotencyConflict` when the key was used with another input, and
    `InvalidInput` for an empty or over-long key.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"idempotency key must be 1 to {MAX_KEY_LENGTH} characters",
            field=["input", "idempotencyKey"],
        )
    digest = request_hash(payload)
    inserted = await session.execute(
        insert(IdempotencyRecord)
        .values(scope=scope, key=key, request_hash=digest, result={})
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(IdempotencyRecord.key)
    )
    if inserted.first() is not None:
        return None
    row = (
        await session.execute(
            select(IdempotencyRecord.request_hash, IdempotencyRecord.result).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
            )
        )
    ).one()
    if row.request_hash != digest:
        raise IdempotencyConflict(
            "idempotency key was already used with a different input",
            field=["input", "idempotencyKey"],
        )
    return dict(row.result)


async def record(session: AsyncSession, *, scope: str, key: str, result: dict[str, Any]) -> None:
    """Store the result of the work claimed under `key` (same transaction)."""
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
        .values(result=result)
    )
