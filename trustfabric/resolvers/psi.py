from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from trustfabric.domain.auth import Caller, Role
from trustfabric.domain.controls import MAX_WEIGHT, MIN_WEIGHT, Quota
from trustfabric.domain.controls import PilotControls as Controls
from trustfabric.domain.events.rechecked import rechecked
from trustfabric.domain.events.records import PSI_JOB, JobEvent
from trustfabric.domain.ids import check_name
from trustfabric.domain.psi.records import JobRecord
from trustfabric.errors import BadUserInput
from trustfabric.resolvers.provenance import decode_cursor, encode_cursor
from trustfabric.schema.extensions.limits import MAX_EXAMINED, MAX_PAGE
from trustfabric.schema.provenance import Info
from trustfabric.schema.psi import (
    AuditEvent,
    AuditEventPage,
    Dataset,
    DatasetSetup,
    PilotControls,
    ProofBundle,
    PsiJob,
    PsiJobConnection,
    PsiJobEdge,
    PsiJobEvent,
    PsiJobStatus,
    RequestPsiInput,
    TenantControlsInput,
)


def _job(caller: Caller, job: JobRecord) -> PsiJob:
    # The result is the requesting tenant's alone: auditors and operators see the rest.
    owner = caller.tenant == job.tenant and caller.role is not Role.AUDITOR
    return PsiJob.from_record(job, show_response=owner)


JobId = Annotated[strawberry.ID, strawberry.argument(description="The job's id (PsiJob.id).")]
First = Annotated[int, strawberry.argument(description="How many to return, 1 to 100.")]
After = Annotated[str | None, strawberry.argument(
    description="The endCursor of the previous page; null for the first page.")]
ItemList = Annotated[list[str], strawberry.argument(
    description="The dataset's items (e.g. e-mail addresses or ids), up to 1,000,000 distinct "
                "(TF_PSI_MAX_DATASET_ITEMS); duplicates count once.")]


async def request_psi(
    info: Info,
    input: Annotated[RequestPsiInput, strawberry.argument(
        description="The dataset, the mode, the blinded request and an idempotency key.")],
) -> PsiJob:
    caller = info.context.caller
    caller.require_write()
    job = await info.context.psi.request(caller, input.dataset_id, input.mode, input.request,
                                         input.idempotency_key, input.setup_id)
    return _job(caller, job)


async def cancel_psi_job(info: Info, id: JobId) -> PsiJob:
    caller = info.context.caller
    await info.context.psi.cancel(caller, str(id))
    return _job(caller, await info.context.repos.jobs.get(str(id), caller.read_scope))


async def psi_job(info: Info, id: JobId) -> PsiJob:
    caller = info.context.caller
    return _job(caller, await info.context.repos.jobs.get(str(id), caller.read_scope))


async def psi_jobs(
    info: Info, first: First = 20, after: After = None,
    status: Annotated[PsiJobStatus | None, strawberry.argument(
        description=f"Only jobs in this status. A filtered page looks at {MAX_EXAMINED:,} jobs "
                    "at most: it may hold fewer than `first` with `hasNextPage` true, and "
                    "`pageInfo.endCursor` goes on after the last job it looked at.")] = None,
    tenant: Annotated[str | None, strawberry.argument(
        description="Operators: whose jobs (default: the caller's own tenant).")] = None,
) -> PsiJobConnection:
    caller = info.context.caller
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}")
    scope = caller.tenant_for(tenant)
    position = decode_cursor(after, "") if after else None
    page = await info.context.repos.jobs.page(scope, position, first + 1,
                                            status.value if status else None, MAX_EXAMINED)
    edges = [PsiJobEdge(cursor=encode_cursor(job.position), node=_job(caller, job))
             for job in page.jobs[:first]]
    # a filtered page cut short by its bound goes on after the last job it looked at, or
    # the next page would look at the same jobs again
    more = len(page.jobs) > first or page.resume is not None
    return PsiJobConnection(edges=edges, page_info=relay.PageInfo(
        has_next_page=more,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=(encode_cursor(page.resume) if page.resume
                    else edges[-1].cursor if edges else None),
    ))


