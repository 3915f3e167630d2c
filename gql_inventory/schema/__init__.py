"""Strawberry types, inputs, enums and payloads; `build_schema()` assembles the Schema."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
    max_aliases,
    query_depth_limiter,
)
from strawberry.schema.config import StrawberryConfig

from gql_inventory.errors import should_mask
from gql_inventory.schema.execution import InventorySchema, SubscriptionSafeExecutionContext
from gql_inventory.schema.mutation import Mutation
from gql_inventory.schema.query import Query
from gql_inventory.schema.subscription import Subscription
from gql_inventory.settings import Settings


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The service's schema with depth, alias and token limits and error masking on."""
    settings = settings or Settings()
    return InventorySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(),
        execution_context_class=SubscriptionSafeExecutionContext,
        extensions=_extensions(settings),
    )


def _extensions(settings: Settings) -> list[Any]:
    """Extension factories (strawberry builds fresh instances per request).

    The depth and alias rules are built once, so their classes are stable and
    `ValidationCache` can reuse a document's validation across requests (a fresh
    `QueryDepthLimiter` per request makes a new rule class, defeating the cache).
    Parsing is cached too; the token limit applies before a document is cached.
    """
    rules: list[type[ASTValidationRule]] = [
        query_depth_limiter.create_validator(settings.query_depth_limit, should_ignore=None),
        max_aliases.create_validator(settings.max_aliases),
    ]
    return [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=512),
        lambda: MaskErrors(should_mask_error=should_mask),
    ]


def print_sdl() -> str:
    """The schema as SDL text (what `gql-inventory schema` prints)."""
    return build_schema().as_str() + "\n"
