"""Cursors at the GraphQL edge: the live package's codec, with `InvalidCursor` answered
as `BadCursor` (code ``BAD_CURSOR``, the same message)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from gql_inventory.live import cursors, ledger
from gql_inventory.live.cursors import InvalidCursor, encode_cursor
from gql_inventory.schema.errors import BadCursor

__all__ = ["check_stock_cursor", "decode_cursor", "decode_keyset_cursor", "encode_cursor"]


def decode_cursor(kind: str, cursor: str) -> int:
    """The integer inside a pagination cursor of `kind`. Raises `BadCursor`."""
    try:
        return cursors.decode_cursor(kind, cursor)
    except InvalidCursor as exc:
        raise BadCursor(str(exc)) from exc


async def check_stock_cursor(conn: AsyncConnection, cursor: str) -> int:
    """The ledger position inside a `stockChanged` resume cursor. Raises `BadCursor` when
    it is malformed, ahead of the ledger, or too old (`live.ledger.check_cursor`)."""
    try:
        return await ledger.check_cursor(conn, cursor)
    except InvalidCursor as exc:
        raise BadCursor(str(exc)) from exc


def decode_keyset_cursor(kind: str, cursor: str) -> tuple[datetime, uuid.UUID]:
    """The ``(timestamp, id)`` inside a keyset cursor of `kind`. Raises `BadCursor`."""
    try:
        return cursors.decode_keyset_cursor(kind, cursor)
    except InvalidCursor as exc:
        raise BadCursor(str(exc)) from exc
