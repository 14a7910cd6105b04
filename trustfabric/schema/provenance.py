"""Provenance node types. Each is a Relay node; its neighbours load through DataLoaders."""

import enum
import typing
from datetime import datetime
from typing import Any, ClassVar, Self

import strawberry
from strawberry import relay

from trustfabric.context import Context
from trustfabric.domain.provenance import enums
from trustfabric.domain.provenance.model import Entity
from trustfabric.domain.suppressions.rules import Decision, Verdict

Info = strawberry.Info[Context, None]


# The domain's enums, as GraphQL enums: `strawberry.enum` marks the class itself and returns
# it. Named as aliases of the classes, so type checkers take them for types.
Severity = enums.Severity
AnomalyStatus = enums.AnomalyStatus
JobKind = enums.JobKind
JobStatus = enums.JobStatus
strawberry.enum(Severity, description="How much an anomaly matters.")
strawberry.enum(AnomalyStatus, description="Where an anomaly stands.")
strawberry.enum(JobKind, description="What a job does.")
strawberry.enum(JobStatus, description="Where a job stands.")
AnomalyOrder = enums.AnomalyOrder
strawberry.enum(AnomalyOrder, description="The order anomalies are listed in.")


@strawberry.interface(name="TenantNode", description="A node owned by one tenant.")
class EntityNode(relay.Node):
    """Shared by every provenance type: built from an Entity, found by its key."""

    node_id: relay.NodeID[str]
    key: strawberry.Private[str]
    tenant: str
    # GraphQL field → stored property, where the two names differ
    _stored_as: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_entity(cls, entity: Entity) -> Self:
        values: dict[str, Any] = {"node_id": entity.node_id, "key": entity.key,
                                  "tenant": entity.tenant}
        for name, hint in _data_fields(cls).items():
            raw = entity[cls._stored_as.get(name, strawberry_name(name))]
            values[name] = _convert(hint, raw)
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


def _convert(hint: Any, raw: Any) -> Any:
    if raw is None:
        return None
    target = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    if target is datetime:
        return datetime.fromisoformat(raw)
    if isinstance(target, type) and issubclass(target, enum.Enum):
        return target(raw)
    return raw


@strawberry.type
class Repo(EntityNode):
    url: str

    @strawberry.field(description="The commits recorded for this repository (up to 1,000).")
    async def commits(self, info: Info) -> list["Commit"]:
        return await self._many(info, "Repo.commits")


@strawberry.type
class Commit(EntityNode):
    sha: str
    message: str | None
    author: str | None
    committed_at: datetime | None

    @strawberry.field
    async def repo(self, info: Info) -> Repo | None:
        return await self._one(info, "Commit.repo")

    @strawberry.field
    async def parents(self, info: Info) -> list["Commit"]:
        return await self._many(info, "Commit.parents")

    @strawberry.field(description="Images built from this commit.")
    async def images(self, info: Info) -> list["Image"]:
        return await self._many(info, "Commit.images")


@strawberry.type
class Image(EntityNode):
    digest: str
    ref: str | None
    built_at: datetime | None

    @strawberry.field
    async def commit(self, info: Info) -> Commit | None:
        return await self._one(info, "Image.commit")

    @strawberry.field
    async def base_images(self, info: Info) -> list["Image"]:
        return await self._many(info, "Image.baseImages")

    @strawberry.field(description="Jobs that ran this image.")
    async def jobs(self, info: Info) -> list["Job"]:
        return await self._many(info, "Image.jobs")


@strawberry.type
class Policy(EntityNode):
    policy_id: str

    @strawberry.field
    async def versions(self, info: Info) -> list["PolicyVersion"]:
        return await self._many(info, "Policy.versions")


@strawberry.type
class PolicyVersion(EntityNode):
    policy_id: str
    version: str
    hash: str
    created_at: datetime | None

    @strawberry.field
    async def policy(self, info: Info) -> Policy | None:
        return await self._one(info, "PolicyVersion.policy")


@strawberry.type
class Job(EntityNode):
    _stored_as: ClassVar[dict[str, str]] = {"kind": "jobKind"}
    job_id: str
    kind: JobKind
    status: JobStatus
    pipeline: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @strawberry.field
    async def image(self, info: Info) -> Image | None:
        return await self._one(info, "Job.image")

    @strawberry.field(description="The policy version in force when the job ran.")
    async def policy_version(self, info: Info) -> PolicyVersion | None:
        return await self._one(info, "Job.policyVersion")

    @strawberry.field
    async def anomalies(self, info: Info) -> list["Anomaly"]:
        return await self._many(info, "Job.anomalies")


@strawberry.type
class Anomaly(EntityNode):
    _stored_as: ClassVar[dict[str, str]] = {"kind": "anomalyKind"}
    anomaly_id: str
    kind: str
    severity: Severity
    status: AnomalyStatus
    summary: str | None
    observed_at: datetime | None
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


@strawberry.type
class AnomalyConnection(relay.Connection[Anomaly]):
    """A page of anomalies; `pageInfo.endCursor` asks for the next."""
