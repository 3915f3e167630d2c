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


class BadRequest(PublicError):
    """An argument outside what the operation accepts (e.g. `first` too large)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "BAD_USER_INPUT")


def should_mask(error: GraphQLError) -> bool:
    """Mask everything but validation errors and `PublicError`s (for `MaskErrors`)."""
    original = error.original_error
    if original is None:
        return False  # parse / validation errors: about the query, safe to show
    return not isinstance(original, PublicError)
