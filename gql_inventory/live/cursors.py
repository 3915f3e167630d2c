"""Opaque Relay cursors: base64 of ``"<kind>:<integer>"``.

A cursor that cannot be used raises `InvalidCursor`, a plain exception carrying
what was wrong; the GraphQL edge answers it as `BAD_CURSOR`
(`gql_inventory.resolvers.cursors`).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

#: Why a cursor was refused: not one of ours (or of another kind), beyond the ledger's
#: last event (issued by another database), or older than the oldest retained event.
CursorProblem = Literal["malformed", "ahead", "expired"]


class InvalidCursor(Exception):
    """A cursor of `kind` that cannot be used, and why (`problem`).

    For "ahead", `position` is the cursor's and `bound` the ledger's last position;
    for "expired", `bound` is the oldest position still kept.
    """

    def __init__(
        self,
        kind: str,
        problem: CursorProblem,
        *,
        position: int | None = None,
        bound: int | None = None,
    ) -> None:
        self.kind = kind
        self.problem = problem
        self.position = position
        self.bound = bound
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.problem == "ahead":
            return (
                f"unknown {self.kind} cursor: position {self.position} is beyond the ledger's "
                f"last event ({self.bound}); it was not issued by this service"
            )
        if self.problem == "expired":
            return (
                f"{self.kind} cursor too old: events before position {self.bound} are no longer "
                "kept; subscribe without `after` and re-read current stock"
            )
        return f"invalid {self.kind} cursor"


def encode_cursor(kind: str, value: int) -> str:
    """``("product", 12)`` -> ``"cHJvZHVjdDoxMg=="``."""
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


def decode_cursor(kind: str, cursor: str) -> int:
    """The integer inside a cursor of `kind`. Raises `InvalidCursor` ("malformed") for
    anything else (not base64, another kind, not a non-negative integer)."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, _, number = raw.partition(":")
        if prefix != kind:
            raise ValueError(prefix)
        value = int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor(kind, "malformed") from exc
    if value < 0:
        raise InvalidCursor(kind, "malformed")
    return value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode_keyset_cursor(kind: str, at: datetime, row_id: uuid.UUID) -> str:
    """A cursor on a list sorted by a timestamp, then by id: base64 of
    ``"<kind>:<microseconds since 1970 UTC>:<uuid>"``. Exact to the microsecond, the
    precision of PostgreSQL's timestamptz, so the next page starts exactly after it."""
    micros = (at - _EPOCH) // _MICROSECOND
    return base64.urlsafe_b64encode(f"{kind}:{micros}:{row_id}".encode()).decode()


def decode_keyset_cursor(kind: str, cursor: str) -> tuple[datetime, uuid.UUID]:
    """The ``(timestamp, id)`` inside an `encode_keyset_cursor` cursor of `kind`. Raises
    `InvalidCursor` ("malformed") for anything else (another kind, not base64, no id)."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, micros, row_id = raw.split(":")
        if prefix != kind:
            raise ValueError(prefix)
        return _EPOCH + int(micros) * _MICROSECOND, uuid.UUID(row_id)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor(kind, "malformed") from exc
