"""Audit events in the graph, written in batches and read by auditors."""

import secrets
from collections import Counter
from collections.abc import Sequence
from typing import Any

from trustfabric.domain.audit import AuditEvent, AuditRecord, now_iso, tenant_key
from trustfabric.graph.cypher import Cypher
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.queries import audit as q

# An event's place in its batch, fixed width so keys sort as numbers do: no statement
# writes a million events.
_PLACE = "06d"


def filed(events: Sequence[AuditEvent]) -> tuple[list[AuditEvent], list[dict[str, str]]]:
    """The events, each given its batch (one a tenant, `q.WRITE`) and its key; and the
    batches' heads. A batch's key is the time its events are filed, just before they are
    written, and a random id: a log read in key order reads it about as it was written
    (decision 0027)."""
    at = now_iso()
    heads: dict[str, dict[str, str]] = {}
    sizes: Counter[str] = Counter()
    placed: list[AuditEvent] = []
    for event in events:
        tenant = event["tenant"]
        if tenant not in heads:
            key = f"{at}|{secrets.token_hex(10)}"
            heads[tenant] = {"key": key, "tenant": tenant, "tenantKey": tenant_key(tenant, key)}
        batch = heads[tenant]["key"]
        placed.append(event | {"batch": batch, "key": f"{batch}|{sizes[tenant]:{_PLACE}}"})
        sizes[tenant] += 1
    return placed, list(heads.values())


def batch_of(key: str) -> str:
    """The key of the batch the event of `key` is in. An event recorded before batches
    (decision 0027) is a batch of its own, under its key of two parts."""
    return key.rsplit("|", 1)[0] if key.count("|") == 2 else key


class AuditRepository:
    def __init__(self, executor: GraphExecutor) -> None:
        self._executor = executor

    async def record(self, *events: AuditEvent) -> None:
        if events:
            audits, batches = filed(events)
            await self._executor.write(q.RECORD, audits=audits, auditBatches=batches)

    @staticmethod
    async def record_in(tx: Tx, *events: AuditEvent) -> None:
        """Within a caller's transaction: the event commits with the change it describes."""
        if events:
            audits, batches = filed(events)
            await tx.run(q.RECORD, audits=audits, auditBatches=batches)

    async def page(self, tenant: str | None, after: str, limit: int,
                   action: str | None) -> list[AuditRecord]:
        """Events after the key `after` in key order: the tenant's, or every tenant's."""
        start = batch_of(after)
        # every key sorts below "~" (it starts with a timestamp)
        if tenant is None:
            rows = await self._page(q.PAGE_END, q.PAGE, start, "~", after, limit, action)
        else:
            rows = await self._page(q.TENANT_PAGE_END, q.TENANT_PAGE, tenant_key(tenant, start),
                                    tenant_key(tenant, "~"), after, limit, action,
                                    tenant=tenant)
        return [AuditRecord.from_row(row["event"]) for row in rows]

    async def _page(self, end: Cypher, page: Cypher, start: str, below: str, after: str,
                    limit: int, action: str | None, **scope: str) -> list[dict[str, Any]]:
        # the cursor's batch may hold none of the page: one batch more bounds it
        [bound] = await self._executor.read(end, start=start, below=below, batches=limit + 1,
                                            action=action, **scope)
        if not bound["found"]:
            return []
        return await self._executor.read(page, start=start, last=bound["last"], after=after,
                                         limit=limit, action=action, **scope)
