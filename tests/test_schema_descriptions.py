"""Every name a client can see in the served schema has a description (issue 9, item 12)."""

from __future__ import annotations

import enum

import pytest
import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    specified_scalar_types,
)

from gql_inventory.schema import build_schema
from gql_inventory.schema.docs import describe_enum, with_arguments


def _undescribed(named: GraphQLNamedType) -> list[str]:
    """Coordinates (``Type.field(arg:)``) of `named` and its members lacking a description."""
    missing = [] if (named.description or "").strip() else [named.name]
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
        for field_name, field in named.fields.items():
            if not (field.description or "").strip():
                missing.append(f"{named.name}.{field_name}")
            missing.extend(
                f"{named.name}.{field_name}({arg_name}:)"
                for arg_name, arg in field.args.items()
                if not (arg.description or "").strip()
            )
    elif isinstance(named, GraphQLInputObjectType):
        missing.extend(
            f"{named.name}.{name}"
            for name, input_field in named.fields.items()
            if not (input_field.description or "").strip()
        )
    elif isinstance(named, GraphQLEnumType):
        missing.extend(
            f"{named.name}.{name}"
            for name, value in named.values.items()
            if not (value.description or "").strip()
        )
    return missing


def test_every_type_field_argument_and_enum_value_is_described() -> None:
    schema = build_schema()._schema
    missing = [
        coordinate
        for name, named in sorted(schema.type_map.items())
        if not name.startswith("__") and name not in specified_scalar_types
        for coordinate in _undescribed(named)
    ]
    assert missing == [], f"{len(missing)} without a description: {', '.join(missing)}"


def _resolver(sku: str, first: int = 1) -> int:
    return first


class _Colour(enum.Enum):
    RED = "RED"
    BLUE = "BLUE"


def test_an_argument_left_undescribed_is_refused_at_import() -> None:
    with pytest.raises(TypeError, match="first"):
        with_arguments(strawberry.field(resolver=_resolver), sku="The SKU.")
    with pytest.raises(TypeError, match="nope"):
        with_arguments(
            strawberry.field(resolver=_resolver), sku="The SKU.", first="Size.", nope="?"
        )


def test_an_enum_value_left_undescribed_is_refused_at_import() -> None:
    with pytest.raises(TypeError, match="BLUE"):
        describe_enum(_Colour, description="A colour.", values={"RED": "Red."})
