"""Provenance node types. Each is a Relay node; its neighbours load through DataLoaders."""

import enum
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Self

import strawberry
from strawberry import relay

from trustfabric.context import Context
from trustfabric.domain.provenance import enums
from trustfabric.domain.provenance.model import Entity
from trustfabric.domain.suppressions.rules import Decision, Verdict
from trustfabric.schema.described import described, described_enum

Info = strawberry.Info[Context, None]


# The domain's enums, as GraphQL enums: `strawberry.enum` marks the class itself and returns
# it. Named as aliases of the classes, so type checkers take them for types.
Severity = enums.Severity
AnomalyStatus = enums.AnomalyStatus
JobKind = enums.JobKind
JobStatus = enums.JobStatus
described_enum(Severity, description="How much an anomaly matters.", values={
    Severity.LOW: "Worth a look; least severe.",
    Severity.MEDIUM: "Worth acting on.",
    Severity.HIGH: "Act soon.",
    Severity.CRITICAL: "Most severe: always pages, whatever a suppression rule says.",
})
described_enum(AnomalyStatus, description="Where an anomaly stands.", values={
    AnomalyStatus.OPEN: "Reported and not yet handled.",
    AnomalyStatus.ACKNOWLEDGED: "Someone is on it.",
    AnomalyStatus.RESOLVED: "Handled; a late re-send of an earlier status does not reopen it.",
})
described_enum(JobKind, description="What a job does.", values={
    JobKind.BUILD: "Builds an image.",
    JobKind.TEST: "Tests an image.",
    JobKind.SCAN: "Scans an image (vulnerabilities, SBOM, signatures).",
    JobKind.DEPLOY: "Deploys an image into an environment.",
})
described_enum(JobStatus, description="Where a job stands.", values={
    JobStatus.QUEUED: "Waiting to run.",
    JobStatus.RUNNING: "Running.",
    JobStatus.SUCCEEDED: "Finished without error.",
    JobStatus.FAILED: "Finished with an error.",
    JobStatus.CANCELLED: "Stopped before it finished.",
})
AnomalyOrder = enums.AnomalyOrder
described_enum(AnomalyOrder, description="The order anomalies are listed in.", values={
    AnomalyOrder.NEWEST: "Latest observed first; those never observed last.",
    AnomalyOrder.SEVERITY: "Most severe first (CRITICAL to LOW), then newest.",
})
described_enum(Decision, description="Whether an anomaly paged on-call, decided when it was "
                                     "recorded.", values={
    Decision.PAGE: "It paged.",
    Decision.SUPPRESSED: "An active suppression rule silenced it (see suppressedBy).",
    Decision.DEDUPLICATED: "An anomaly with the same fingerprint paged shortly before.",
})
described_enum(Verdict, description="What on-call concluded of an anomaly (labelAnomaly): dry "
                                    "runs show the true positives a rule would hide.", values={
    Verdict.TRUE_POSITIVE: "A real problem.",
    Verdict.BENIGN: "Harmless: a candidate for a suppression rule.",
})


@strawberry.interface(name="TenantNode", description="A node owned by one tenant.")
class EntityNode(relay.Node):
    """Shared by every provenance type: built from an Entity, found by its key."""

    node_id: relay.NodeID[str]
    key: strawberry.Private[str]
    tenant: str = described("The tenant that owns it.")
    # GraphQL field → stored property, where the two names differ
    _stored_as: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_entity(cls, entity: Entity) -> Self:
        values: dict[str, Any] = {"node_id": entity.node_id, "key": entity.key,
                                  "tenant": entity.tenant}
        for name, stored, convert in _conversions(cls):
            raw = entity[stored]
            values[name] = raw if convert is None or raw is None else convert(raw)
        return cls(**values)

    # One signature for Strawberry's three overloads on `required`: a missing id is None
    # whatever `required` says, and GraphQL reports a null where one may not be.
    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: typing.Iterable[str], required: bool = False
    ) -> list[Self | None]:
        keys = [f"{cls.__name__}:{node_id}" for node_id in node_ids]
        entities = await info.context.loaders.provenance.entities.load_many(keys)
        return [cls.from_entity(e) if e is not None else None for e in entities]

    async def _one(self, info: Info, relation: str) -> Any:
        found = await info.context.loaders.provenance.related(relation).load(self.key)
        return to_node(found[0]) if found else None

    async def _many(self, info: Info, relation: str) -> list[Any]:
        return [to_node(e) for e in await info.context.loaders.provenance.related(relation).load(self.key)]


