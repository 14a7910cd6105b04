"""The GraphQL schema: root types, and the limits and caches declared on it."""

from collections.abc import Callable
from functools import partial
from typing import Any

from graphql import GraphQLError

import strawberry
from strawberry import relay
from strawberry.extensions import (
    AddValidationRules, DisableIntrospection, MaxAliasesLimiter, MaxTokensLimiter,
    QueryDepthLimiter, SchemaExtension, ValidationCache,
)

from trustfabric.resolvers import ingest as ingest_resolvers
from trustfabric.resolvers import lineage as lineage_resolvers
from trustfabric.resolvers import provenance as provenance_resolvers
from trustfabric.schema.errors import Authenticated, CanWrite, CodedParserCache, ErrorCodes
from trustfabric.schema.ingest import IngestResult
from trustfabric.schema.limits import cost_limit_rule
from trustfabric.schema.lineage import Impact, Lineage, Subgraph
from trustfabric.schema.provenance import NODE_TYPES, AnomalyConnection
from trustfabric.settings import Settings

READ = [Authenticated]
WRITE = [CanWrite]


@strawberry.type
class Query:
    node: relay.Node = strawberry.field(
        resolver=provenance_resolvers.node, permission_classes=READ,
        description="Any node by its global id (Relay).",
    )
    anomalies: AnomalyConnection = strawberry.field(
        resolver=provenance_resolvers.anomalies, permission_classes=READ,
        description="The caller's anomalies (an operator may name another tenant).",
    )
    lineage: Lineage = strawberry.field(
        resolver=lineage_resolvers.lineage, permission_classes=READ,
        description="From an anomaly to its root: job, policy version, image, bases, commit, repo.",
    )
    neighbors: Subgraph = strawberry.field(
        resolver=lineage_resolvers.neighbors, permission_classes=READ,
        description="Nodes and edges within `depth` (1-3) hops of a node.",
    )
    path: Subgraph = strawberry.field(
        resolver=lineage_resolvers.path, permission_classes=READ,
        description="The shortest path between two nodes, at most `maxHops` (1-8) long.",
    )
    impact: Impact = strawberry.field(
        resolver=lineage_resolvers.impact, permission_classes=READ,
        description="Blast radius of a commit: images, jobs, tenants and open anomalies after it.",
    )


@strawberry.type
class Mutation:
    ingest: IngestResult = strawberry.field(
        resolver=ingest_resolvers.ingest, permission_classes=WRITE,
        description="Record builds, policy versions, job runs and anomalies in one transaction.",
    )


class Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Strawberry logs every error with the variables' values in its message; ErrorCodes
        logs the unexpected ones, and a client's mistakes are not the server's to log."""


def build_schema(settings: Settings) -> strawberry.Schema:
    # Factories, not instances: Strawberry builds fresh extensions per request; the parser
    # and validation caches still share one bounded LRU across requests.
    cost_rule = cost_limit_rule(settings.max_query_cost)
    extensions: list[Callable[[], SchemaExtension]] = [
        ErrorCodes,
        partial(QueryDepthLimiter, max_depth=settings.max_query_depth),
        partial(MaxAliasesLimiter, max_alias_count=settings.max_aliases),
        partial(MaxTokensLimiter, max_token_count=settings.max_tokens),
        partial(AddValidationRules, [cost_rule]),
        partial(CodedParserCache, maxsize=1024),
        partial(ValidationCache, maxsize=1024),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    return Schema(
        query=Query, mutation=Mutation, types=list(NODE_TYPES.values()), extensions=extensions
    )
