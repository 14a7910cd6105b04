"""Validation of an ingest batch and the rows each write takes, computed before any write.

A batch is checked whole: one bad event refuses the batch with every problem listed,
so an integration can fix them all at once, and nothing of it is written.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from trustfabric.errors import BadUserInput
from trustfabric.graph.model import entity_key

if TYPE_CHECKING:
    from trustfabric.schema.ingest import IngestInput

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
URL_SCHEMES = frozenset({"https", "http", "ssh", "git"})
MAX_TEXT = 2000


@dataclass
class Plan:
    """What one batch writes, grouped by statement, plus what must already exist."""

    tenant: str
    commits: list[dict[str, Any]] = field(default_factory=list)
    parents: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    base_links: list[dict[str, Any]] = field(default_factory=list)
    policy_versions: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    # key → where it was referenced, for keys the batch does not itself create
    references: dict[str, str] = field(default_factory=dict)
    # (source key, relationship type, target key) that must not point elsewhere already
    links: list[dict[str, str]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.images) + len(self.policy_versions) + len(self.jobs) + len(self.anomalies)


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def check(self, ok: bool, path: str, message: str) -> bool:
        if not ok:
            self.items.append({"path": path, "message": message})
        return ok

    def ident(self, value: str, path: str) -> bool:
        return self.check(bool(IDENT.match(value)), path,
                          "letters, digits, '.', '_' or '-', at most 128")

    def digest(self, value: str, path: str) -> bool:
        return self.check(bool(DIGEST.match(value)), path,
                          "must be sha256: followed by 64 lowercase hex digits")

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]
            more = f" (and {len(self.items) - 1} more)" if len(self.items) > 1 else ""
            raise BadUserInput(
                f"{first['path']}: {first['message']}{more}", problems=self.items[:50]
            )


def _utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise BadUserInput("timestamps must carry a time zone")
    return value.astimezone(UTC).isoformat()


def _text(value: str | None) -> str | None:
    return None if value is None else value[:MAX_TEXT]


def plan_batch(batch: "IngestInput", tenant: str, max_events: int) -> Plan:
    problems = _Problems()
    plan = Plan(tenant)
    total = len(batch.builds) + len(batch.policy_versions) + len(batch.job_runs) + len(
        batch.anomalies
    )
    problems.check(total > 0, "batch", "the batch is empty")
    problems.check(total <= max_events, "batch", f"at most {max_events} events per batch")
    problems.raise_if_any()

    def key(kind: str, natural: str) -> str:
        return entity_key(kind, tenant, natural)

    created: set[str] = set()

    def once(k: str, path: str) -> bool:
        fresh = problems.check(k not in created, path, "appears twice in the batch")
        created.add(k)
        return fresh

    for n, b in enumerate(batch.builds):
        p = f"builds[{n}]"
        ok = problems.digest(b.image_digest, f"{p}.imageDigest")
        commit_key = None
        if b.commit_sha is not None or b.repo_url is not None:
            ok &= problems.check(b.commit_sha is not None and bool(SHA.match(b.commit_sha)),
                                 f"{p}.commitSha", "must be a 40 or 64 hex-digit commit SHA")
            url = urlparse(b.repo_url or "")
            ok &= problems.check(url.scheme in URL_SCHEMES and bool(url.netloc)
                                 and len(b.repo_url or "") <= 512,
                                 f"{p}.repoUrl", "must be an http(s), ssh or git URL")
        for m, parent in enumerate(b.parent_shas):
            ok &= problems.check(bool(SHA.match(parent)), f"{p}.parentShas[{m}]",
                                 "must be a 40 or 64 hex-digit commit SHA")
        for m, base in enumerate(b.base_image_digests):
            ok &= problems.check(bool(DIGEST.match(base)) and base != b.image_digest,
                                 f"{p}.baseImageDigests[{m}]",
                                 "must be another image's sha256 digest")
        if not ok or not once(key("Image", b.image_digest), f"{p}.imageDigest"):
            continue
        image_key = key("Image", b.image_digest)
        if b.commit_sha is not None and b.repo_url is not None:
            commit_key = key("Commit", b.commit_sha)
            plan.commits.append({
                "key": commit_key, "repoKey": key("Repo", b.repo_url), "repoUrl": b.repo_url,
                "props": {"key": commit_key, "kind": "Commit", "tenant": tenant,
                          "sha": b.commit_sha, "message": _text(b.commit_message),
                          "author": _text(b.author), "committedAt": _utc(b.committed_at)},
            })
            plan.parents.extend(
                {"key": commit_key, "parentKey": key("Commit", s), "parentSha": s}
                for s in b.parent_shas
            )
            plan.links.append({"source": image_key, "type": "BUILT_FROM", "target": commit_key})
        plan.images.append({
            "key": image_key, "commitKey": commit_key,
            "props": {"key": image_key, "kind": "Image", "tenant": tenant,
                      "digest": b.image_digest, "ref": _text(b.image_ref),
                      "builtAt": _utc(b.built_at)},
        })
        for m, base in enumerate(b.base_image_digests):
            base_key = key("Image", base)
            plan.base_links.append({"key": image_key, "baseKey": base_key})
            plan.references.setdefault(base_key, f"{p}.baseImageDigests[{m}]")

    for n, v in enumerate(batch.policy_versions):
        p = f"policyVersions[{n}]"
        ok = problems.ident(v.policy_id, f"{p}.policyId")
        ok &= problems.ident(v.version, f"{p}.version")
        ok &= problems.digest(v.hash, f"{p}.hash")
        version_key = key("PolicyVersion", f"{v.policy_id}@{v.version}")
        if not ok or not once(version_key, p):
            continue
        plan.policy_versions.append({
            "key": version_key, "policyKey": key("Policy", v.policy_id), "policyId": v.policy_id,
            "props": {"key": version_key, "kind": "PolicyVersion", "tenant": tenant,
                      "policyId": v.policy_id, "version": v.version, "hash": v.hash,
                      "createdAt": _utc(v.created_at)},
        })

    for n, j in enumerate(batch.job_runs):
        p = f"jobRuns[{n}]"
        ok = problems.ident(j.job_id, f"{p}.jobId")
        ok &= problems.digest(j.image_digest, f"{p}.imageDigest")
        has_policy = j.policy_id is not None or j.policy_version is not None
        if has_policy:
            ok &= problems.check(bool(IDENT.match(j.policy_id or ""))
                                 and bool(IDENT.match(j.policy_version or "")),
                                 f"{p}.policyVersion", "give both policyId and policyVersion")
        job_key = key("Job", j.job_id)
        if not ok or not once(job_key, f"{p}.jobId"):
            continue
        image_key = key("Image", j.image_digest)
        version_key = (key("PolicyVersion", f"{j.policy_id}@{j.policy_version}")
                       if has_policy else None)
        plan.references.setdefault(image_key, f"{p}.imageDigest")
        plan.links.append({"source": job_key, "type": "RAN", "target": image_key})
        if version_key:
            plan.references.setdefault(version_key, f"{p}.policyVersion")
            plan.links.append({"source": job_key, "type": "UNDER", "target": version_key})
        plan.jobs.append({
            "key": job_key, "imageKey": image_key, "policyVersionKey": version_key,
            "status": j.status.value, "finishedAt": _utc(j.finished_at),
            "props": {"key": job_key, "kind": "Job", "tenant": tenant, "jobId": j.job_id,
                      "jobKind": j.kind.value, "pipeline": _text(j.pipeline),
                      "startedAt": _utc(j.started_at)},
        })

    for n, a in enumerate(batch.anomalies):
        p = f"anomalies[{n}]"
        ok = problems.ident(a.anomaly_id, f"{p}.anomalyId")
        ok &= problems.ident(a.job_id, f"{p}.jobId")
        ok &= problems.ident(a.kind, f"{p}.kind")
        anomaly_key = key("Anomaly", a.anomaly_id)
        if not ok or not once(anomaly_key, f"{p}.anomalyId"):
            continue
        job_key = key("Job", a.job_id)
        plan.references.setdefault(job_key, f"{p}.jobId")
        plan.links.append({"source": anomaly_key, "type": "OBSERVED_IN", "target": job_key})
        plan.anomalies.append({
            "key": anomaly_key, "jobKey": job_key, "status": a.status.value,
            "props": {"key": anomaly_key, "kind": "Anomaly", "tenant": tenant,
                      "anomalyId": a.anomaly_id, "anomalyKind": a.kind,
                      "severity": a.severity.value, "summary": _text(a.summary),
                      "observedAt": _utc(a.observed_at)},
        })

    problems.raise_if_any()
    for k in created:
        plan.references.pop(k, None)
    return plan


def missing_references(plan: Plan, existing: Iterable[str]) -> None:
    """Refuses the batch when it names nodes that neither it nor the graph holds."""
    problems = _Problems()
    found = set(existing)
    for k, path in plan.references.items():
        problems.check(k in found, path, "refers to something not recorded for this tenant")
    problems.raise_if_any()


def conflicting_links(conflicts: Iterable[dict[str, str]]) -> None:
    problems = _Problems()
    for c in conflicts:
        problems.check(False, c["source"].split(":", 2)[2],
                       f"was recorded with a different {c['type']} target")
    problems.raise_if_any()
