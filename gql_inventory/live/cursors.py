"""Opaque Relay cursors: base64 of ``"<kind>:<integer>"``."""

from __future__ import annotations

import base64
import binascii

from gql_inventory.errors import BadCursor


def encode_cursor(kind: str, value: int) -> str:
    """``("product", 12)`` -> ``"cHJvZHVjdDoxMg=="``."""
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


def decode_cursor(kind: str, cursor: str) -> int:
    """The integer inside a cursor of `kind`. Raises `BadCursor` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, _, number = raw.partition(":")
        if prefix != kind:
            raise ValueError(prefix)
        value = int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor(f"invalid {kind} cursor") from exc
    if value < 0:
        raise BadCursor(f"invalid {kind} cursor")
    return value
