"""Provenance nodes: batch lookups for the DataLoaders and paginated listings."""

from collections.abc import Sequence

from trustfabric.domain.provenance.enums import AnomalyOrder
from trustfabric.domain.provenance.model import AnomalyCursor, Entity
from trustfabric.graph.executor import GraphExecutor
from trustfabric.graph.queries import provenance as q

MAX_RELATED = 1_000  # per source node


class ProvenanceRepository:
    def __init__(self, executor: GraphExecutor) -> None:
        self._executor = executor

    async def get_by_keys(self, keys: Sequence[str], tenant: str | None) -> list[Entity | None]:
        """Entities in the order of `keys`; None where absent or outside `tenant`."""
        rows = await self._executor.read(q.BY_KEYS, keys=list(keys), tenant=tenant)
        found = {row["node"]["key"]: Entity.from_row(row["node"]) for row in rows}
        return [found.get(key) for key in keys]

    async def related(self, relation: str, keys: Sequence[str]) -> list[list[Entity]]:
        """For each key, the entities `relation` leads to (an allow-listed name)."""
        query = q.RELATED[relation]  # KeyError for anything not on the allow-list
        rows = await self._executor.read(query, keys=list(keys), limit=MAX_RELATED)
        grouped = {row["key"]: [Entity.from_row(n) for n in row["nodes"]] for row in rows}
        return [grouped.get(key, []) for key in keys]

    async def anomalies_ordered(
        self, tenant: str, order: AnomalyOrder, after: AnomalyCursor | None, limit: int,
        severity: str | None, status: str | None, anomaly_id: str | None = None,
    ) -> list[Entity]:
        """A page of a tenant's anomalies in `order`, after the row `after` names."""
        rows = await self._executor.read(
            q.ANOMALIES_BY_ORDER[order], tenant=tenant, limit=limit, severity=severity,
            status=status, anomalyId=anomaly_id,
            afterRank=after.rank if after else None, afterAt=after.at if after else None,
            afterKey=after.key if after else None,
        )
        return [Entity.from_row(row["node"]) for row in rows]

    async def anomalies_page(
        self, tenant: str, after: str, limit: int, severity: str | None, status: str | None,
        anomaly_id: str | None = None,
    ) -> list[Entity]:
        rows = await self._executor.read(
            q.ANOMALIES_PAGE, tenant=tenant, after=after, limit=limit, severity=severity,
            status=status, anomalyId=anomaly_id,
        )
        return [Entity.from_row(row["node"]) for row in rows]
