"""Cursors at the GraphQL edge: the live package's codec, with `InvalidCursor` answered
as `BadCursor` (code ``BAD_CURSOR``, the same message), or `CursorExpired` (code
``CURSOR_EXPIRED``) for a resume cursor that is too old to replay from."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from gql_inventory.live import cursors, ledger
from gql_inventory.live.cursors import InvalidCursor, encode_cursor
from gql_inventory.live.replay import ReplayGate, ReplayRefused
from gql_inventory.schema.errors import BadCursor, CursorExpired

__all__ = ["check_stock_cursor", "decode_cursor", "decode_keyset_cursor", "encode_cursor"]


def decode_cursor(kind: str, cursor: str) -> int:
    """The integer inside a pagination cursor of `kind`. Raises `BadCursor`."""
    try:
        return cursors.decode_cursor(kind, cursor)
    except InvalidCursor as exc:
        raise BadCursor(str(exc)) from exc


async def check_stock_cursor(
    conn: AsyncConnection, cursor: str, gate: ReplayGate, *, admin: bool
) -> int:
    """The ledger position inside a `stockChanged` resume cursor. Raises `BadCursor` when
    it is malformed or ahead of the ledger, `CursorExpired` when it is older than what is
    kept or further behind the head than the replay window of the caller's role
    (`live.replay.ReplayGate.check_window`, docs/adr/0014-explicit-fan-out.md)."""
    try:
        position, head = await ledger.check_cursor_at_head(conn, cursor)
    except InvalidCursor as exc:
        if exc.problem == "expired":
            raise CursorExpired(str(exc)) from exc
        raise BadCursor(str(exc)) from exc
    try:
        gate.check_window(position, head, admin=admin)
    except ReplayRefused as exc:
        raise CursorExpired(
            f"stock cursor too old: resuming replays at most the last {int(exc.limit)} "
            f"events and this cursor is {exc.behind} behind; re-read current stock and "
            "subscribe without `after`"
        ) from exc
    return position


def decode_keyset_cursor(kind: str, cursor: str) -> tuple[datetime, uuid.UUID]:
    """The ``(timestamp, id)`` inside a keyset cursor of `kind`. Raises `BadCursor`."""
    try:
        return cursors.decode_keyset_cursor(kind, cursor)
    except InvalidCursor as exc:
        raise BadCursor(str(exc)) from exc
