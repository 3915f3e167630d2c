"""Cursors clients already hold keep working: same bytes, same refusals (issue 9, item 5)."""

from __future__ import annotations

import base64

import pytest

from gql_inventory.resolvers.cursors import decode_cursor, encode_cursor
from gql_inventory.schema.errors import BadCursor


def _issued_before(kind: str, value: int) -> str:
    """How cursors have always been encoded (URL-safe base64)."""
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


@pytest.mark.parametrize("kind", ["product", "movement", "stock"])
def test_cursors_are_the_bytes_clients_already_hold(kind: str) -> None:
    values = [*range(0, 5000), 2**31, 2**53 + 1, 2**63 - 1]
    for value in values:
        cursor = encode_cursor(kind, value)
        assert cursor == _issued_before(kind, value)
        assert decode_cursor(kind, _issued_before(kind, value)) == value


def test_a_known_cursor_decodes() -> None:
    assert encode_cursor("product", 12) == "cHJvZHVjdDoxMg=="
    assert decode_cursor("product", "cHJvZHVjdDoxMg==") == 12


def test_cursors_are_relay_global_id_shaped() -> None:
    """strawberry.relay's own helpers read them: base64 of ``<kind>:<value>``."""
    from strawberry.relay import from_base64

    assert from_base64(encode_cursor("movement", 7)) == ("movement", "7")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "cHJvZHVjdA==",  # "product" without a value
        encode_cursor("movement", 3),  # another kind
        base64.b64encode(b"product:-1").decode(),
        base64.b64encode(b"product:x").decode(),
        base64.b64encode(b"\xff\xfe").decode(),
    ],
)
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(BadCursor, match="invalid product cursor"):
        decode_cursor("product", cursor)
