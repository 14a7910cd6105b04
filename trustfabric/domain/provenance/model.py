"""Provenance records: the kinds of node the lineage is made of, and a node read back."""

from dataclasses import dataclass
from typing import Any, Final

KINDS: Final = ("Repo", "Commit", "Image", "Job", "Policy", "PolicyVersion", "Anomaly",
                 "Snapshot", "Environment", "Promotion", "DriftProposal", "SuppressionRule",
                 "Rollup", "Rule")


# The kinds a lineage walk (neighbours, paths) goes through; the others (snapshots,
# promotions, rules, digests …) hang off them, and have their own queries.
LINEAGE_KINDS: Final = ("Repo", "Commit", "Image", "Job", "Policy", "PolicyVersion",
                        "Anomaly")

RELATIONSHIPS: Final = ("HAS_COMMIT", "PARENT", "BUILT_FROM", "BASED_ON", "HAS_VERSION", "RAN",
                        "UNDER", "OBSERVED_IN", "OF", "USED", "HAS_RULE")


def entity_key(kind: str, tenant: str, natural_id: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    return f"{kind}:{tenant}:{natural_id}"


@dataclass(frozen=True, slots=True)
class Entity:
    """A domain node read from the graph, whatever its kind."""

    key: str
    kind: str
    tenant: str
    props: dict[str, Any]

    @classmethod
    def from_row(cls, props: dict[str, Any]) -> "Entity":
        return cls(key=props["key"], kind=props["kind"], tenant=props["tenant"], props=props)

    @property
    def node_id(self) -> str:
        """The key without its kind: what a Relay global id carries after `Kind:`."""
        return self.key.split(":", 1)[1]

    def __getitem__(self, name: str) -> Any:
        return self.props.get(name)


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    type: str
    target: str


@dataclass(frozen=True, slots=True)
class AnomalyCursor:
    """Where a page of anomalies resumes: after the row with this key, rank and observedAt
    ('' when never observed), in the listing's order."""

    rank: int
    at: str
    key: str
