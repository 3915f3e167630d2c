"""Strawberry types, inputs, enums and payloads; `build_schema()` assembles the Schema."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.schema.config import StrawberryConfig

from gql_inventory.schema.cost import Limits
from gql_inventory.schema.edge import DocumentCache, UnstorableLiterals
from gql_inventory.schema.execution import InventorySchema, SubscriptionSafeExecutionContext
from gql_inventory.schema.mutation import Mutation
from gql_inventory.schema.prepared import EdgeConfig, EdgeRequest
from gql_inventory.schema.query import Query
from gql_inventory.schema.subscription import Subscription
from gql_inventory.settings import Settings


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The service's schema with its request limits and error masking on.

    Limits: tokens (`MAX_TOKENS`), depth, aliases and expanded fields
    (`QUERY_DEPTH_LIMIT`, `MAX_ALIASES`, `MAX_SELECTIONS`, measured in linear time by
    `schema.cost`). Introspection and field suggestions follow the settings
    (`Settings.feature_on`).
    """
    settings = settings or Settings()
    return InventorySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(
            disable_field_suggestions=not settings.feature_on("field_suggestions")
        ),
        execution_context_class=SubscriptionSafeExecutionContext,
        extensions=_extensions(settings),
    )


def _extensions(settings: Settings) -> list[Any]:
    """One extension factory (strawberry builds a fresh instance per request): all the
    edge's per-request work in one hook (`schema.prepared.EdgeRequest`).

    The validation rules are built once, so their classes are stable and a cached
    validation stays right. The token limit applies while parsing, before a
    document is cached; the cache is this schema's own, bounded by bytes.
    """
    rules: list[type[ASTValidationRule]] = [UnstorableLiterals]
    if not settings.feature_on("introspection"):
        rules.append(NoSchemaIntrospectionCustomRule)
    config = EdgeConfig(
        limits=Limits(
            max_depth=settings.query_depth_limit,
            max_aliases=settings.max_aliases,
            max_selections=settings.max_selections,
            max_merge_pairs=settings.max_merge_pairs,
        ),
        rules=tuple(rules),
        max_tokens=settings.max_tokens,
        retry_after=settings.outage_retry_after_seconds,
        cache=DocumentCache(settings.document_cache_bytes)
        if settings.document_cache_bytes > 0
        else None,
    )
    return [lambda: EdgeRequest(config)]


def print_sdl() -> str:
    """The schema as SDL text (what `gql-inventory schema` prints)."""
    return build_schema().as_str() + "\n"
