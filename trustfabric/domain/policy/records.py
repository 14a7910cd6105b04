"""Policy records as stored: versions with their rules, environments, snapshots and
promotions, read from storage by column name."""

import json
from dataclasses import dataclass
from typing import Any

from trustfabric.domain.policy.rules import PolicyVersion, Rule


@dataclass(frozen=True)
class StoredVersion:
    key: str
    tenant: str
    policy_id: str
    version: str
    hash: str
    policy: PolicyVersion | None  # None: recorded by ingest with its hash, rules not given

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "StoredVersion":
        rules = row.get("rules")
        policy = PolicyVersion(row["policyId"], row["version"], tuple(
            Rule.from_document(doc) for doc in json.loads(rules))) if rules else None
        return cls(row["key"], row["tenant"], row["policyId"], row["version"], row["hash"],
                   policy)


@dataclass(frozen=True)
class EnvironmentRecord:
    key: str
    name: str
    position: int
    policy_id: str | None
    declared: str | None  # the version key in force
    deployed: str | None  # the version key actually running

    @property
    def drifted(self) -> bool:
        return self.deployed is not None and self.deployed != self.declared

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "EnvironmentRecord":
        return cls(row["key"], row["name"], row.get("position") or 0, row.get("policyId"),
                   row.get("declared"), row.get("deployed"))


@dataclass(frozen=True)
class SnapshotRecord:
    key: str
    image_key: str
    image_digest: str
    facts: dict[str, Any]
    facts_hash: str
    taken_at: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "SnapshotRecord":
        return cls(row["key"], row["imageKey"], row["imageDigest"], json.loads(row["facts"]),
                   row["factsHash"], row.get("takenAt"))


@dataclass(frozen=True)
class PromotionRecord:
    key: str
    id: str  # the caller's idempotency key: one promotion per key and tenant
    tenant: str
    image_digest: str
    from_env: str
    to_env: str
    version_key: str
    snapshot_key: str
    allowed: bool
    results: list[dict[str, Any]]
    insight: dict[str, Any] | None
    insight_markdown: str | None
    at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "PromotionRecord":
        return cls(row["key"], row["promotionId"], row["tenant"], row["imageDigest"],
                   row["from"], row["to"], row["versionKey"], row["snapshotKey"],
                   row["allowed"], json.loads(row["results"]),
                   json.loads(row["insight"]) if row.get("insight") else None,
                   row.get("insightMarkdown"), row["at"])
