"""Lineage, neighbourhood, path and impact types."""

import strawberry
from strawberry import relay

from trustfabric.domain.provenance import lineage
from trustfabric.schema.provenance import Anomaly, Image, Job, PolicyVersion

# the domain's enum as a GraphQL enum, named as an alias so type checkers take it for a type
HopDirection = lineage.HopDirection
strawberry.enum(HopDirection, description=(
    "Which way the edge between a hop and the hop it joins points: FROM_JOINED is "
    "(joined)-[relation]->(this hop), TO_JOINED is (this hop)-[relation]->(joined)."))


@strawberry.type
class LineageHop:
    position: int
    relation: str = strawberry.field(
        description="The type of the edge between this node and the hop at `joins` "
                    "(START for the first hop). The hops form a tree read in order: the "
                    "policy version and the image both hang from the job, the commit from "
                    "the image, so the hop joined is not always the one before."
    )
    joins: int | None = strawberry.field(
        description="The position of the hop this node's edge leads to or from (null for "
                    "the first)."
    )
    direction: HopDirection | None = strawberry.field(
        description="Which way the edge points between the hop at `joins` and this node."
    )
    node: relay.Node


@strawberry.type
class Lineage:
    anomaly: Anomaly
    hops: list[LineageHop] = strawberry.field(
        description="anomaly → job, then the job's policy version and image; the image's "
                    "base images, and its commit → repo. Each hop names its edge."
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
