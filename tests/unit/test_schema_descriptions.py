"""The schema is the API's manual: every type, field, argument, input field and enum value
has a description a client developer can read in GraphiQL or introspection."""

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
)

from trustfabric.schema import build_schema
from trustfabric.settings import Settings

# GraphQL's own scalars, described by the specification rather than by this schema. What
# Strawberry declares (Relay's Node and PageInfo, connections' edges, the DateTime, JSON and
# GlobalID scalars) comes with descriptions and is checked like the rest: no allow-list.
BUILT_IN_SCALARS = frozenset({"String", "Int", "Float", "Boolean", "ID"})


def undescribed(schema: GraphQLSchema) -> list[str]:
    """Every schema coordinate (`Type`, `Type.field`, `Type.field(arg:)`, `Enum.VALUE`)
    whose description is missing or blank."""
    missing: list[str] = []

    def check(coordinate: str, description: str | None) -> None:
        if not (description or "").strip():
            missing.append(coordinate)

    for name, named in sorted(schema.type_map.items()):
        if name.startswith("__") or name in BUILT_IN_SCALARS:
            continue
        assert isinstance(named, GraphQLNamedType)
        check(name, named.description)
        if isinstance(named, (GraphQLObjectType, GraphQLInterfaceType)):
            for field_name, field in named.fields.items():
                check(f"{name}.{field_name}", field.description)
                for arg_name, arg in field.args.items():
                    check(f"{name}.{field_name}({arg_name}:)", arg.description)
        elif isinstance(named, GraphQLInputObjectType):
            for field_name, input_field in named.fields.items():
                check(f"{name}.{field_name}", input_field.description)
        elif isinstance(named, GraphQLEnumType):
            for value_name, value in named.values.items():
                check(f"{name}.{value_name}", value.description)
    return missing


def test_every_schema_element_is_described():
    missing = undescribed(build_schema(Settings(_env_file=None))._schema)
    assert not missing, f"{len(missing)} schema elements without a description:\n" + "\n".join(
        missing)


def test_the_check_sees_what_is_missing():
    from graphql import build_schema as build_graphql_schema

    schema = build_graphql_schema('''
        "described" type Query { "described" a(x: Int): E, b: Boolean }
        "described" enum E { "described" ONE TWO }
        input I { "described" f: Int }
    ''')
    assert undescribed(schema) == ["E.TWO", "I", "Query.a(x:)", "Query.b"]
