"""What an on-call engineer sees of a lineage: ordered hops, a root, and a CSV of them."""

import csv
import enum
import io
from collections.abc import Iterable
from dataclasses import dataclass

from trustfabric.domain.provenance.model import Edge, Entity


@dataclass(frozen=True)
class LineageRecord:
    anomaly: Entity
    job: Entity | None
    policy_version: Entity | None
    image: Entity | None
    base_images: list[Entity]
    commit: Entity | None
    repo: Entity | None


@dataclass(frozen=True)
class Subgraph:
    nodes: list[Entity]
    edges: list[Edge]


@dataclass(frozen=True)
class ImpactRecord:
    images: list[Entity]
    jobs: list[Entity]
    anomalies: list[Entity]
    truncated: bool


class HopDirection(enum.Enum):
    """Which way the edge between a hop and the hop it joins points."""

    FROM_JOINED = "FROM_JOINED"  # (joined)-[relation]->(this hop)
    TO_JOINED = "TO_JOINED"  # (this hop)-[relation]->(joined)


@dataclass(frozen=True)
class Hop:
    position: int
    # the type of the edge between this node and the hop at `joins` (START for the first):
    # the hops are a tree read in order, so the hop joined is not always the one before
    relation: str
    entity: Entity
    joins: int | None = None
    direction: HopDirection | None = None


def hops(record: LineageRecord) -> list[Hop]:
    """anomaly → job → policy version in force, and image → base images; image → commit
    → repo. Each hop names the edge to the node it is joined to: the policy version and the
    image both hang from the job, the commit from the image (not from its last base), and
    the repo points at the commit. A base image seen before (a cycle stored before cycles
    were refused) ends the chain of bases, so no image is listed twice."""
    out: list[Hop] = [Hop(0, "START", record.anomaly)]

    def add(relation: str, entity: Entity | None, joins: int | None,
            direction: HopDirection = HopDirection.FROM_JOINED) -> int | None:
        if entity is None or joins is None:
            return None
        out.append(Hop(len(out), relation, entity, joins, direction))
        return len(out) - 1

    job = add("OBSERVED_IN", record.job, 0)
    add("UNDER", record.policy_version, job)
    image = add("RAN", record.image, job)
    seen = {record.image.key} if record.image else set()
    previous = image
    for base in record.base_images:
        if base.key in seen:
            break
        seen.add(base.key)
        previous = add("BASED_ON", base, previous)
    commit = add("BUILT_FROM", record.commit, image)
    add("HAS_COMMIT", record.repo, commit, HopDirection.TO_JOINED)
    return out


def root(record: LineageRecord) -> Entity:
    """The furthest point the lineage reaches: its repo when the chain is complete."""
    for entity in (record.repo, record.commit, record.image, record.job):
        if entity is not None:
            return entity
    return record.anomaly


# A leading =, +, - or @ makes spreadsheets evaluate a cell; prefixing a quote stops that.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(header: list[str], rows: Iterable[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue()


LABEL_PROPERTY = {
    "Anomaly": "anomalyId", "Job": "jobId", "PolicyVersion": "version", "Image": "digest",
    "Commit": "sha", "Repo": "url", "Policy": "policyId",
}


def _detail(entity: Entity) -> str:
    # a policy version's row names its policy: a version alone ("v2") says little
    if entity.kind == "PolicyVersion":
        return str(entity["policyId"] or "")
    return str(entity["summary"] or entity["ref"] or entity["message"] or "")


def lineage_csv(record: LineageRecord) -> str:
    """One row per hop; `joins` and `direction` say which hop's edge reaches it, and how:
    FROM_JOINED reads (joins)-[relation]->(this row), TO_JOINED the other way. The
    anomaly's row carries its paging decision."""
    return to_csv(
        ["position", "relation", "joins", "direction", "kind", "id", "detail", "decision"],
        [
            [hop.position, hop.relation, hop.joins,
             hop.direction.value if hop.direction else None, hop.entity.kind,
             hop.entity[LABEL_PROPERTY[hop.entity.kind]], _detail(hop.entity),
             hop.entity["decision"]]
            for hop in hops(record)
        ],
    )


def anomalies_csv(anomalies: Iterable[Entity]) -> str:
    return to_csv(
        ["anomalyId", "kind", "severity", "status", "observedAt", "summary", "decision",
         "suppressedBy"],
        [
            [a["anomalyId"], a["anomalyKind"], a["severity"], a["status"], a["observedAt"],
             a["summary"], a["decision"], a["suppressedBy"]]
            for a in anomalies
        ],
    )
