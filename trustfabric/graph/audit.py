"""Audit events in the graph, written in batches and read by auditors."""

from typing import Any

from trustfabric.domain.audit import AuditRecord, tenant_key
from trustfabric.graph.cypher import Cypher
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.queries import audit as q


class AuditRepository:
    def __init__(self, executor: GraphExecutor) -> None:
        self._executor = executor

    async def record(self, *events: dict[str, Any]) -> None:
        if events:
            await self._executor.write(q.RECORD, events=list(events))

    @staticmethod
    async def record_in(tx: Tx, *events: dict[str, Any]) -> None:
        """Within a caller's transaction: the event commits with the change it describes."""
        if events:
            await tx.run(q.RECORD, events=list(events))

    async def page(self, tenant: str | None, after: str, limit: int,
                   action: str | None) -> list[AuditRecord]:
        """Events after the key `after` in key order: the tenant's, or every tenant's."""
        span = {"action": action, "limit": limit}
        # every key sorts below "~" (it starts with a timestamp)
        if tenant is None:
            rows = await self._page(q.PAGE_END, q.PAGE, after, "~", **span)
        else:
            rows = await self._page(q.TENANT_PAGE_END, q.TENANT_PAGE, tenant_key(tenant, after),
                                    tenant_key(tenant, "~"), tenant=tenant, **span)
        return [AuditRecord.from_row(row["event"]) for row in rows]

    async def _page(self, end: Cypher, page: Cypher, above: str, below: str,
                    **span: Any) -> list[dict[str, Any]]:
        [bound] = await self._executor.read(end, above=above, below=below, **span)
        if not bound["found"]:
            return []
        return await self._executor.read(page, above=above, last=bound["last"], **span)
