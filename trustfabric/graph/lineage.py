"""Lineage, neighbourhoods, paths and blast radius, each read in one round trip."""

from typing import Any

from trustfabric.domain.provenance.lineage import ImpactRecord, LineageRecord, Subgraph
from trustfabric.domain.provenance.model import LINEAGE_KINDS, Edge, Entity
from trustfabric.errors import BadUserInput
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.queries import lineage as q


def _maybe(props: dict[str, Any] | None) -> Entity | None:
    return Entity.from_row(props) if props else None


class LineageRepository:
    max_path_hops = q.MAX_PATH_HOPS

    def __init__(self, executor: GraphExecutor) -> None:
        self._executor = executor

    async def by_anomaly(self, key: str, tenant: str | None) -> LineageRecord | None:
        rows = await self._executor.read(q.BY_ANOMALY, key=key, tenant=tenant)
        if not rows:
            return None
        row = rows[0]
        return LineageRecord(
            anomaly=Entity.from_row(row["anomaly"]),
            job=_maybe(row["job"]),
            policy_version=_maybe(row["policyVersion"]),
            image=_maybe(row["image"]),
            base_images=[Entity.from_row(n) for n in row["baseImages"]],
            commit=_maybe(row["commit"]),
            repo=_maybe(row["repo"]),
        )

    async def path(self, source: str, target: str, max_hops: int, tenant: str | None) -> Subgraph:
        if max_hops not in q.PATH:
            raise BadUserInput(f"maxHops must be between 1 and {q.MAX_PATH_HOPS}")
        rows = await self._executor.read(q.PATH[max_hops], source=source, target=target,
                                         tenant=tenant, kinds=list(LINEAGE_KINDS))
        if not rows:
            return Subgraph([], [])
        return Subgraph(
            [Entity.from_row(n) for n in rows[0]["nodes"]],
            [Edge(**e) for e in rows[0]["edges"]],
        )

    async def neighbors(self, key: str, depth: int, limit: int, tenant: str | None) -> Subgraph:
        if depth not in q.NEIGHBORS:
            raise BadUserInput(f"depth must be between 1 and {q.MAX_NEIGHBOR_DEPTH}")
        rows = await self._executor.read(q.NEIGHBORS[depth], key=key, limit=limit, tenant=tenant,
                                         kinds=list(LINEAGE_KINDS))
        nodes: dict[str, Entity] = {}
        edges = []
        for row in rows:
            source, target = Entity.from_row(row["source"]), Entity.from_row(row["target"])
            nodes.setdefault(source.key, source)
            nodes.setdefault(target.key, target)
            edges.append(Edge(source.key, row["type"], target.key))
        return Subgraph(list(nodes.values()), edges)

    async def impact(self, sha: str, tenant: str | None, limit: int) -> ImpactRecord | None:
        """None when no commit of `sha` is within the caller's reach."""
        async def work(tx: Tx) -> ImpactRecord | None:
            known = await tx.run(q.COMMIT_EXISTS, sha=sha, tenant=tenant)
            if not known or not known[0]["found"]:
                return None
            images = await tx.run(q.IMPACT_IMAGES, sha=sha, tenant=tenant, limit=limit)
            image_keys = [row["node"]["key"] for row in images]
            jobs = await tx.run(q.IMPACT_JOBS, images=image_keys, limit=limit)
            job_keys = [row["node"]["key"] for row in jobs]
            anomalies = await tx.run(q.IMPACT_ANOMALIES, jobs=job_keys, limit=limit)
            return ImpactRecord(
                images=[Entity.from_row(r["node"]) for r in images],
                jobs=[Entity.from_row(r["node"]) for r in jobs],
                anomalies=[Entity.from_row(r["node"]) for r in anomalies],
                truncated=any(len(x) >= limit for x in (images, jobs, anomalies)),
            )

        return await self._executor.read_tx(work)
