"""Every field of the schema says what it is (the schema is the API's manual)."""

import enum
from collections.abc import Mapping
from typing import Any, TypeVar

import strawberry
from strawberry.types.enum import has_enum_definition

E = TypeVar("E", bound=enum.Enum)


def described(description: str) -> Any:
    """A field with no default and its description: `name: str = described("…")`."""
    return strawberry.field(description=description)


def described_enum(cls: type[E], *, description: str, values: Mapping[E, str],
                   name: str | None = None) -> type[E]:
    """Registers a domain enum as a GraphQL enum, each value with its description.

    Strawberry describes a value only with `strawberry.enum_value` in the class body, which
    the domain (no strawberry there) cannot use. `strawberry.enum(cls)` records every value
    in the definition it attaches to the class, and the schema is built from that record:
    the descriptions are written there, once, at registration, so nothing is patched after
    the schema is built. Every member must be described."""
    strawberry.enum(cls, name=name, description=description)
    if missing := [member.name for member in cls if member not in values]:
        raise ValueError(f"{cls.__name__}: no description for {', '.join(missing)}")
    registered: object = cls
    assert has_enum_definition(registered)
    for value in registered.__strawberry_definition__.values:
        value.description = values[cls(value.value)]
    return cls
