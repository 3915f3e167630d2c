"""Access rules shared by the schema: the `IsAdmin` permission and `admin_only` fields."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.schema.errors import Forbidden


class IsAdmin(BasePermission):
    """Grants the field when an admin bearer token (`ADMIN_TOKENS`) was sent.

    Refusal: the GraphQL error ``{"message": "admin token required",
    "extensions": {"code": "FORBIDDEN"}}``, raised as our `Forbidden` so that the
    error masking (`schema.errors.should_mask`) shows it, and before the resolver runs,
    so nothing is read or written.
    """

    message = "admin token required"
    error_class = Forbidden
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info[Context, None], **kwargs: Any) -> bool:
        """True for a request carrying an admin token."""
        return info.context.is_admin


def admin_only() -> list[FieldExtension]:
    """Field extensions for an admin-only field: ``strawberry.field(extensions=admin_only())``.

    `use_directives=False` keeps the served SDL free of an ``@IsAdmin`` directive: the
    field descriptions already say "Admin only", and the pinned contract has none.
    """
    return [PermissionExtension(permissions=[IsAdmin()], use_directives=False)]
