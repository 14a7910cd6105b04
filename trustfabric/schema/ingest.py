"""Inputs an integration sends to record what happened, and what it gets back."""

import strawberry
from strawberry.scalars import JSON

from trustfabric.domain.provenance import events
from trustfabric.schema.provenance import AnomalyStatus, JobKind, JobStatus, Severity


@strawberry.input(description="An image was built; optionally from a commit of a repository.")
class BuildEventInput(events.BuildEvent):
    # strawberry reads defaults from its own fields only: a list left out is an empty one
    parent_shas: list[str] = strawberry.field(default_factory=list)
    base_image_digests: list[str] = strawberry.field(
        default_factory=list, description="Images this one is based on, recorded before or here."
    )


@strawberry.input(description="A policy version was put in force.")
class PolicyVersionEventInput(events.PolicyVersionEvent):
    pass


@strawberry.input(description="A job ran (or changed status) with an image under a policy.")
class JobRunEventInput(events.JobRunEvent):
    # the enums as the schema registered them (a plain enum would be registered again)
    kind: JobKind
    status: JobStatus


@strawberry.input(description="A job reported a delta against what was expected.")
class AnomalyEventInput(events.AnomalyEvent):
    severity: Severity
    status: AnomalyStatus = AnomalyStatus.OPEN


@strawberry.input(description="The facts known about an image at a moment; immutable.")
class SnapshotEventInput(events.SnapshotEvent):
    facts: JSON = strawberry.field(  # type: ignore[assignment]
        description="Declared facts only: signed, sbom_present, vulns_critical, vulns_high, "
                    "vulns_medium, base_image, labels, provenance_level, age_days.")


@strawberry.input(description="One batch, written in one transaction: all events or none.")
class IngestInput(events.IngestBatch):
    builds: list[BuildEventInput] = strawberry.field(default_factory=list)  # type: ignore[assignment]
    policy_versions: list[PolicyVersionEventInput] = strawberry.field(default_factory=list)  # type: ignore[assignment]
    job_runs: list[JobRunEventInput] = strawberry.field(default_factory=list)  # type: ignore[assignment]
    anomalies: list[AnomalyEventInput] = strawberry.field(default_factory=list)  # type: ignore[assignment]
    snapshots: list[SnapshotEventInput] = strawberry.field(default_factory=list)  # type: ignore[assignment]


@strawberry.type
class IngestResult:
    tenant: str
    builds: int
    policy_versions: int
    job_runs: int
    anomalies: int
