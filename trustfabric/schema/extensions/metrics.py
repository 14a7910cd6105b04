"""Request counts and latencies by operation, labelled by root field: a client's operation
name is free text and would make the label set unbounded."""

import time
from collections.abc import Iterator
from typing import Any

from graphql import FieldNode, OperationDefinitionNode
from prometheus_client import Counter, Histogram
from strawberry.extensions import SchemaExtension

REQUESTS = Counter("tf_graphql_requests_total", "GraphQL operations", ["field", "outcome"])
LATENCY = Histogram(
    "tf_graphql_request_seconds", "GraphQL operation latency", ["field"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class RequestMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        field = "invalid"
        document = context.graphql_document
        if document is not None:
            for definition in document.definitions:
                if isinstance(definition, OperationDefinitionNode):
                    first = definition.selection_set.selections[0]
                    root = context.schema._schema.get_root_type(definition.operation)
                    # only the schema's own field names: a client's text would make the
                    # label set unbounded
                    if isinstance(first, FieldNode) and root and first.name.value in root.fields:
                        field = first.name.value
                    break
        errors = context.result.errors if context.result else None
        record(field, outcome([e.extensions or {} for e in errors or []]), started)


def outcome(errors: list[dict[str, Any]]) -> str:
    """ok; refused on purpose (the caller's mistake, its quota, or shed under overload:
    UNAVAILABLE with reason OVERLOADED and a Retry-After); or error (ours, or an outage)."""
    if not errors:
        return "ok"
    if any(e.get("code") == "INTERNAL_SERVER_ERROR"
           or (e.get("code") == "UNAVAILABLE" and e.get("reason") != "OVERLOADED")
           for e in errors):
        return "error"
    return "refused"


def record(field: str, answered: str, started: float) -> None:
    """One operation on `field`, answered `ok`, `refused` or `error` (see `outcome`)."""
    REQUESTS.labels(field, answered).inc()
    LATENCY.labels(field).observe(time.perf_counter() - started)