def strawberry_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_BASE_FIELDS = {"node_id", "key", "tenant", "_stored_as"}
_FIELD_CACHE: dict[type, dict[str, Any]] = {}


def _data_fields(cls: type) -> dict[str, Any]:
    if cls not in _FIELD_CACHE:
        hints = typing.get_type_hints(cls)
        _FIELD_CACHE[cls] = {
            name: hint for name, hint in hints.items()
            if name not in _BASE_FIELDS and not name.startswith("_")
        }
    return _FIELD_CACHE[cls]


# (field, stored property, conversion or None) per type, worked out once: per field and
# call, names and type hints took 5 % of a lineage read's CPU (decision 0023)
_CONVERSIONS: dict[type, list[tuple[str, str, Callable[[Any], Any] | None]]] = {}


def _conversions(cls: Any) -> list[tuple[str, str, Callable[[Any], Any] | None]]:
    found = _CONVERSIONS.get(cls)
    if found is None:
        found = []
        for name, hint in _data_fields(cls).items():
            target = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
            convert: Callable[[Any], Any] | None = None
            if target is datetime:
                convert = datetime.fromisoformat
            elif isinstance(target, type) and issubclass(target, enum.Enum):
                convert = target
            found.append((name, cls._stored_as.get(name, strawberry_name(name)), convert))
        _CONVERSIONS[cls] = found
    return found


@strawberry.type(description="A source repository, identified by its URL.")
class Repo(EntityNode):
    url: str = described("Its URL (http(s), ssh or git), as builds reported it.")

    @strawberry.field(description="The commits recorded for this repository (up to 1,000).")
    async def commits(self, info: Info) -> list["Commit"]:
        return await self._many(info, "Repo.commits")


@strawberry.type(description="A commit images were built from.")
class Commit(EntityNode):
    sha: str = described("The full SHA: 40 or 64 hex digits.")
    message: str | None = described("Its message; null when no build reported it (a parent "
                                    "known only by its SHA).")
    author: str | None = described("Its author, as reported; null when unknown.")
    committed_at: datetime | None = described("When it was made; null when unknown.")

    @strawberry.field(description="Its repository; null for a parent known only by its SHA.")
    async def repo(self, info: Info) -> Repo | None:
        return await self._one(info, "Commit.repo")

    @strawberry.field(description="Its parent commits, as builds reported them (up to 1,000).")
    async def parents(self, info: Info) -> list["Commit"]:
        return await self._many(info, "Commit.parents")

    @strawberry.field(description="Images built from this commit.")
    async def images(self, info: Info) -> list["Image"]:
        return await self._many(info, "Commit.images")


@strawberry.type(description="A container image, identified by its digest.")
class Image(EntityNode):
    digest: str = described("sha256:<64 hex digits>.")
    ref: str | None = described("A readable reference (e.g. registry/app:1.4); null when none "
                                "was reported.")
    built_at: datetime | None = described("When it was built; null when unknown.")

    @strawberry.field(description="The commit it was built from; null when not reported.")
    async def commit(self, info: Info) -> Commit | None:
        return await self._one(info, "Image.commit")

    @strawberry.field(description="The images it is based on (up to 1,000).")
    async def base_images(self, info: Info) -> list["Image"]:
        return await self._many(info, "Image.baseImages")

    @strawberry.field(description="Jobs that ran this image (up to 1,000).")
    async def jobs(self, info: Info) -> list["Job"]:
        return await self._many(info, "Image.jobs")


