"""Opaque Relay cursors: base64 of ``"<kind>:<integer>"``, through strawberry.relay.

`strawberry.relay.to_base64` / `from_base64` are the helpers Strawberry uses for
global ids and cursors (standard base64). For our alphabet (ASCII letters, digits,
``:``) standard and URL-safe base64 give the same bytes, so the cursors issued
before (``base64.urlsafe_b64encode``) still decode: `tests/test_cursors.py`.
"""

from __future__ import annotations

from strawberry.relay import from_base64, to_base64

from gql_inventory.errors import BadCursor


def encode_cursor(kind: str, value: int) -> str:
    """``("product", 12)`` -> ``"cHJvZHVjdDoxMg=="``."""
    return to_base64(kind, value)


def decode_cursor(kind: str, cursor: str) -> int:
    """The integer inside a cursor of `kind`. Raises `BadCursor` for anything else."""
    try:
        prefix, number = from_base64(cursor)
        if prefix != kind:
            raise ValueError(prefix)
        value = int(number)
    except ValueError as exc:
        raise BadCursor(f"invalid {kind} cursor") from exc
    if value < 0:
        raise BadCursor(f"invalid {kind} cursor")
    return value
