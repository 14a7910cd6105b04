"""Inputs an integration sends to record what happened, and what it gets back."""

from datetime import datetime

import strawberry

from trustfabric.schema.provenance import AnomalyStatus, JobKind, JobStatus, Severity


@strawberry.input(description="An image was built; optionally from a commit of a repository.")
class BuildEventInput:
    image_digest: str
    image_ref: str | None = None
    repo_url: str | None = None
    commit_sha: str | None = None
    commit_message: str | None = None
    author: str | None = None
    committed_at: datetime | None = None
    parent_shas: list[str] = strawberry.field(default_factory=list)
    base_image_digests: list[str] = strawberry.field(
        default_factory=list, description="Images this one is based on, recorded before or here."
    )
    built_at: datetime | None = None


@strawberry.input(description="A policy version was put in force.")
class PolicyVersionEventInput:
    policy_id: str
    version: str
    hash: str
    created_at: datetime | None = None


@strawberry.input(description="A job ran (or changed status) with an image under a policy.")
class JobRunEventInput:
    job_id: str
    kind: JobKind
    status: JobStatus
    image_digest: str
    policy_id: str | None = None
    policy_version: str | None = None
    pipeline: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@strawberry.input(description="A job reported a delta against what was expected.")
class AnomalyEventInput:
    anomaly_id: str
    job_id: str
    kind: str
    severity: Severity
    status: AnomalyStatus = AnomalyStatus.OPEN
    summary: str | None = None
    observed_at: datetime | None = None


@strawberry.input(description="One batch, written in one transaction: all events or none.")
class IngestInput:
    builds: list[BuildEventInput] = strawberry.field(default_factory=list)
    policy_versions: list[PolicyVersionEventInput] = strawberry.field(default_factory=list)
    job_runs: list[JobRunEventInput] = strawberry.field(default_factory=list)
    anomalies: list[AnomalyEventInput] = strawberry.field(default_factory=list)


@strawberry.type
class IngestResult:
    tenant: str
    builds: int
    policy_versions: int
    job_runs: int
    anomalies: int
