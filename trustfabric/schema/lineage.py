"""Lineage, neighbourhood, path and impact types."""

import strawberry
from strawberry import relay

from trustfabric.schema.provenance import Anomaly, Image, Job, PolicyVersion


@strawberry.type
class LineageHop:
    position: int
    relation: str = strawberry.field(
        description="How this node is reached from the previous hop (START for the first)."
    )
    node: relay.Node


@strawberry.type
class Lineage:
    anomaly: Anomaly
    hops: list[LineageHop] = strawberry.field(
        description="anomaly → job → policy version → image → base images → commit → repo"
    )
    root: relay.Node = strawberry.field(description="The furthest node the lineage reaches.")
    policy_version: PolicyVersion | None
    complete: bool = strawberry.field(description="True when the chain reaches a repository.")


@strawberry.type
class GraphEdge:
    source: relay.GlobalID
    type: str
    target: relay.GlobalID


@strawberry.type
class Subgraph:
    nodes: list[relay.Node]
    edges: list[GraphEdge]


@strawberry.type
class Impact:
    commit_sha: str
    images: list[Image]
    jobs: list[Job]
    tenants: list[str]
    open_anomalies: list[Anomaly]
    truncated: bool = strawberry.field(description="True when a list hit its limit.")
