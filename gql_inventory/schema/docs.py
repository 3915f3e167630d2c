"""Descriptions strawberry cannot take in place (resolver arguments, domain enum values),
and a typed `@strawberry.field(description=...)`.

Resolvers (`gql_inventory.resolvers`) hold logic and the contract enums are the
domain's own Python enums, so their GraphQL descriptions are given here, beside
the shapes, and each helper refuses a member left without one: a new argument
or enum value cannot reach the schema undescribed. Strawberry reads both
descriptions when the schema is built (`StrawberryArgument.description`,
`EnumValue.description`).
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import strawberry
from strawberry.types.enum import StrawberryEnumDefinition
from strawberry.types.field import StrawberryField

F = TypeVar("F")
E = TypeVar("E", bound=type[enum.Enum])


def described_field(description: str) -> Callable[[Callable[..., Any]], StrawberryField]:
    """``@strawberry.field(description=...)`` for a resolver method, typed for mypy.

    Strawberry types the decorator-with-arguments form as `Any`, which strict
    mypy rejects as an untyped decorator; this returns the field as the bare
    ``@strawberry.field`` does.
    """

    def decorate(resolver: Callable[..., Any]) -> StrawberryField:
        return strawberry.field(resolver, description=description)

    return decorate


def with_arguments(field: F, **descriptions: str) -> F:
    """`field` (a `strawberry.field`/`subscription` with a resolver), its arguments described.

    Keys are the resolver's Python parameter names (``reservation_id``), values
    their descriptions. Raises `TypeError` when a key names no argument or an
    argument has no description.
    """
    if not isinstance(field, StrawberryField):
        raise TypeError(f"not a strawberry field: {field!r}")
    arguments = field.arguments
    names = {argument.python_name for argument in arguments}
    if names != set(descriptions):
        raise TypeError(
            f"{field.base_resolver.name if field.base_resolver else field}: "
            f"arguments {sorted(names)}, "
            f"descriptions for {sorted(descriptions)}"
        )
    described = []
    for argument in arguments:
        argument = copy.copy(argument)
        argument.description = descriptions[argument.python_name]
        described.append(argument)
    field.arguments = described
    return field


def describe_enum(
    cls: E, *, description: str, values: Mapping[str, str], name: str | None = None
) -> E:
    """Register the Python enum `cls` as the GraphQL enum of the same name (or `name`),
    described.

    `values` maps every member name to its description; raises `TypeError` when
    one is missing or unknown.
    """
    names = {member.name for member in cls}
    if names != set(values):
        raise TypeError(
            f"{cls.__name__}: members {sorted(names)}, descriptions for {sorted(values)}"
        )
    registered = strawberry.enum(cls, name=name or cls.__name__, description=description)
    definition = registered.__strawberry_definition__  # type: ignore[attr-defined]
    assert isinstance(definition, StrawberryEnumDefinition)
    for value in definition.values:
        value.description = values[value.name]
    return registered
