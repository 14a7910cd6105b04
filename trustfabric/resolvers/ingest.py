from typing import Annotated

import strawberry

from trustfabric.domain.provenance.ingest import plan_batch
from trustfabric.schema.ingest import IngestInput, IngestResult
from trustfabric.schema.provenance import Info


async def ingest(
    info: Info,
    input: Annotated[IngestInput, strawberry.argument(
        description="The events, at least one and at most 1,000 (TF_MAX_INGEST_EVENTS).")],
    tenant: Annotated[str | None, strawberry.argument(
        description="Operators: the tenant the events are for (default: the caller's own).")]
    = None,
) -> IngestResult:
    caller = info.context.caller
    target = caller.tenant_for(tenant)
    plan = plan_batch(input, target, info.context.settings.max_ingest_events)
    await info.context.repos.ingest.apply(plan, await info.context.suppressions.paging(target))
    return IngestResult(
        tenant=target,
        builds=plan.count("Image"),
        policy_versions=plan.count("PolicyVersion"),
        job_runs=plan.count("Job"),
        anomalies=plan.count("Anomaly"),
    )
