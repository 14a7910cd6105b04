"""The schema and its extensions without a server: masked errors, introspection switched
off, a subscription's memo."""

from graphql import GraphQLError, parse
from graphql import build_schema as build_graphql_schema

from trustfabric.schema import build_schema
from trustfabric.schema.extensions.errors import _coded
from trustfabric.schema.extensions.execution import ExecutionContext
from trustfabric.settings import Settings


def test_unexpected_errors_are_masked_without_trace():
    try:
        raise RuntimeError("internal detail: /srv/secret/path")
    except RuntimeError as error:
        original = error
    coded = _coded(GraphQLError("internal detail: /srv/secret/path", original_error=original))
    formatted = str(coded.formatted)
    assert coded.extensions == {"code": "INTERNAL_SERVER_ERROR"}
    assert "secret" not in formatted and "Traceback" not in formatted


async def test_introspection_can_be_switched_off():
    query = "{ __schema { queryType { name } } }"
    on = await build_schema(Settings(_env_file=None)).execute(query)
    assert on.data == {"__schema": {"queryType": {"name": "Query"}}}
    off = await build_schema(Settings(introspection=False, _env_file=None)).execute(query)
    assert off.errors and off.data is None


def test_subscription_events_do_not_grow_what_the_subscription_keeps():
    """Each event's executor memoizes its own sub-fields: graphql-core's copies shared one
    memo keyed by every event's new field lists, which grew for as long as a subscriber
    stayed (1.6 million objects after five minutes under load)."""
    schema = build_graphql_schema("""
        type Query { ok: Boolean }
        type Event { id: String, status: String }
        type Subscription { event: Event }
    """)
    subscription = ExecutionContext.build(schema, parse("subscription { event { id status } }"))
    for n in range(50):
        event = {"event": {"id": str(n), "status": "DONE"}}
        result = subscription.build_per_event_executor(event).execute_operation(False)
        assert result.data == event
    assert subscription._relevant_sub_fields == {}
