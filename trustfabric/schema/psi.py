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

PsiMode = strawberry.enum(
    Mode, name="PsiMode", description="PSI reveals which selectors match; PSI_CA only how many."
)


@strawberry.enum
class PsiJobStatus(enum.Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@strawberry.type
class Dataset:
    id: str
    partner: str
    name: str
    version: int
    hash: str | None
    size: int
    uploaded_at: datetime | None

    @classmethod
    def from_record(cls, d: DatasetRecord) -> "Dataset":
        return cls(id=d.id, partner=d.partner, name=d.name, version=d.version, hash=d.hash,
                   size=d.size,
                   uploaded_at=datetime.fromisoformat(d.uploaded_at) if d.uploaded_at else None)


@strawberry.type(description="What a client needs to finish an intersection; cache it by "
                             "setupId, which changes with the dataset version or server key.")
class DatasetSetup:
    dataset: Dataset
    setup_id: str
    setup: str = strawberry.field(description="base64 OpenMined ServerSetup message (GCS).")
    max_client_items: int

    @classmethod
    def from_setup(cls, setup: Setup) -> "DatasetSetup":
        return cls(dataset=Dataset.from_record(setup.dataset), setup_id=setup.setup_id,
                   setup=base64.b64encode(setup.message).decode(),
                   max_client_items=setup.max_client_items)


@strawberry.type
class JobError:
    code: str
    message: str


@strawberry.type
class ProofBundle:
    id: str
    envelope: str = strawberry.field(
        description="The signed bundle as canonical JSON; verify with proofPublicKey.")

    @strawberry.field(description="The bundle's explainer as Markdown, rendered from the "
                                  "signed envelope.")
    def explainer_markdown(self) -> str:
        return explainer.markdown(json.loads(self.envelope)["bundle"])


@strawberry.type
class PsiJob:
    id: strawberry.ID
    tenant: str
    dataset_id: str
    dataset_version: int
    mode: Mode
    status: PsiJobStatus
    request_size: int
    request_commitment: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error: JobError | None
    response: str | None = strawberry.field(
        description="base64 OpenMined Response; only for the requesting tenant's members.")
    setup_id: str | None = strawberry.field(
        description="The setup the response must be read with (see `setup`).")
    record: strawberry.Private[JobRecord]

    @strawberry.field(description="The dataset setup of this job's version; for the owner.")
    async def setup(self, info: strawberry.Info) -> DatasetSetup | None:
        if self.response is None or self.record.max_client_items is None:
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
            response=job.response if show_response else None,
            setup_id=job.setup_id,
            record=job,
        )


@strawberry.type(description="A PSI job and the cursor that resumes the listing after it.")
class PsiJobEdge:
    node: PsiJob
    cursor: str


# The shape of a Relay connection, declared here: Strawberry's generic one takes Relay
# nodes only, and a job's id is its own UUID, not a global id.
@strawberry.type
class PsiJobConnection:
    """A page of PSI jobs, newest first; `pageInfo.endCursor` asks for the next. `jobs`,
    `endCursor` and `hasNextPage` are the shape before connections, kept one release."""

    edges: list[PsiJobEdge] = strawberry.field(description="The jobs of the page, in order.")
    page_info: relay.PageInfo = strawberry.field(description="Where the page stands.")

    @strawberry.field(description="The jobs of the page.",
                      deprecation_reason="Use edges { node }; removed in the next release.")
    def jobs(self) -> list[PsiJob]:
        return [edge.node for edge in self.edges]

    @strawberry.field(description="The cursor of the page's last job.",
                      deprecation_reason="Use pageInfo { endCursor }; removed in the next "
                                         "release.")
    def end_cursor(self) -> str | None:
        return self.page_info.end_cursor

    @strawberry.field(description="Whether more jobs follow.",
                      deprecation_reason="Use pageInfo { hasNextPage }; removed in the next "
                                         "release.")
    def has_next_page(self) -> bool:
        return self.page_info.has_next_page


@strawberry.type
class PsiJobEvent:
    job_id: strawberry.ID
    status: PsiJobStatus
    at: datetime


@strawberry.type
class AuditEvent:
    id: str
    at: datetime
    tenant: str
    actor: str
    action: str
    subject: str
    outcome: str
    details: JSON = strawberry.field(
        description=f"Only these keys ever appear: {', '.join(sorted(ALLOWED_DETAILS))}.")

    @classmethod
    def from_record(cls, r: AuditRecord) -> "AuditEvent":
        return cls(id=r.id, at=datetime.fromisoformat(r.at), tenant=r.tenant, actor=r.actor,
                   action=r.action, subject=r.subject, outcome=r.outcome,
                   details=JSON(r.details))


@strawberry.type
class AuditEventPage:
    events: list[AuditEvent]
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class PilotControls:
    document: JSON = strawberry.field(description="The controls, as pilot-controls.yaml reads.")

    @classmethod
    def from_controls(cls, controls: Controls) -> "PilotControls":
        return cls(document=json.loads(json.dumps(controls.to_document())))


@strawberry.input
class RequestPsiInput:
    dataset_id: str
    mode: Mode
    request: str = strawberry.field(description="base64 OpenMined Request message.")
    idempotency_key: str
    setup_id: str | None = strawberry.field(
        default=None, description="The setupId the client used; refused when stale.")


@strawberry.input
class QuotaInput:
    requests: int
    per_seconds: int
    burst: int | None = None


@strawberry.input
class TenantControlsInput:
    psi: bool | None = None
    psi_ca: bool | None = None
    scopes: list[str] | None = None
    quota: QuotaInput | None = None
    weight: float | None = None
