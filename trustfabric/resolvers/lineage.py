from typing import Annotated

import strawberry
from strawberry import relay

from trustfabric.domain.ids import SHA
from trustfabric.domain.provenance import lineage as domain
from trustfabric.domain.provenance.lineage import Subgraph as SubgraphRecord
from trustfabric.errors import BadUserInput, NotFound
from trustfabric.resolvers.provenance import anomaly_key, load_entity
from trustfabric.schema.lineage import GraphEdge, Impact, Lineage, LineageHop, Subgraph
from trustfabric.schema.provenance import Anomaly, Image, Info, Job, PolicyVersion, to_node

MAX_NEIGHBORS = 500
MAX_IMPACT = 1000


def _global_id(key: str) -> relay.GlobalID:
    kind, node_id = key.split(":", 1)
    return relay.GlobalID(kind, node_id)


def _subgraph(record: SubgraphRecord) -> Subgraph:
    return Subgraph(
        nodes=[to_node(e) for e in record.nodes],
        edges=[GraphEdge(source=_global_id(e.source), type=e.type, target=_global_id(e.target))
               for e in record.edges],
    )


async def lineage(
    info: Info,
    anomaly_id: Annotated[strawberry.ID, strawberry.argument(
        description="The anomaly's Relay id, or the id it was recorded with (as alerts and "
                    "CSV exports show it, e.g. acme-anomaly-0-2-1).")],
    tenant: Annotated[str | None, strawberry.argument(
        description="Operators: the tenant a recorded id belongs to (default: their own).")]
    = None,
) -> Lineage:
    caller = info.context.caller
    key = anomaly_key(anomaly_id, caller.tenant_for(tenant))
    record = await info.context.repos.lineage.by_anomaly(key, caller.read_scope)
    if record is None:
        raise NotFound(f"anomaly {anomaly_id}")
    return Lineage(
        anomaly=Anomaly.from_entity(record.anomaly),
        hops=[LineageHop(position=h.position, relation=h.relation, joins=h.joins,
                         direction=h.direction, node=to_node(h.entity))
              for h in domain.hops(record)],
        root=to_node(domain.root(record)),
        policy_version=PolicyVersion.from_entity(record.policy_version)
        if record.policy_version else None,
        complete=record.repo is not None,
    )


async def neighbors(
    info: Info,
    id: Annotated[relay.GlobalID, strawberry.argument(
        description="The Relay id of the node at the centre.")],
    depth: Annotated[int, strawberry.argument(
        description="How many hops out, 1 to 3; at most 500 edges are returned.")] = 1,
) -> Subgraph:
    entity = await load_entity(info, id)
    record = await info.context.repos.lineage.neighbors(
        entity.key, depth, MAX_NEIGHBORS, info.context.caller.read_scope
    )
    return _subgraph(record)


async def path(
    info: Info,
    from_: Annotated[relay.GlobalID, strawberry.argument(
        name="from", description="The Relay id of the node the path starts at.")],
    to: Annotated[relay.GlobalID, strawberry.argument(
        description="The Relay id of the node the path ends at.")],
    max_hops: Annotated[int, strawberry.argument(
        description="The longest path to look for, 1 to 8; when only a longer one exists, "
                    "NOT_FOUND says its length (extensions.shortestHops).")] = 6,
) -> Subgraph:
    source, target = await load_entity(info, from_), await load_entity(info, to)
    repo, scope = info.context.repos.lineage, info.context.caller.read_scope
    record = await repo.path(source.key, target.key, max_hops, scope)
    if not record.nodes:
        # an empty answer would read as "not connected" when maxHops was only too short
        if max_hops < repo.max_path_hops:
            found = await repo.path(source.key, target.key, repo.max_path_hops, scope)
            if found.nodes:
                shortest = len(found.edges)
                raise NotFound(f"a path of at most {max_hops} hops (the shortest has "
                               f"{shortest}: ask with maxHops: {shortest})",
                               shortestHops=shortest)
        raise NotFound(f"a path within {repo.max_path_hops} hops")
    return _subgraph(record)


async def impact(
    info: Info,
    commit_sha: Annotated[str, strawberry.argument(
        description="A full commit SHA, 40 or 64 hex digits (either case).")],
) -> Impact:
    if not SHA.fullmatch(commit_sha.lower()):
        # a short sha would match no commit and read as a commit without impact
        raise BadUserInput("commitSha must be a full commit sha: 40 or 64 hex digits")
    record = await info.context.repos.lineage.impact(
        commit_sha.lower(), info.context.caller.read_scope, MAX_IMPACT
    )
    if record is None:
        raise NotFound(f"commit {commit_sha.lower()}")
    return Impact(
        commit_sha=commit_sha.lower(),
        images=[Image.from_entity(e) for e in record.images],
        jobs=[Job.from_entity(e) for e in record.jobs],
        tenants=sorted({e.tenant for e in record.images}),
        open_anomalies=[Anomaly.from_entity(e) for e in record.anomalies],
        truncated=record.truncated,
    )

