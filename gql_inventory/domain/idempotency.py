"""Idempotency keys: the same key and input returns the first result; another input conflicts.

The record is claimed with ``INSERT ... ON CONFLICT DO NOTHING`` in the same
transaction as the work, so a concurrent second call waits on the unique index
until the first commits (then replays its result) or rolls back (then does the
work itself). A failed call stores nothing, so a retry with the same key may
succeed.

A key is a secret: the first call's result (a reservation id, say) is a
capability, and replaying it to whoever sends the same key would hand it over.
So keys are scoped by their owner (`IdempotencyKey.owner`: ``storefront`` for
anonymous callers, ``admin:<name>`` for an admin), and an anonymous key must be
at least `MIN_ANONYMOUS_KEY_LENGTH` characters: clients send a UUIDv4 (the rule
of Stripe's own API, https://docs.stripe.com/api/idempotent_requests).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.errors import (
    IdempotencyConflict,
    InvalidInput,
    in_input,
)
from gql_inventory.models import IdempotencyRecord

MAX_KEY_LENGTH = 255
#: Shortest key an anonymous (storefront) caller may send: a UUIDv4 has 36 characters.
MIN_ANONYMOUS_KEY_LENGTH = 16
#: Owner of keys sent without an admin token.
STOREFRONT = "storefront"


@dataclass(frozen=True)
class IdempotencyKey:
    """A caller's idempotency key and who owns it.

    `value` is what the client sent; `owner` is ``storefront`` (anonymous) or
    ``admin:<name>``. Two owners never see each other's results, even with equal values.
    """

    value: str
    owner: str = STOREFRONT

    @classmethod
    def of(cls, value: str | None, *, owner: str) -> IdempotencyKey | None:
        """The key `value` sent by `owner`, or None when no key was sent."""
        return None if value is None else cls(value=value, owner=owner)


def request_hash(payload: Any) -> str:
    """SHA-256 hex of the canonical JSON of an operation's input."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check(key: IdempotencyKey) -> None:
    """Raise `InvalidInput` for a key that is empty, too long, or (anonymous) too short."""
    field = in_input("idempotency_key")
    if not key.value or len(key.value) > MAX_KEY_LENGTH:
        raise InvalidInput(f"idempotency key must be 1 to {MAX_KEY_LENGTH} characters", field=field)
    if key.owner == STOREFRONT and len(key.value) < MIN_ANONYMOUS_KEY_LENGTH:
        raise InvalidInput(
            f"idempotency key must be at least {MIN_ANONYMOUS_KEY_LENGTH} characters "
            "(send a random UUIDv4): a short key can be guessed and replays its result "
            "to whoever sends it",
            field=field,
        )


async def claim(
    session: AsyncSession, *, scope: str, key: IdempotencyKey, payload: Any
) -> dict[str, Any] | None:
    """Claim `key` in `scope` (the operation's name) for this transaction's work.

    Returns None when the key is new for its owner (do the work, then call
    `record`), or the stored result of the owner's first call with the same input.
    Raises `IdempotencyConflict` when the key was used with another input, and
    `InvalidInput` for an empty or over-long key, or an anonymous key shorter than
    `MIN_ANONYMOUS_KEY_LENGTH`.
    """
    _check(key)
    digest = request_hash(payload)
    inserted = await session.execute(
        insert(IdempotencyRecord)
        .values(scope=scope, owner=key.owner, key=key.value, request_hash=digest, result={})
        .on_conflict_do_nothing(index_elements=["scope", "owner", "key"])
        .returning(IdempotencyRecord.key)
    )
    if inserted.first() is not None:
        return None
    row = (
        await session.execute(
            select(IdempotencyRecord.request_hash, IdempotencyRecord.result).where(
                IdempotencyRecord.scope == scope,
                IdempotencyRecord.owner == key.owner,
                IdempotencyRecord.key == key.value,
            )
        )
    ).one()
    if row.request_hash != digest:
        raise IdempotencyConflict(
            "idempotency key was already used with a different input",
            field=in_input("idempotency_key"),
        )
    return dict(row.result)


async def record(
    session: AsyncSession, *, scope: str, key: IdempotencyKey, result: dict[str, Any]
) -> None:
    """Store the result of the work claimed under `key` (same transaction)."""
    await session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.owner == key.owner,
            IdempotencyRecord.key == key.value,
        )
        .values(result=result)
    )
