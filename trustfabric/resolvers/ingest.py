from trustfabric.ingest import plan_batch
from trustfabric.schema.ingest import IngestInput, IngestResult
from trustfabric.schema.provenance import Info


async def ingest(info: Info, input: IngestInput, tenant: str | None = None) -> IngestResult:
    caller = info.context.caller
    target = caller.tenant_for(tenant)
    plan = plan_batch(input, target, info.context.settings.max_ingest_events)
    await info.context.repos.ingest.apply(plan)
    return IngestResult(
        tenant=target,
        builds=len(plan.images),
        policy_versions=len(plan.policy_versions),
        job_runs=len(plan.jobs),
        anomalies=len(plan.anomalies),
    )
