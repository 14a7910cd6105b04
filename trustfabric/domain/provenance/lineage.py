"""What an on-call engineer sees of a lineage: ordered hops, a root, and a CSV of them."""

import csv
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


@dataclass(frozen=True)
class Hop:
    position: int
    relation: str  # how this node is reached from the previous hop
    entity: Entity


def hops(record: LineageRecord) -> list[Hop]:
    """anomaly → job → policy version in force → image → base images → commit → repo."""
    chain: list[tuple[str, Entity | None]] = [
        ("START", record.anomaly),
        ("OBSERVED_IN", record.job),
        ("UNDER", record.policy_version),
        ("RAN", record.image),
        *(("BASED_ON", base) for base in record.base_images),
        ("BUILT_FROM", record.commit),
        ("HAS_COMMIT", record.repo),
    ]
    present = [(relation, entity) for relation, entity in chain if entity is not None]
    return [Hop(n, relation, entity) for n, (relation, entity) in enumerate(present)]


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


def lineage_csv(record: LineageRecord) -> str:
    return to_csv(
        ["position", "relation", "kind", "id", "detail"],
        [
            [hop.position, hop.relation, hop.entity.kind, hop.entity[LABEL_PROPERTY[hop.entity.kind]],
             hop.entity["summary"] or hop.entity["ref"] or hop.entity["message"] or ""]
            for hop in hops(record)
        ],
    )


def anomalies_csv(anomalies: Iterable[Entity]) -> str:
    return to_csv(
        ["anomalyId", "kind", "severity", "status", "observedAt", "summary"],
        [
            [a["anomalyId"], a["anomalyKind"], a["severity"], a["status"], a["observedAt"],
             a["summary"]]
            for a in anomalies
        ],
    )
