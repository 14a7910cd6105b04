"""Lineage, neighbourhood, path and impact types."""

import strawberry
from strawberry import relay

from trustfabric.domain.provenance import lineage
from trustfabric.schema.described import described, described_enum
from trustfabric.schema.provenance import Anomaly, Image, Job, PolicyVersion

# the domain's enum as a GraphQL enum, named as an alias so type checkers take it for a type
HopDirection = lineage.HopDirection
described_enum(HopDirection, description=(
    "Which way the edge between a hop and the hop it joins points: FROM_JOINED is "
    "(joined)-[relation]->(this hop), TO_JOINED is (this hop)-[relation]->(joined)."), values={
    HopDirection.FROM_JOINED: "The edge leads from the joined hop to this one: "
                              "(joined)-[relation]->(this hop).",
    HopDirection.TO_JOINED: "The edge leads from this hop to the joined one: "
                            "(this hop)-[relation]->(joined).",
})


@strawberry.type(description="One node of a lineage and the edge that joins it to the tree.")
class LineageHop:
    position: int = described("Its place in the lineage: 0 for the anomaly, then in order.")
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
    node: relay.Node = described("The node itself: an Anomaly, Job, PolicyVersion, Image, "
                                 "Commit or Repo.")


@strawberry.type(description="The chain from an anomaly to where it came from, read in one "
                             "database query.")
class Lineage:
    anomaly: Anomaly = described("The anomaly asked about.")
    hops: list[LineageHop] = strawberry.field(
        description="anomaly → job, then the job's policy version and image; the image's "
                    "base images, and its commit → repo. Each hop names its edge."
    )
    root: relay.Node = strawberry.field(description="The furthest node the lineage reaches.")
    policy_version: PolicyVersion | None = described(
        "The policy version its job ran under; null when the job named none.")
    complete: bool = strawberry.field(description="True when the chain reaches a repository.")


@strawberry.type(description="A directed edge between two nodes of a subgraph.")
class GraphEdge:
    source: relay.GlobalID = described("The Relay id of the node it leaves.")
    type: str = described("The relationship type, e.g. OBSERVED_IN (anomaly → job), RAN "
                          "(job → image) or BUILT_FROM (image → commit).")
    target: relay.GlobalID = described("The Relay id of the node it enters.")


@strawberry.type(description="Nodes and the edges between them; every edge's ends are among "
                             "the nodes.")
class Subgraph:
    nodes: list[relay.Node] = described("The nodes, each once.")
    edges: list[GraphEdge] = described("The edges, by their ends' Relay ids.")


@strawberry.type(description="What a commit reached: images built from it or from later "
                             "commits (and images based on those), the jobs that ran them and "
                             "their open anomalies.")
class Impact:
    commit_sha: str = described("The commit asked about, as a lower-case full SHA.")
    images: list[Image] = described("Images built from it or its descendants (up to 20 "
                                    "commits on), and images based on those (up to 8 levels); "
                                    "at most 1,000.")
    jobs: list[Job] = described("Jobs that ran any of those images; at most 1,000.")
    tenants: list[str] = described("The tenants owning those images, sorted.")
    open_anomalies: list[Anomaly] = described("OPEN anomalies observed in those jobs; at most "
                                              "1,000.")
    truncated: bool = strawberry.field(description="True when a list hit its limit.")
