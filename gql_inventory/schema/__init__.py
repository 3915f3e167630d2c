"""Strawberry types, inputs, enums and payloads; `build_schema()` assembles the Schema."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.schema.config import StrawberryConfig

from gql_inventory.errors import should_mask
from gql_inventory.schema.execution import SubscriptionSafeExecutionContext
from gql_inventory.schema.mutation import Mutation
from gql_inventory.schema.query import Query
from gql_inventory.schema.subscription import Subscription
from gql_inventory.settings import Settings


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The service's schema with depth, alias and token limits and error masking on."""
    settings = settings or Settings()
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(),
        execution_context_class=SubscriptionSafeExecutionContext,
        extensions=_extensions(settings),
    )


def _extensions(settings: Settings) -> list[Any]:
    """Fresh extension instances per request (strawberry wants factories, not instances)."""
    return [
        lambda: QueryDepthLimiter(max_depth=settings.query_depth_limit),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: MaskErrors(should_mask_error=should_mask),
    ]


def print_sdl() -> str:
    """The schema as SDL text (what `gql-inventory schema` prints)."""
    return build_schema().as_str() + "\n"
