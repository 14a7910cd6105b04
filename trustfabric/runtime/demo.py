"""A small, deterministic demo graph for two tenants, written through the ingest path."""

import hashlib
from datetime import UTC, datetime, timedelta

from trustfabric.domain.auth import Caller, Role
from trustfabric.domain.policy.rules import PolicyVersion, Rule, RuleMode
from trustfabric.domain.policy.service import PolicyService
from trustfabric.domain.provenance.enums import AnomalyStatus, JobKind, JobStatus, Severity
from trustfabric.domain.provenance.events import (
    AnomalyEvent,
    BuildEvent,
    IngestBatch,
    JobRunEvent,
    PolicyVersionEvent,
    SnapshotEvent,
)
from trustfabric.domain.provenance.ingest import plan_batch
from trustfabric.domain.psi.datasets import DatasetService
from trustfabric.domain.suppressions.service import SuppressionService
from trustfabric.graph.ingest import IngestRepository

DEMO_TENANTS = ("acme", "globex")
START = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
ANOMALY_KINDS = ("sbom-delta", "signature-missing", "cve-introduced", "config-drift")


def _hex(*parts: object, size: int = 40) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:size]


def digest(*parts: object) -> str:
    return "sha256:" + _hex(*parts, size=64)


def demo_batch(tenant: str, repos: int = 2, commits_per_repo: int = 6) -> IngestBatch:
    base = digest(tenant, "base")
    builds = [BuildEvent(image_digest=base, image_ref="debian:12-slim", built_at=START)]
    # the lineage's policy versions are the demo policy's, by hash: its rules complete them
    policies = [
        PolicyVersionEvent(policy_id=v.policy_id, version=v.version, hash=v.hash,
                           created_at=START)
        for v in DEMO_POLICY
    ]
    jobs, anomalies = [], []
    for r in range(repos):
        url = f"https://git.example.com/{tenant}/service-{r}"
        parent = None
        for c in range(commits_per_repo):
            sha = _hex(tenant, r, c)
            at = START + timedelta(hours=r * commits_per_repo + c)
            image = digest(tenant, r, c)
            builds.append(BuildEvent(
                image_digest=image, image_ref=f"registry.example.com/{tenant}/service-{r}:{c}",
                repo_url=url, commit_sha=sha, commit_message=f"service-{r}: change {c}",
                author=f"dev{c % 3}@{tenant}.example.com", committed_at=at,
                parent_shas=[parent] if parent else [], base_image_digests=[base], built_at=at,
            ))
            parent = sha
            for stage, kind in enumerate((JobKind.BUILD, JobKind.DEPLOY)):
                job_id = f"{tenant}-job-{r}-{c}-{kind.value.lower()}"
                jobs.append(JobRunEvent(
                    job_id=job_id, kind=kind,
                    status=JobStatus.FAILED if (c + stage) % 4 == 3 else JobStatus.SUCCEEDED,
                    image_digest=image, policy_id="promotion-gate",
                    policy_version="v2" if c >= commits_per_repo // 2 else "v1",
                    pipeline=f"service-{r}", started_at=at, finished_at=at + timedelta(minutes=7),
                ))
                if (c + stage) % 3 == 0:
                    anomalies.append(AnomalyEvent(
                        anomaly_id=f"{tenant}-anomaly-{r}-{c}-{stage}", job_id=job_id,
                        kind=ANOMALY_KINDS[(r + c + stage) % len(ANOMALY_KINDS)],
                        severity=list(Severity)[(c + stage) % 4],
                        status=AnomalyStatus.OPEN if c % 2 == 0 else AnomalyStatus.RESOLVED,
                        summary=f"{ANOMALY_KINDS[(r + c + stage) % 4]} in service-{r} change {c}",
                        observed_at=at + timedelta(minutes=5),
                    ))
    snapshots = [SnapshotEvent(image_digest=digest(tenant, 0, c), facts=facts, taken_at=START)
                 for c, facts in DEMO_FACTS.items()]
    return IngestBatch(builds=builds, policy_versions=policies, job_runs=jobs, anomalies=anomalies,
                       snapshots=snapshots)


async def seed_demo(ingest: IngestRepository, suppressions: SuppressionService,
                    tenants: tuple[str, ...] = DEMO_TENANTS) -> None:
    for tenant in tenants:
        await ingest.apply(plan_batch(demo_batch(tenant), tenant, max_events=10_000),
                           await suppressions.paging(tenant))


def _rule(rule_id: str, expression: str, severity: Severity, message: str, template: str,
          mode: RuleMode = RuleMode.ENFORCE) -> Rule:
    return Rule(rule_id, expression, severity, message, mode, template)


_SIGNED = _rule("signed", "signed", Severity.HIGH, "images are signed before promotion",
                "signature")
# v2 tightens the vulnerability bound and enforces the SBOM rule v1 only audited
DEMO_POLICY = (
    PolicyVersion("promotion-gate", "v1", (
        _SIGNED,
        _rule("criticals", "vulns_critical <= 2", Severity.CRITICAL,
              "at most two critical vulnerabilities", "vulnerabilities"),
        _rule("sbom", "sbom_present", Severity.MEDIUM, "an SBOM is attached", "sbom",
              RuleMode.AUDIT))),
    PolicyVersion("promotion-gate", "v2", (
        _SIGNED,
        _rule("criticals", "vulns_critical <= 0", Severity.CRITICAL,
              "no critical vulnerabilities", "vulnerabilities"),
        _rule("sbom", "sbom_present", Severity.MEDIUM, "an SBOM is attached", "sbom"))),
)
# the facts of service-0's last images, by commit
DEMO_FACTS = {
    4: {"signed": True, "sbom_present": True, "vulns_critical": 1, "base_image": "debian:12"},
    5: {"signed": True, "sbom_present": True, "vulns_critical": 1, "base_image": "debian:12",
        "labels": ["team=payments"]},
}


async def seed_demo_policies(policy: PolicyService, tenants: tuple[str, ...] = DEMO_TENANTS
                             ) -> None:
    """Per tenant: the demo policy's rules, prod passing service-0's image 4 under v1, then
    denying image 5 under v2 (an insight: the tightened rule), and staging drifted."""
    for tenant in tenants:
        seeder = Caller(token_id="demo-seed", tenant=tenant, role=Role.MEMBER)
        for version in DEMO_POLICY:
            await policy.submit_version(seeder, None, version)
        await policy.set_environment(seeder, None, "staging", position=1,
                                     policy_id="promotion-gate", declared="v2", deployed="v1")
        for key, (declared, commit) in {"demo-pass": ("v1", 4), "demo-fail": ("v2", 5)}.items():
            await policy.set_environment(seeder, None, "prod", position=2,
                                         policy_id="promotion-gate", declared=declared)
            await policy.promote(seeder, None, digest(tenant, 0, commit), "staging", "prod",
                                 key)


def demo_customers(count: int = 10_000) -> list[str]:
    """Partner globex's demo customer list: every even-numbered address."""
    return [f"customer-{n}@example.com" for n in range(0, 2 * count, 2)]


async def seed_demo_datasets(datasets: DatasetService) -> None:
    seeder = Caller(token_id="demo-seed", tenant="acme", role=Role.OPERATOR)
    await datasets.register(seeder, "globex", "customers", demo_customers())
    await datasets.register(seeder, "acme", "accounts",
                            [f"customer-{n}@example.com" for n in range(0, 3000, 3)])
