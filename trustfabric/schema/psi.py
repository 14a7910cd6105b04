"""PSI and PSI-CA: datasets, jobs, proof bundles, pilot controls, audit events."""

import base64
import enum
import json
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from trustfabric.domain.audit import ALLOWED_DETAILS, AuditRecord
from trustfabric.domain.controls import PilotControls as Controls
from trustfabric.domain.psi import explainer
from trustfabric.domain.psi.datasets import Setup
from trustfabric.domain.psi.protocol import Mode
from trustfabric.domain.psi.records import DatasetRecord, JobRecord
from trustfabric.schema.described import described, described_enum

PsiMode = described_enum(
    Mode, name="PsiMode", description="PSI reveals which selectors match; PSI_CA only how many.",
    values={
        Mode.PSI: "The client learns which of its selectors the partner's dataset holds.",
        Mode.PSI_CA: "The client learns only how many of its selectors the dataset holds "
                     "(cardinality).",
    },
)


class PsiJobStatus(enum.Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


described_enum(PsiJobStatus, description="Where a PSI job stands: QUEUED, then RUNNING, then "
                                         "DONE, FAILED or CANCELLED.", values={
    PsiJobStatus.QUEUED: "Accepted and waiting for the proof worker.",
    PsiJobStatus.RUNNING: "Claimed by a worker and being answered.",
    PsiJobStatus.DONE: "Answered: the response and a signed proof bundle are ready.",
    PsiJobStatus.FAILED: "Could not be answered: see error.",
    PsiJobStatus.CANCELLED: "Cancelled by the tenant, or by an opt-out, before it finished.",
})


@strawberry.type(description="A partner's dataset of items that PSI requests intersect with; "
                             "its items are never shown.")
class Dataset:
    id: str = described("partner/name: pass it as datasetId.")
    partner: str = described("The tenant that owns the items.")
    name: str = described("Its name within the partner.")
    version: int = described("The current version, from 1; each upload adds one.")
    hash: str | None = described("sha256 of the current version's items: what proof bundles "
                                 "name; null before a version exists.")
    size: int = described("How many distinct items the current version holds.")
    uploaded_at: datetime | None = described("When the current version was uploaded; null "
                                             "before a version exists.")

    @classmethod
    def from_record(cls, d: DatasetRecord) -> "Dataset":
        return cls(id=d.id, partner=d.partner, name=d.name, version=d.version, hash=d.hash,
                   size=d.size,
                   uploaded_at=datetime.fromisoformat(d.uploaded_at) if d.uploaded_at else None)


@strawberry.type(description="What a client needs to finish an intersection; cache it by "
                             "setupId, which changes with the dataset version or server key.")
class DatasetSetup:
    dataset: Dataset = described("The dataset, at the version the setup was made from.")
    setup_id: str = described("The setup's identity; pass it as RequestPsiInput.setupId.")
    setup: str = strawberry.field(description="base64 OpenMined ServerSetup message (GCS).")
    max_client_items: int = described("The most selectors a request read with this setup may "
                                      "hold.")

    @classmethod
    def from_setup(cls, setup: Setup) -> "DatasetSetup":
        return cls(dataset=Dataset.from_record(setup.dataset), setup_id=setup.setup_id,
                   setup=base64.b64encode(setup.message).decode(),
                   max_client_items=setup.max_client_items)


@strawberry.type(description="Why a PSI job failed.")
class JobError:
    code: str = described("BAD_USER_INPUT (the request could not be processed) or "
                          "INTERNAL_SERVER_ERROR.")
    message: str = described("What went wrong, for people.")


@strawberry.type(description="The Ed25519-signed record of a finished PSI job, with an "
                             "explainer for people.")
class ProofBundle:
    id: str = described("The bundle's id.")
    envelope: str = strawberry.field(
        description="The signed bundle as canonical JSON; verify with proofPublicKey.")

    @strawberry.field(description="The bundle's explainer as Markdown, rendered from the "
                                  "signed envelope.")
    def explainer_markdown(self) -> str:
        return explainer.markdown(json.loads(self.envelope)["bundle"])


@strawberry.type(description="One PSI or PSI-CA run, durable from the moment requestPsi "
                             "answers.")
class PsiJob:
    id: strawberry.ID = described("The job's id, a time-ordered UUID (UUIDv7).")
    tenant: str = described("The tenant that asked.")
    dataset_id: str = described("The dataset intersected with (partner/name).")
    dataset_version: int = described("The dataset version the job is answered against.")
    mode: Mode = described("PSI or PSI_CA.")
    status: PsiJobStatus = described("Where it stands.")
    request_size: int = described("How many blinded selectors the request held.")
    request_commitment: str = described("sha256:<hex> of the request message, as the proof "
                                        "bundle names it.")
    created_at: datetime = described("When it was accepted.")
    started_at: datetime | None = described("When a worker started it; null while QUEUED.")
    completed_at: datetime | None = described("When it became DONE, FAILED or CANCELLED; null "
                                              "before.")
    error: JobError | None = described("Why it FAILED; null otherwise.")
    setup_id: str | None = strawberry.field(
        description="The setup the response must be read with (see `setup`).")
    record: strawberry.Private[JobRecord]
    show_response: strawberry.Private[bool]

    @strawberry.field(description="base64 OpenMined Response; only for the requesting "
                                  "tenant's members, until the job is retired.")
    async def response(self, info: strawberry.Info) -> str | None:
        if not self.show_response or self.record.response_ref is None:
            return None
        return await info.context.loaders.psi.responses.load(self.record)

    @strawberry.field(description="The dataset setup of this job's version; for the owner.")
    async def setup(self, info: strawberry.Info) -> DatasetSetup | None:
        if (not self.show_response or self.record.response_ref is None
                or self.record.max_client_items is None):
            return None
        context = info.context
        version = await context.repos.datasets.version(
            f"{self.record.dataset_id}@{self.record.dataset_version}")
        return DatasetSetup.from_setup(
            await context.setups.for_version(version, self.record.max_client_items))

    @classmethod
    def from_record(cls, job: JobRecord, show_response: bool) -> "PsiJob":
        def when(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            id=strawberry.ID(job.id), tenant=job.tenant, dataset_id=job.dataset_id,
            dataset_version=job.dataset_version, mode=Mode(job.mode),
            status=PsiJobStatus(job.status), request_size=job.request_size,
            request_commitment=job.request_commitment,
            created_at=datetime.fromisoformat(job.created_at), started_at=when(job.started_at),
            completed_at=when(job.completed_at),
            error=JobError(code=job.error_code, message=job.error_message or "")
            if job.error_code else None,
            setup_id=job.setup_id,
            record=job,
            show_response=show_response,
        )


@strawberry.type(description="A PSI job and the cursor that resumes the listing after it.")
class PsiJobEdge:
    node: PsiJob = described("The job.")
    cursor: str = described("Pass as `after` to list the jobs after this one.")


# The shape of a Relay connection, declared here: Strawberry's generic one takes Relay
# nodes only, and a job's id is its own UUID, not a global id.
@strawberry.type(description="A page of PSI jobs, newest first; pageInfo.endCursor, passed as "
                             "`after`, asks for the next.")
class PsiJobConnection:
    """A page of PSI jobs, newest first; `pageInfo.endCursor` asks for the next. `jobs`,
    `endCursor` and `hasNextPage` are the shape before connections, kept one release."""

    edges: list[PsiJobEdge] = strawberry.field(description="The jobs of the page, in order.")
    page_info: relay.PageInfo = strawberry.field(description="Where the page stands.")

    @strawberry.field(description="The jobs of the page.",
                      deprecation_reason="Use edges { node }; removed in the next release.")
    def jobs(self) -> list[PsiJob]:
        return [edge.node for edge in self.edges]

    @strawberry.field(description="Pass as `after` for the next page.",
                      deprecation_reason="Use pageInfo { endCursor }; removed in the next "
                                         "release.")
    def end_cursor(self) -> str | None:
        return self.page_info.end_cursor

    @strawberry.field(description="Whether more jobs follow.",
                      deprecation_reason="Use pageInfo { hasNextPage }; removed in the next "
                                         "release.")
    def has_next_page(self) -> bool:
        return self.page_info.has_next_page


@strawberry.type(description="A PSI job changed status.")
class PsiJobEvent:
    job_id: strawberry.ID = described("The job (PsiJob.id).")
    status: PsiJobStatus = described("Its new status.")
    at: datetime = described("When it changed.")


@strawberry.type(description="One audited action: who did what to what, and how it ended.")
class AuditEvent:
    id: str = described("The event's id.")
    at: datetime = described("When it happened.")
    tenant: str = described("The tenant it concerns.")
    actor: str = described("The token id that acted (or a background task's name).")
    action: str = described("What was done, e.g. psi.request, psi.cancel, dataset.register, "
                            "policy.environment.")
    subject: str = described("What it was done to, e.g. a job or dataset id.")
    outcome: str = described("How it ended, e.g. created, changed, cancelled or refused.")
    details: JSON = strawberry.field(
        description=f"Only these keys ever appear: {', '.join(sorted(ALLOWED_DETAILS))}.")

    @classmethod
    def from_record(cls, r: AuditRecord) -> "AuditEvent":
        return cls(id=r.id, at=datetime.fromisoformat(r.at), tenant=r.tenant, actor=r.actor,
                   action=r.action, subject=r.subject, outcome=r.outcome,
                   details=JSON(r.details))


@strawberry.type(description="A page of audit events.")
class AuditEventPage:
    events: list[AuditEvent] = described("The events of the page.")
    end_cursor: str | None = described("Pass as `after` for the next page; null when the page "
                                       "is empty.")
    has_next_page: bool = described("Whether more events follow.")


@strawberry.type(description="The pilot controls in force: operators see the whole document, a "
                             "tenant the part that applies to it.")
class PilotControls:
    document: JSON = strawberry.field(description="The controls, as pilot-controls.yaml reads.")

    @classmethod
    def from_controls(cls, controls: Controls) -> "PilotControls":
        return cls(document=json.loads(json.dumps(controls.to_document())))


@strawberry.input(description="A PSI request: a blinded OpenMined Request over a dataset's "
                              "setup.")
class RequestPsiInput:
    dataset_id: str = described("The dataset to intersect with (partner/name); it must be in "
                                "the tenant's scopes.")
    mode: Mode = described("PSI or PSI_CA; the tenant's flag for it must be on.")
    request: str = strawberry.field(description="base64 OpenMined Request message.")
    idempotency_key: str = described("One job per key: a retry with the same key and request "
                                     "returns the same job. Letters, digits, '.', '_' or '-', "
                                     "at most 128.")
    setup_id: str | None = strawberry.field(
        default=None, description="The setupId the client used; refused when stale.")


@strawberry.input(description="A tenant's PSI request quota: a sustained rate and a burst.")
class QuotaInput:
    requests: int = described("The sustained rate: this many requests per perSeconds; at "
                              "least 1.")
    per_seconds: int = described("The sustained rate's window, in seconds; at least 1.")
    burst: int | None = strawberry.field(
        default=None, description="About how many a second may arrive at once, at least 1 "
                                  "(default: requests).")


@strawberry.input(description="Changes to a tenant's PSI controls; a field left out is kept.")
class TenantControlsInput:
    psi: bool | None = strawberry.field(default=None, description="May it run PSI jobs.")
    psi_ca: bool | None = strawberry.field(default=None,
                                           description="May it run PSI_CA jobs.")
    scopes: list[str] | None = strawberry.field(
        default=None, description="The dataset ids (partner/name) it may intersect with; "
                                  "replaces the list.")
    quota: QuotaInput | None = strawberry.field(default=None,
                                                description="Its request quota.")
    weight: float | None = strawberry.field(
        default=None, description="Its share of the proof workers when tenants compete, "
                                  "0.01 to 100 (default 1).")
