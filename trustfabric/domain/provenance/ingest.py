"""Validation of an ingest batch and the rows each write takes, computed before any write.

A batch is checked whole: one bad event refuses the batch with every problem listed,
so an integration can fix them all at once, and nothing of it is written.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from trustfabric.domain.audit import now_iso
from trustfabric.domain.ids import DIGEST, IDENT, IDENT_RULE, SHA
from trustfabric.domain.policy.facts import check_facts, fact_problems, facts_hash
from trustfabric.domain.provenance.events import IngestBatch
from trustfabric.domain.provenance.model import entity_key
from trustfabric.domain.suppressions.rules import fingerprint
from trustfabric.errors import BadUserInput

URL_SCHEMES = frozenset({"https", "http", "ssh", "git"})
MAX_TEXT = 2000
# Statuses only move forward: a late or replayed event cannot undo a newer one.
STATUS_RANK = {"QUEUED": 0, "RUNNING": 1, "SUCCEEDED": 2, "FAILED": 2, "CANCELLED": 2,
               "OPEN": 0, "ACKNOWLEDGED": 1, "RESOLVED": 2}


@dataclass
class Plan:
    """What one batch writes: nodes by kind (each key once), relationships by type, status
    updates, and what must already exist or must not conflict."""

    tenant: str
    nodes: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # kind→key→props
    links: dict[str, set[tuple[str, str]]] = field(default_factory=dict)  # type→(source, target)
    updates: list[dict[str, Any]] = field(default_factory=list)  # {key, changes}
    # key → where it was referenced, for keys the batch does not itself create
    references: dict[str, str] = field(default_factory=dict)
    # links that must not already point elsewhere: {source, type, target}
    exclusive: list[dict[str, str]] = field(default_factory=list)
    # links whose target must not already be reached from elsewhere: {source, type, target}
    # (a commit belongs to one repo, though the link runs from the repo)
    exclusive_in: list[dict[str, str]] = field(default_factory=list)
    stubs: set[str] = field(default_factory=set)

    def node(self, kind: str, key: str, stub: bool = False, **props: Any) -> None:
        """First write of a key wins within the batch, as across batches; a stub (a parent
        commit known only by its sha) gives way to the full record."""
        nodes = self.nodes.setdefault(kind, {})
        if key in nodes and (stub or key not in self.stubs):
            return
        nodes[key] = {"key": key, "kind": kind, "tenant": self.tenant, **props}
        (self.stubs.add if stub else self.stubs.discard)(key)

    def link(self, source: str, type: str, target: str, exclusive: bool = False,
             exclusive_in: bool = False) -> None:
        self.links.setdefault(type, set()).add((source, target))
        if exclusive:
            self.exclusive.append({"source": source, "type": type, "target": target})
        if exclusive_in:
            self.exclusive_in.append({"source": source, "type": type, "target": target})

    def based_on_targets(self) -> list[str]:
        """The base images the batch links to: where a walk for a cycle starts."""
        return sorted({target for _, target in self.links.get("BASED_ON", set())})

    def count(self, kind: str) -> int:
        return len(self.nodes.get(kind, {}))


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def check(self, ok: bool, path: str, message: str) -> bool:
        if not ok:
            self.items.append({"path": path, "message": message})
        return ok

    def ident(self, value: str, path: str) -> bool:
        return self.check(bool(IDENT.fullmatch(value)), path, IDENT_RULE)

    def digest(self, value: str, path: str) -> bool:
        return self.check(bool(DIGEST.fullmatch(value)), path,
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


def plan_batch(batch: IngestBatch, tenant: str, max_events: int) -> Plan:
    problems = _Problems()
    plan = Plan(tenant)
    total = len(batch.builds) + len(batch.policy_versions) + len(batch.job_runs) + len(
        batch.anomalies
    ) + len(batch.snapshots)
    problems.check(total > 0, "batch", "the batch is empty")
    problems.check(total <= max_events, "batch", f"at most {max_events} events per batch")
    problems.raise_if_any()

    def key(kind: str, natural: str) -> str:
        return entity_key(kind, tenant, natural)

    created: set[str] = set()
    repo_of: dict[str, str] = {}  # commit key → the repo the batch names for it

    def once(k: str, path: str) -> bool:
        fresh = problems.check(k not in created, path, "appears twice in the batch")
        created.add(k)
        return fresh

    for n, b in enumerate(batch.builds):
        p = f"builds[{n}]"
        ok = problems.digest(b.image_digest, f"{p}.imageDigest")
        if b.commit_sha is not None or b.repo_url is not None:
            ok &= problems.check(b.commit_sha is not None and bool(SHA.fullmatch(b.commit_sha)),
                                 f"{p}.commitSha", "must be a 40 or 64 hex-digit commit SHA")
            url = urlparse(b.repo_url or "")
            ok &= problems.check(url.scheme in URL_SCHEMES and bool(url.netloc)
                                 and len(b.repo_url or "") <= 512,
                                 f"{p}.repoUrl", "must be an http(s), ssh or git URL")
        for m, parent in enumerate(b.parent_shas):
            ok &= problems.check(bool(SHA.fullmatch(parent)), f"{p}.parentShas[{m}]",
                                 "must be a 40 or 64 hex-digit commit SHA")
        for m, base in enumerate(b.base_image_digests):
            ok &= problems.check(bool(DIGEST.fullmatch(base)) and base != b.image_digest,
                                 f"{p}.baseImageDigests[{m}]",
                                 "must be another image's sha256 digest")
        if not ok or not once(key("Image", b.image_digest), f"{p}.imageDigest"):
            continue
        image_key = key("Image", b.image_digest)
        plan.node("Image", image_key, digest=b.image_digest, ref=_text(b.image_ref),
                  builtAt=_utc(b.built_at))
        if b.commit_sha is not None and b.repo_url is not None:
            commit_key, repo_key = key("Commit", b.commit_sha), key("Repo", b.repo_url)
            plan.node("Repo", repo_key, url=b.repo_url)
            plan.node("Commit", commit_key, sha=b.commit_sha, message=_text(b.commit_message),
                      author=_text(b.author), committedAt=_utc(b.committed_at))
            # One repo per commit: a re-send naming another repo would add a second
            # root to its lineage, so it is a contradiction, in the batch as in the graph.
            if problems.check(repo_of.setdefault(commit_key, repo_key) == repo_key,
                              f"{p}.repoUrl", "names another repo for a commit of this batch"):
                plan.link(repo_key, "HAS_COMMIT", commit_key, exclusive_in=True)
            plan.link(image_key, "BUILT_FROM", commit_key, exclusive=True)
            for parent in b.parent_shas:  # history: a parent not yet recorded gets a stub
                plan.node("Commit", key("Commit", parent), stub=True, sha=parent)
                plan.link(commit_key, "PARENT", key("Commit", parent))
        for m, base in enumerate(b.base_image_digests):
            base_key = key("Image", base)
            plan.link(image_key, "BASED_ON", base_key)
            plan.references.setdefault(base_key, f"{p}.baseImageDigests[{m}]")

    for n, v in enumerate(batch.policy_versions):
        p = f"policyVersions[{n}]"
        ok = problems.ident(v.policy_id, f"{p}.policyId")
        ok &= problems.ident(v.version, f"{p}.version")
        ok &= problems.digest(v.hash, f"{p}.hash")
        version_key = key("PolicyVersion", f"{v.policy_id}@{v.version}")
        if not ok or not once(version_key, p):
            continue
        policy_key = key("Policy", v.policy_id)
        plan.node("Policy", policy_key, policyId=v.policy_id)
        plan.node("PolicyVersion", version_key, policyId=v.policy_id, version=v.version,
                  hash=v.hash, createdAt=_utc(v.created_at))
        plan.link(policy_key, "HAS_VERSION", version_key)

    for n, j in enumerate(batch.job_runs):
        p = f"jobRuns[{n}]"
        ok = problems.ident(j.job_id, f"{p}.jobId")
        ok &= problems.digest(j.image_digest, f"{p}.imageDigest")
        has_policy = j.policy_id is not None or j.policy_version is not None
        if has_policy:
            ok &= problems.check(bool(IDENT.fullmatch(j.policy_id or ""))
                                 and bool(IDENT.fullmatch(j.policy_version or "")),
                                 f"{p}.policyVersion", "give both policyId and policyVersion")
        job_key = key("Job", j.job_id)
        if not ok or not once(job_key, f"{p}.jobId"):
            continue
        image_key = key("Image", j.image_digest)
        changes: dict[str, Any] = {"status": j.status.value,
                                   "statusRank": STATUS_RANK[j.status.value]}
        if j.finished_at is not None:
            changes["finishedAt"] = _utc(j.finished_at)
        plan.node("Job", job_key, jobId=j.job_id, jobKind=j.kind.value,
                  pipeline=_text(j.pipeline), startedAt=_utc(j.started_at), **changes)
        plan.updates.append({"key": job_key, "changes": changes})
        plan.references.setdefault(image_key, f"{p}.imageDigest")
        plan.link(job_key, "RAN", image_key, exclusive=True)
        if has_policy:
            version_key = key("PolicyVersion", f"{j.policy_id}@{j.policy_version}")
            plan.references.setdefault(version_key, f"{p}.policyVersion")
            plan.link(job_key, "UNDER", version_key, exclusive=True)

    for n, a in enumerate(batch.anomalies):
        p = f"anomalies[{n}]"
        ok = problems.ident(a.anomaly_id, f"{p}.anomalyId")
        ok &= problems.ident(a.job_id, f"{p}.jobId")
        ok &= problems.ident(a.kind, f"{p}.kind")
        anomaly_key = key("Anomaly", a.anomaly_id)
        if not ok or not once(anomaly_key, f"{p}.anomalyId"):
            continue
        job_key = key("Job", a.job_id)
        plan.node("Anomaly", anomaly_key, anomalyId=a.anomaly_id, anomalyKind=a.kind,
                  fingerprint=_text(a.fingerprint) or fingerprint(a.kind, _text(a.summary)),
                  severity=a.severity.value, summary=_text(a.summary),
                  observedAt=_utc(a.observed_at), status=a.status.value,
                  statusRank=STATUS_RANK[a.status.value])
        plan.updates.append({"key": anomaly_key, "changes": {
            "status": a.status.value, "statusRank": STATUS_RANK[a.status.value]}})
        plan.references.setdefault(job_key, f"{p}.jobId")
        plan.link(anomaly_key, "OBSERVED_IN", job_key, exclusive=True)

    for n, s in enumerate(batch.snapshots):
        p = f"snapshots[{n}]"
        ok = problems.digest(s.image_digest, f"{p}.imageDigest")
        wrong = fact_problems(s.facts) if isinstance(s.facts, dict) else [
            {"path": "facts", "message": "must be an object of facts"}]
        for problem in wrong:
            problems.check(False, f"{p}.{problem['path']}", problem["message"])
        if wrong:
            continue
        facts = check_facts(s.facts)
        content = facts_hash(facts)
        snapshot_key = key("Snapshot", f"{s.image_digest}@{content}")
        if not ok or not once(snapshot_key, p):
            continue
        image_key = key("Image", s.image_digest)
        # immutable: the same facts of the same image are the same snapshot
        plan.node("Snapshot", snapshot_key, imageKey=image_key, imageDigest=s.image_digest,
                  facts=json.dumps(facts, sort_keys=True), factsHash=content,
                  takenAt=_utc(s.taken_at) or now_iso())
        plan.references.setdefault(image_key, f"{p}.imageDigest")
        plan.link(snapshot_key, "OF", image_key, exclusive=True)

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


def conflicting_links(conflicts: Iterable[dict[str, str]],
                      incoming: Iterable[dict[str, str]] = ()) -> None:
    """Refuses the batch when an exclusive link already leads elsewhere (`conflicts`: its
    source's) or already comes from elsewhere (`incoming`: its target's)."""
    problems = _Problems()
    for c in conflicts:
        problems.check(False, c["source"].split(":", 2)[2],
                       f"was recorded with a different {c['type']} target")
    for c in incoming:
        problems.check(False, c["target"].split(":", 2)[2],
                       f"was recorded with a different {c['type']} source")
    problems.raise_if_any()


def cycles(plan: Plan, reached: Iterable[tuple[str, str]]) -> None:
    """Refuses BASED_ON links that would close a cycle (an image its own ancestor).
    `reached` holds, for each base image the batch links to, every image the graph already
    leads to from it by BASED_ON; with the batch's own links, that is every way back."""
    edges: dict[str, set[str]] = {}
    for start, end in reached:
        edges.setdefault(start, set()).add(end)
    planned = sorted(plan.links.get("BASED_ON", set()))
    for source, target in planned:
        edges.setdefault(source, set()).add(target)
    problems = _Problems()
    for source, target in planned:
        seen, todo = {target}, [target]
        while todo and source not in seen:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        problems.check(source not in seen, source.split(":", 2)[2],
                       f"would be based on {target.split(':', 2)[2]}, which is already "
                       "based on it: base images cannot form a cycle")
    problems.raise_if_any()