@strawberry.type(description="A policy: the named series of its versions.")
class Policy(EntityNode):
    policy_id: str = described("The policy's id, as its versions name it.")

    @strawberry.field(description="Its versions recorded so far (up to 1,000).")
    async def versions(self, info: Info) -> list["PolicyVersion"]:
        return await self._many(info, "Policy.versions")


@strawberry.type(description="One immutable version of a policy, that jobs ran under.")
class PolicyVersion(EntityNode):
    policy_id: str = described("The policy's id.")
    version: str = described("The version's name, unique in the policy.")
    hash: str = described("sha256:<64 hex digits> of the version's content: its identity.")
    created_at: datetime | None = described("When it was made; null when unknown.")

    @strawberry.field(description="The policy it is a version of.")
    async def policy(self, info: Info) -> Policy | None:
        return await self._one(info, "PolicyVersion.policy")


@strawberry.type(description="A CI/CD job run: it ran an image under a policy version.")
class Job(EntityNode):
    _stored_as: ClassVar[dict[str, str]] = {"kind": "jobKind"}
    job_id: str = described("The id the integration recorded it with.")
    kind: JobKind = described("What it does.")
    status: JobStatus = described("Where it stands, as last reported.")
    pipeline: str | None = described("The pipeline or service it belongs to; null when not "
                                     "reported.")
    started_at: datetime | None = described("When it started; null when unknown.")
    finished_at: datetime | None = described("When it finished; null while it runs or when "
                                             "unknown.")

    @strawberry.field(description="The image it ran.")
    async def image(self, info: Info) -> Image | None:
        return await self._one(info, "Job.image")

    @strawberry.field(description="The policy version in force when the job ran.")
    async def policy_version(self, info: Info) -> PolicyVersion | None:
        return await self._one(info, "Job.policyVersion")

    @strawberry.field(description="Anomalies observed in it (up to 1,000).")
    async def anomalies(self, info: Info) -> list["Anomaly"]:
        return await self._many(info, "Job.anomalies")


@strawberry.type(description="A delta a job reported against what was expected.")
class Anomaly(EntityNode):
    _stored_as: ClassVar[dict[str, str]] = {"kind": "anomalyKind"}
    anomaly_id: str = described("The id it was recorded with, as alerts and CSV exports show "
                                "it (lineage takes it as well as the Relay id).")
    kind: str = described("What kind of delta, in the reporting integration's words.")
    severity: Severity = described("How much it matters.")
    status: AnomalyStatus = described("Where it stands, as last reported.")
    summary: str | None = described("One line for people; null when none was sent.")
    observed_at: datetime | None = described("When it was observed; null when not reported "
                                             "(listed last by NEWEST).")
    fingerprint: str | None = strawberry.field(
        description="What repeats of this anomaly share (kind and summary, numbers blanked).")
    decision: Decision | None = strawberry.field(
        description="Whether it paged: decided when it was recorded.")
    suppressed_by: str | None = strawberry.field(
        description="The suppression rule that silenced it, when one did.")
    verdict: Verdict | None = strawberry.field(
        description="TRUE_POSITIVE or BENIGN, once on-call said so (labelAnomaly).")

    @strawberry.field(description="The job the anomaly was observed in.")
    async def job(self, info: Info) -> Job | None:
        return await self._one(info, "Anomaly.job")


NODE_TYPES: dict[str, type[EntityNode]] = {
    t.__name__: t for t in (Repo, Commit, Image, Policy, PolicyVersion, Job, Anomaly)
}


def to_node(entity: Entity) -> EntityNode:
    return NODE_TYPES[entity.kind].from_entity(entity)


@strawberry.type(description="A page of anomalies; pageInfo.endCursor, passed as `after`, "
                             "asks for the next.")
class AnomalyConnection(relay.Connection[Anomaly]):
    """A page of anomalies; `pageInfo.endCursor` asks for the next."""
