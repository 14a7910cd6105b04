"""Writes an ingest plan in one transaction: all of it, or nothing."""

from trustfabric.audit import now_iso
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.queries import ingest as q
from trustfabric.ingest import Plan, conflicting_links, missing_references


class IngestRepository:
    def __init__(self, executor: GraphExecutor) -> None:
        self._executor = executor

    async def apply(self, plan: Plan) -> None:
        async def work(tx: Tx) -> None:
            # Checks run inside the write transaction, so nothing can slip in between
            # the check and the write; raising here rolls everything back.
            if plan.references:
                rows = await tx.run(q.EXISTING_KEYS, keys=list(plan.references))
                missing_references(plan, (row["key"] for row in rows))
            if plan.links:
                conflicting_links(await tx.run(q.CONFLICTING_LINKS, links=plan.links))
            await tx.run(q.ENSURE_TENANT, tenant=plan.tenant, now=now_iso())
            for query, rows in (
                (q.UPSERT_COMMITS, plan.commits),
                (q.UPSERT_PARENTS, plan.parents),
                (q.UPSERT_IMAGES, plan.images),
                (q.LINK_BASE_IMAGES, plan.base_links),
                (q.UPSERT_POLICY_VERSIONS, plan.policy_versions),
                (q.UPSERT_JOBS, plan.jobs),
                (q.UPSERT_ANOMALIES, plan.anomalies),
            ):
                if rows:
                    await tx.run(query, rows=rows, tenant=plan.tenant)

        await self._executor.write_tx(work)
