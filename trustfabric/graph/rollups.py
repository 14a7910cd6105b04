"""Rollups in the graph: the week's figures read for a digest, digests written once."""

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from trustfabric.domain.audit import AuditEvent, iso, tenant_key
from trustfabric.domain.events.records import ROLLUP, announced
from trustfabric.domain.rollups.digest import WeekFigures
from trustfabric.domain.rollups.service import Rollup
from trustfabric.graph.executor import GraphExecutor
from trustfabric.graph.job_events import Outbox
from trustfabric.graph.psi import page_key
from trustfabric.graph.queries import rollups as q

# A week's jobs are read by creation time, from the index tenants' pages read: those
# created from this long before the week, since a job finishes within seconds of its
# claim. A job that waited longer in the queue (a worker down for a week) and finished in
# the week is not counted: the price of not reading the tenant's whole history.
LONGEST_JOB = timedelta(days=7)


def _rollup(row: dict[str, Any]) -> Rollup:
    return Rollup(row["key"], row["tenant"], row["week"], row["hash"], json.loads(row["content"]),
                  row["generatedAt"], frozenset(row.get("done") or []),
                  len(row.get("readBy") or []))


class RollupRepository:
    def __init__(self, executor: GraphExecutor, outbox: Outbox) -> None:
        self._executor = executor
        self._outbox = outbox  # a digest made is announced (its webhook delivery)

    async def figures(self, tenant: str, start: str, end: str) -> WeekFigures:
        found = WeekFigures()
        for row in await self._executor.read(q.PROMOTIONS, tenant=tenant, start=start, end=end):
            if row["allowed"]:
                found.promotions_allowed += 1
            else:
                found.promotions_denied += 1
                insight = json.loads(row["insight"]) if row["insight"] else {}
                if insight.get("deciding_rule"):
                    found.blocking_rules[insight["deciding_rule"]] += 1
        earliest = iso(datetime.fromisoformat(start) - LONGEST_JOB)
        found.proofs = Counter({row["status"]: row["n"] for row in await self._executor.read(
            q.PROOFS, tenant=tenant, start=start, end=end,
            low=page_key(tenant, end, "~"), high=page_key(tenant, earliest, "~"))})
        for row in await self._executor.read(q.DEMAND, tenant=tenant,
                                             low=tenant_key(tenant, start),
                                             high=tenant_key(tenant, end)):
            details = json.loads(row["details"]) if row["details"] else {}
            count = details.get("count", 1)
            if row["outcome"] == "accepted":
                found.requests_accepted += count
            elif details.get("reason") == "OVERLOADED":
                found.requests_shed += count
        found.anomalies = Counter({row["decision"]: row["n"] for row in await self._executor.read(
            q.ANOMALIES, tenant=tenant, start=start, end=end)})
        found.top_anomalies = await self._executor.read(q.TOP_ANOMALIES, tenant=tenant,
                                                        start=start, end=end)
        return found

    async def rollup(self, key: str, tenant: str | None) -> Rollup | None:
        rows = await self._executor.read(q.ROLLUP, key=key, tenant=tenant)
        return _rollup(rows[0]["rollup"]) if rows else None

    async def latest_before(self, tenant: str, week: str) -> Rollup | None:
        rows = await self._executor.read(q.LATEST_BEFORE, tenant=tenant, week=week)
        return _rollup(rows[0]["rollup"]) if rows else None

    async def create(self, rollup: Rollup, audit: AuditEvent) -> Rollup | None:
        """None when the tenant's digest of that week was written first."""
        props = {"key": rollup.key, "kind": "Rollup", "tenant": rollup.tenant,
                 "week": rollup.week, "hash": rollup.hash,
                 "content": json.dumps(rollup.content, sort_keys=True),
                 "generatedAt": rollup.generated_at}

        created = await self._outbox.create(
            self._executor, "Rollup", props, audit,
            announced(ROLLUP, rollup.tenant, rollup.week, "GENERATED"))
        return rollup if created else None

    async def mark_read(self, key: str, reader: str, at: str) -> bool:
        return bool(await self._executor.write(q.MARK_READ, key=key, reader=reader, at=at))

    async def mark_done(self, key: str, item: str) -> bool:
        return bool(await self._executor.write(q.MARK_DONE, key=key, item=item))

    async def tenants(self) -> list[str]:
        return [row["tenant"] for row in await self._executor.read(q.TENANTS)]

    async def readership(self, week: str) -> dict[str, int]:
        rows = await self._executor.read(q.READERSHIP, week=week)
        return {row["tenant"]: row["readers"] for row in rows}
