"""Access checks shared by resolvers."""

from __future__ import annotations

from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.errors import Forbidden


def require_admin(info: Info[Context, None]) -> None:
    """Raise `Forbidden` (GraphQL error code FORBIDDEN) unless an admin token was sent."""
    if not info.context.is_admin:
        raise Forbidden()
