"""What an integration reports happened: the events of one ingest batch.

The GraphQL inputs (`schema/ingest.py`) are these classes with descriptions, so a batch
reaches `ingest.plan_batch` as it was sent, with no copy in between.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from trustfabric.domain.provenance.enums import AnomalyStatus, JobKind, JobStatus, Severity


@dataclass
class BuildEvent:
    image_digest: str
    image_ref: str | None = None
    repo_url: str | None = None
    commit_sha: str | None = None
    commit_message: str | None = None
    author: str | None = None
    committed_at: datetime | None = None
    parent_shas: list[str] = field(default_factory=list)
    base_image_digests: list[str] = field(default_factory=list)
    built_at: datetime | None = None


@dataclass
class PolicyVersionEvent:
    policy_id: str
    version: str
    hash: str
    created_at: datetime | None = None


@dataclass
class JobRunEvent:
    job_id: str
    kind: JobKind
    status: JobStatus
    image_digest: str
    policy_id: str | None = None
    policy_version: str | None = None
    pipeline: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass
class AnomalyEvent:
    anomaly_id: str
    job_id: str
    kind: str
    severity: Severity
    status: AnomalyStatus = AnomalyStatus.OPEN
    summary: str | None = None
    observed_at: datetime | None = None
    fingerprint: str | None = None  # what repeats share; derived from kind and summary if absent


@dataclass
class SnapshotEvent:
    """The facts known about an image at a moment (declared in `policy.facts`)."""

    image_digest: str
    facts: dict[str, Any]
    taken_at: datetime | None = None


@dataclass
class IngestBatch:
    builds: list[BuildEvent] = field(default_factory=list)
    policy_versions: list[PolicyVersionEvent] = field(default_factory=list)
    job_runs: list[JobRunEvent] = field(default_factory=list)
    anomalies: list[AnomalyEvent] = field(default_factory=list)
    snapshots: list[SnapshotEvent] = field(default_factory=list)
