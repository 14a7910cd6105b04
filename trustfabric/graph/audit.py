"""Audit events in the graph, written in batches and read by auditors."""

import json
from dataclasses import dataclass
from typing import Any

from trustfabric.audit import tenant_key
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.queries import audit as q


@dataclass(frozen=True)
class AuditRecord:
    id: str
    key: str
    at: str
    tenant: str
    actor: str
    action: str
    subject: str
    outcome: str
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "AuditRecord":
        return cls(**{**row, "details": json.loads(row["details"])})


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
        if tenant is None:
            rows = await self._executor.read(q.PAGE, after=after, limit=limit, action=action)
        else:
            rows = await self._tenant_page(tenant, after, limit, action)
        return [AuditRecord.from_row(row["event"]) for row in rows]

    async def _tenant_page(self, tenant: str, after: str, limit: int,
                           action: str | None) -> list[dict[str, Any]]:
        # every key sorts below "~" (it starts with a timestamp)
        span = {"tenant": tenant, "action": action, "limit": limit,
                "above": tenant_key(tenant, after)}
        [end] = await self._executor.read(q.TENANT_PAGE_END, below=tenant_key(tenant, "~"),
                                          **span)
        if not end["found"]:
            return []
        return await self._executor.read(q.TENANT_PAGE, last=end["last"], **span)
