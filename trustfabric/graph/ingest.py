"""Writes an ingest plan in one transaction: all of it, or nothing."""


from trustfabric.domain.audit import now_iso
from trustfabric.domain.events.records import JobEvent
from trustfabric.domain.provenance.ingest import (
    Plan,
    conflicting_links,
    cycles,
    missing_references,
)
from trustfabric.domain.suppressions.service import Paging
from trustfabric.errors import Conflict
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.job_events import Outbox
from trustfabric.graph.queries import ingest as q
from trustfabric.graph.suppressions import decide_in


class IngestRepository:
    def __init__(self, executor: GraphExecutor, outbox: Outbox) -> None:
        self._executor = executor
        self._outbox = outbox  # the anomalies' decisions are announced as events

    async def apply(self, plan: Plan, paging: Paging | None = None) -> None:
        """With `paging`, every new anomaly of the plan is decided in the same transaction:
        an anomaly is never recorded without its decision."""
        anomalies = list(plan.nodes.get("Anomaly", {}))
        events: list[JobEvent] = []  # of the try that commits

        async def work(tx: Tx) -> None:
            # Checks run inside the write transaction, so nothing can slip in between
            # the check and the write; raising here rolls everything back.
            if plan.references:
                rows = await tx.run(q.EXISTING_KEYS, keys=list(plan.references))
                missing_references(plan, (row["key"] for row in rows))
            if plan.exclusive or plan.exclusive_in:
                conflicting_links(
                    await tx.run(q.CONFLICTING_LINKS, links=plan.exclusive)
                    if plan.exclusive else [],
                    await tx.run(q.CONFLICTING_INCOMING_LINKS, links=plan.exclusive_in)
                    if plan.exclusive_in else [],
                )
            if bases := plan.based_on_targets():
                rows = await tx.run(q.BASES_REACHED, keys=bases)
                cycles(plan, ((row["start"], row["reached"]) for row in rows))
            await tx.run(q.ENSURE_TENANT, tenant=plan.tenant, now=now_iso())
            for kind, nodes in plan.nodes.items():
                rows = [{"key": key, "props": props} for key, props in nodes.items()]
                await tx.run(q.CREATE_MISSING[kind], rows=rows)
                if kind == "Commit":
                    full = [row for row in rows if row["key"] not in plan.stubs]
                    await tx.run(q.FILL_COMMITS, rows=full)
            for type, pairs in plan.links.items():
                await tx.run(q.LINKS[type], rows=[{"source": a, "target": b} for a, b in pairs])
            if plan.updates:
                await tx.run(q.UPDATE, rows=plan.updates)
            if paging is not None and anomalies:
                events[:] = await decide_in(tx, plan.tenant, anomalies, paging, self._outbox)

        try:
            await self._executor.write_tx(work)
        except Conflict:
            # Another batch created some of the same nodes between our check and our
            # write; on a second pass they exist, and the batch applies idempotently.
            await self._executor.write_tx(work)
        self._outbox.told(events)
