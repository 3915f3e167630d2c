"""Errors shown to GraphQL clients as they are (every other exception is masked).

`PublicError` carries a machine-readable `code`, sent in the error's
`extensions`, e.g. ``{"message": "admin token required", "extensions": {"code": "FORBIDDEN"}}``.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError


class PublicError(GraphQLError):
    """A GraphQL error whose message is safe to show; `code` goes into `extensions.code`."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})
        self.code = code


class Forbidden(PublicError):
    """The operation needs an admin bearer token (`ADMIN_TOKENS`)."""

    def __init__(self, message: str = "admin token required") -> None:
        super().__init__(message, "FORBIDDEN")


class BadCursor(PublicError):
    """A pagination or resume cursor that we did not issue, or that is too old."""

    def __init__(self, message: str = "invalid cursor") -> None:
        super().__init__(message, "BAD_CURSOR")


class CursorExpired(PublicError):
    """A resume cursor too far behind the ledger's head to replay from (or before what is
    kept): re-read the state and subscribe without a cursor (code ``CURSOR_EXPIRED``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "CURSOR_EXPIRED")


class ReplayBusy(PublicError):
    """Too many replays at once: retry after `retry_after` seconds (code ``REPLAY_BUSY``)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many subscriptions are resuming from a cursor right now; retry shortly",
            "REPLAY_BUSY",
            retryAfter=retry_after,
        )


class BadRequest(PublicError):
    """An argument outside what the operation accepts (e.g. `first` too large)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "BAD_USER_INPUT")


class InvalidInput(PublicError):
    """Input the service can never store, e.g. text with NUL (code ``INVALID_INPUT``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "INVALID_INPUT")


class ServiceUnavailable(PublicError):
    """The database is unreachable for now; retry after `retry_after` seconds (HTTP 503)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "the service is temporarily unavailable, retry later",
            "SERVICE_UNAVAILABLE",
            retryAfter=retry_after,
        )


def should_mask(error: GraphQLError) -> bool:
    """Mask everything but errors about the request and `PublicError`s (for `MaskErrors`).

    Shown as they are: parse and validation errors (no original error) and
    graphql-core's own errors about the request outside any field, such as a
    variable that is not a 32-bit Int (their original error is a `GraphQLError`).
    """
    original = error.original_error
    if original is None:
        return False  # parse / validation errors: about the query, safe to show
    if error.path is None and isinstance(original, GraphQLError):
        return False  # variable coercion: names the variable, shows only the client's value
    return not isinstance(original, PublicError)
