"""Inputs an integration sends to record what happened, and what it gets back."""

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from trustfabric.domain.provenance import events
from trustfabric.schema.described import described
from trustfabric.schema.provenance import AnomalyStatus, JobKind, JobStatus, Severity

# The fields are the domain's, declared again here only to carry their descriptions (and
# the same defaults): dataclass fields redeclared in a subclass keep their order.


@strawberry.input(description="An image was built; optionally from a commit of a repository.")
class BuildEventInput(events.BuildEvent):
    image_digest: str = described("The image built: sha256:<64 hex digits>; its identity.")
    image_ref: str | None = strawberry.field(
        default=None, description="A readable reference, e.g. registry/app:1.4 (at most 2,000 "
                                  "characters kept).")
    repo_url: str | None = strawberry.field(
        default=None, description="The repository built from: an http(s), ssh or git URL of "
                                  "at most 512 characters; give it with commitSha.")
    commit_sha: str | None = strawberry.field(
        default=None, description="The commit built: 40 or 64 hex digits; give it with "
                                  "repoUrl.")
    commit_message: str | None = strawberry.field(
        default=None, description="The commit's message (at most 2,000 characters kept).")
    author: str | None = strawberry.field(
        default=None, description="The commit's author (at most 2,000 characters kept).")
    committed_at: datetime | None = strawberry.field(
        default=None, description="When the commit was made, with a time zone.")
    # strawberry reads defaults from its own fields only: a list left out is an empty one
    parent_shas: list[str] = strawberry.field(
        default_factory=list, description="The commit's parents (full SHAs); one not "
                                          "recorded yet is kept as a stub.")
    base_image_digests: list[str] = strawberry.field(
        default_factory=list, description="Images this one is based on, recorded before or here."
    )
    built_at: datetime | None = strawberry.field(
        default=None, description="When the image was built, with a time zone.")


@strawberry.input(description="A policy version was put in force.")
class PolicyVersionEventInput(events.PolicyVersionEvent):
    policy_id: str = described("The policy: letters, digits, '.', '_' or '-', at most 128.")
    version: str = described("The version's name, by the same rules; unique in the policy.")
    hash: str = described("sha256:<64 hex digits> of the version's content.")
    created_at: datetime | None = strawberry.field(
        default=None, description="When the version was made, with a time zone.")


@strawberry.input(description="A job ran (or changed status) with an image under a policy.")
class JobRunEventInput(events.JobRunEvent):
    job_id: str = described("The job's id: letters, digits, '.', '_' or '-', at most 128; "
                            "sending it again updates its status.")
    # the enums as the schema registered them (a plain enum would be registered again)
    kind: JobKind = described("What the job does.")
    status: JobStatus = described("Where it stands now.")
    image_digest: str = described("The image it ran (sha256:…), recorded before or in this "
                                  "batch.")
    policy_id: str | None = strawberry.field(
        default=None, description="The policy it ran under; give it with policyVersion.")
    policy_version: str | None = strawberry.field(
        default=None, description="The version of that policy, recorded before or in this "
                                  "batch.")
    pipeline: str | None = strawberry.field(
        default=None, description="The pipeline or service it belongs to (suppression rules' "
                                  "jobPattern matches it).")
    started_at: datetime | None = strawberry.field(
        default=None, description="When it started, with a time zone.")
    finished_at: datetime | None = strawberry.field(
        default=None, description="When it finished, with a time zone; null while it runs.")


@strawberry.input(description="A job reported a delta against what was expected.")
class AnomalyEventInput(events.AnomalyEvent):
    anomaly_id: str = described("The anomaly's id: letters, digits, '.', '_' or '-', at most "
                                "128; alerts and CSV exports show it.")
    job_id: str = described("The job it was observed in, recorded before or in this batch.")
    kind: str = described("What kind of delta, in the integration's words, by the id rules "
                          "(e.g. latency-regression).")
    severity: Severity = described("How much it matters; CRITICAL always pages.")
    status: AnomalyStatus = strawberry.field(
        default=AnomalyStatus.OPEN, description="Where it stands; sending it again updates it.")
    summary: str | None = strawberry.field(
        default=None, description="One line for people (at most 2,000 characters kept).")
    observed_at: datetime | None = strawberry.field(
        default=None, description="When it was observed, with a time zone.")
    fingerprint: str | None = strawberry.field(
        default=None, description="What its repeats share; by default the kind and the "
                                  "summary with numbers blanked.")


@strawberry.input(description="The facts known about an image at a moment; immutable.")
class SnapshotEventInput(events.SnapshotEvent):
    image_digest: str = described("The image the facts are about (sha256:…).")
    facts: JSON = strawberry.field(  # type: ignore[assignment]
        description="Declared facts only: signed, sbom_present, vulns_critical, vulns_high, "
                    "vulns_medium, base_image, labels, provenance_level, age_days.")
    taken_at: datetime | None = strawberry.field(
        default=None, description="When the facts were true, with a time zone (default: when "
                                  "recorded).")


@strawberry.input(description="One batch, written in one transaction: all events or none.")
class IngestInput(events.IngestBatch):
    builds: list[BuildEventInput] = strawberry.field(  # type: ignore[assignment]
        default_factory=list, description="Images built.")
    policy_versions: list[PolicyVersionEventInput] = strawberry.field(  # type: ignore[assignment]
        default_factory=list, description="Policy versions put in force.")
    job_runs: list[JobRunEventInput] = strawberry.field(  # type: ignore[assignment]
        default_factory=list, description="Jobs run or changed status.")
    anomalies: list[AnomalyEventInput] = strawberry.field(  # type: ignore[assignment]
        default_factory=list, description="Anomalies observed.")
    snapshots: list[SnapshotEventInput] = strawberry.field(  # type: ignore[assignment]
        default_factory=list, description="Facts about images, for policy decisions.")


@strawberry.type(description="What a batch recorded: how many events of each kind.")
class IngestResult:
    tenant: str = described("The tenant the batch was recorded for.")
    builds: int = described("Images recorded.")
    policy_versions: int = described("Policy versions recorded.")
    job_runs: int = described("Job runs recorded.")
    anomalies: int = described("Anomalies recorded.")