async def proof_bundle(
    info: Info,
    job_id: Annotated[strawberry.ID, strawberry.argument(
        description="The job's id; the answer is null unless the job is DONE.")],
) -> ProofBundle | None:
    bundle = await info.context.results.bundle(str(job_id), info.context.caller.read_scope)
    return None if bundle is None else ProofBundle(id=bundle.id, envelope=bundle.envelope)


async def datasets(
    info: Info,
    partner: Annotated[str | None, strawberry.argument(
        description="Only this partner's datasets. A tenant sees its own and those in its "
                    "scopes.")] = None,
) -> list[Dataset]:
    caller = info.context.caller
    if partner is not None:
        check_name(partner, "partner")
    found = await info.context.repos.datasets.of_partner(partner)
    if not caller.crosses_tenants:  # one's own datasets, and those one may intersect with
        controls, _ = await info.context.repos.controls.current()
        scopes = set(controls.for_tenant(caller.tenant).scopes)
        found = [d for d in found if d.partner == caller.tenant or d.id in scopes]
    return [Dataset.from_record(d) for d in found]


async def dataset_setup(
    info: Info,
    dataset_id: Annotated[str, strawberry.argument(
        description="The dataset (partner/name): the caller's own or one in its scopes.")],
) -> DatasetSetup:
    context, caller = info.context, info.context.caller
    controls, _ = await context.repos.controls.current()
    dataset = await context.repos.datasets.get(dataset_id)
    if not caller.crosses_tenants and caller.tenant != dataset.partner:
        controls.check_scope(caller.tenant, dataset.id, dataset.partner)
    return DatasetSetup.from_setup(await context.setups.get(dataset, controls.max_request_size))


async def register_dataset(
    info: Info,
    name: Annotated[str, strawberry.argument(
        description="Its name: letters, digits, '.', '_' or '-', at most 128; the id is "
                    "partner/name.")],
    items: ItemList,
    partner: Annotated[str | None, strawberry.argument(
        description="Operators: the partner tenant that owns it (default: the caller's "
                    "own).")] = None,
) -> Dataset:
    dataset = await info.context.datasets.register(info.context.caller, partner, name, items)
    return Dataset.from_record(dataset)


async def upload_dataset_version(
    info: Info,
    dataset_id: Annotated[str, strawberry.argument(description="The dataset (partner/name).")],
    items: ItemList,
) -> Dataset:
    dataset = await info.context.datasets.upload_version(info.context.caller, dataset_id, items)
    return Dataset.from_record(dataset)


def proof_public_key(info: Info) -> str:
    return info.context.signing.public_pem


async def audit_events(
    info: Info, first: First = 50, after: After = None,
    action: Annotated[str | None, strawberry.argument(
        description="Only events of this action, e.g. psi.request.")] = None,
    tenant: Annotated[str | None, strawberry.argument(
        description="Operators: one tenant's events (default: every tenant's; an "
                    "auditor always reads its own).")] = None,
) -> AuditEventPage:
    caller = info.context.caller
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}")
    scope = caller.tenant_for(tenant) if tenant or not caller.crosses_tenants else None
    after_key = decode_cursor(after, "") if after else ""
    page = await info.context.repos.audit.page(scope, after_key, first + 1, action)
    return AuditEventPage(
        events=[AuditEvent.from_record(r) for r in page[:first]],
        end_cursor=encode_cursor(page[:first][-1].key) if page else None,
        has_next_page=len(page) > first,
    )


