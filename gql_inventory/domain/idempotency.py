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


def check_key(key: IdempotencyKey) -> None:
    """Raise `InvalidInput` for a key `claim` would refuse (empty, too long, or an
    anonymous key shorter than `MIN_ANONYMOUS_KEY_LENGTH`)."""
    _check(key)


#: ``(owner, key value)``: an idempotency key as the table identifies it within a scope.
KeyId = tuple[str, str]

_CLAIM_MANY = """
INSERT INTO idempotency_records (scope, owner, key, request_hash, result)
SELECT $1, w.owner, w.key, w.request_hash, '{}'::jsonb
  FROM unnest($2::text[], $3::text[], $4::text[]) AS w(owner, key, request_hash)
    ON CONFLICT (scope, owner, key) DO NOTHING
RETURNING owner, key
"""

_STORED = """
SELECT r.owner, r.key, r.request_hash, r.result::text AS result
  FROM idempotency_records r
  JOIN unnest($2::text[], $3::text[]) AS w(owner, key) ON (r.owner, r.key) = (w.owner, w.key)
 WHERE r.scope = $1
"""

_SETTLE_MANY = """
WITH won AS (
    UPDATE idempotency_records r
       SET request_hash = w.request_hash, result = w.result::jsonb
      FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
           AS w(owner, key, request_hash, result)
     WHERE r.scope = $1 AND (r.owner, r.key) = (w.owner, w.key)
)
DELETE FROM idempotency_records r
 USING unnest($6::text[], $7::text[]) AS d(owner, key)
 WHERE r.scope = $1 AND (r.owner, r.key) = (d.owner, d.key)
"""


async def claim_many(
    conn: Any, *, scope: str, wanted: dict[KeyId, str]
) -> dict[KeyId, tuple[str, dict[str, Any]]]:
    """`claim` for many keys at once on the asyncpg connection `conn` (in a transaction).

    `wanted` maps each key to the request hash it is claimed with. Returns, for each key
    already used by an earlier committed call, ``(its request hash, its result)``; the
    other keys are now claimed by this transaction (a concurrent claim of the same key
    is waited for, as in `claim`), to be settled by `settle_many`.
    """
    if not wanted:
        return {}
    owners, keys = [k[0] for k in wanted], [k[1] for k in wanted]
    inserted = await conn.fetch(_CLAIM_MANY, scope, owners, keys, list(wanted.values()))
    taken = set(wanted) - {(r["owner"], r["key"]) for r in inserted}
    if not taken:
        return {}
    rows = await conn.fetch(_STORED, scope, [k[0] for k in taken], [k[1] for k in taken])
    return {(r["owner"], r["key"]): (r["request_hash"], json.loads(r["result"])) for r in rows}


async def settle_many(
    conn: Any,
    *,
    scope: str,
    won: dict[KeyId, tuple[str, dict[str, Any]]],
    unused: list[KeyId],
) -> None:
    """Store each key's ``(request hash, result)`` in `won`, and give back the keys of
    `unused` (claimed by `claim_many` for work that was refused: as with `claim`, a
    failed call stores nothing, so a retry with the same key may succeed)."""
    if not won and not unused:
        return
    await conn.execute(
        _SETTLE_MANY,
        scope,
        [k[0] for k in won],
        [k[1] for k in won],
        [h for h, _ in won.values()],
        [json.dumps(r) for _, r in won.values()],
        [k[0] for k in unused],
        [k[1] for k in unused],
    )