async def pilot_controls(info: Info) -> PilotControls:
    caller = info.context.caller
    controls, _ = await info.context.repos.controls.current(fresh=True)
    if caller.crosses_tenants:
        return PilotControls.from_controls(controls)
    # a tenant sees the controls that apply to it, not its neighbours'
    return PilotControls(document=JSON({"tenant": caller.tenant,
                                        **controls.in_force(caller.tenant),
                                        "optedOut": caller.tenant in controls.opted_out}))


async def update_tenant_controls(
    info: Info,
    tenant: Annotated[str, strawberry.argument(description="The tenant whose controls change.")],
    input: Annotated[TenantControlsInput, strawberry.argument(
        description="What changes; fields left out are kept.")],
) -> PilotControls:
    changes: dict = {}
    if input.psi is not None:
        changes["psi"] = input.psi
    if input.psi_ca is not None:
        changes["psi_ca"] = input.psi_ca
    if input.scopes is not None:
        changes["scopes"] = tuple(input.scopes)
    if input.quota is not None:
        if input.quota.requests < 1 or input.quota.per_seconds < 1:
            raise BadUserInput("quota numbers must be positive")
        burst = input.quota.burst if input.quota.burst is not None else input.quota.requests
        if burst < 1:
            raise BadUserInput("quota numbers must be positive")
        changes["quota"] = Quota(input.quota.requests, input.quota.per_seconds, burst)
    if input.weight is not None:
        if not MIN_WEIGHT <= input.weight <= MAX_WEIGHT:
            raise BadUserInput(f"weight must be from {MIN_WEIGHT:g} to {MAX_WEIGHT:g}")
        changes["weight"] = input.weight
    after = await info.context.controls.change(
        info.context.caller, lambda c: c.with_tenant(tenant, **changes), f"tenant:{tenant}")
    return PilotControls.from_controls(after)


async def set_opt_out(
    info: Info,
    party: Annotated[str, strawberry.argument(description="The tenant or partner.")],
    opted_out: Annotated[bool, strawberry.argument(
        description="true opts it out and cancels its pending jobs; false opts it back in.")],
) -> PilotControls:
    after = await info.context.controls.set_opt_out(info.context.caller, party, opted_out)
    return PilotControls.from_controls(after)


async def set_request_size_limits(
    info: Info,
    minimum: Annotated[int, strawberry.argument(
        description="The fewest selectors a PSI request may hold, at least 1 (default 8).")],
    maximum: Annotated[int, strawberry.argument(
        description="The most it may hold, at least minimum (default 1,000).")],
) -> PilotControls:
    def edit(c: Controls) -> Controls:
        # through the document, so the bounds are validated like the file's
        return Controls.from_document(
            {**c.to_document(), "minRequestSize": minimum, "maxRequestSize": maximum})

    after = await info.context.controls.change(info.context.caller, edit, "requestSize")
    return PilotControls.from_controls(after)


async def psi_job_events(
    info: Info,
    job_id: Annotated[strawberry.ID | None, strawberry.argument(
        description="Only this job's changes (default: every job of the caller's tenant).")]
    = None,
    statuses: Annotated[list[PsiJobStatus] | None, strawberry.argument(
        description="Only these changes, e.g. [DONE, FAILED, CANCELLED] to hear when jobs "
                    "finish.")] = None,
) -> AsyncGenerator[PsiJobEvent, None]:
    caller = await info.context.authenticate()
    wanted = {status.value for status in statuses} if statuses else None

    def matches(event: JobEvent) -> bool:
        return (event.topic == PSI_JOB and (job_id is None or event.job_id == str(job_id))
                and (wanted is None or event.status in wanted))

    # re-checked every token TTL, so a revoked token's subscription ends within two
    # of them (with UNAUTHENTICATED), as its requests do
    events = rechecked(info.context.events.subscribe(caller.tenant, matches),
                       info.context.settings.token_cache_ttl_s, info.context.reauthenticate)
    async for event in events:
        yield PsiJobEvent(job_id=strawberry.ID(event.job_id),
                          status=PsiJobStatus(event.status),
                          at=datetime.fromisoformat(event.at))
