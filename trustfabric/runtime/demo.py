"""A small, deterministic demo graph for two tenants, written through the ingest path."""

import hashlib
from datetime import UTC, datetime, timedelta

from trustfabric.domain.auth import Caller, Role
from trustfabric.domain.provenance.enums import AnomalyStatus, JobKind, JobStatus, Severity
from trustfabric.domain.provenance.events import (
    AnomalyEvent,
    BuildEvent,
    IngestBatch,
    JobRunEvent,
    PolicyVersionEvent,
)
from trustfabric.domain.provenance.ingest import plan_batch
from trustfabric.domain.psi.datasets import DatasetService
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
    policies = [
        PolicyVersionEvent(policy_id="promotion-gate", version=f"v{n}",
                                hash=digest(tenant, "policy", n), created_at=START)
        for n in (1, 2)
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
    return IngestBatch(builds=builds, policy_versions=policies, job_runs=jobs, anomalies=anomalies)


async def seed_demo(ingest: IngestRepository, tenants: tuple[str, ...] = DEMO_TENANTS) -> None:
    for tenant in tenants:
        await ingest.apply(plan_batch(demo_batch(tenant), tenant, max_events=10_000))


def demo_customers(count: int = 10_000) -> list[str]:
    """Partner globex's demo customer list: every even-numbered address."""
    return [f"customer-{n}@example.com" for n in range(0, 2 * count, 2)]


async def seed_demo_datasets(datasets: DatasetService) -> None:
    seeder = Caller(token_id="demo-seed", tenant="acme", role=Role.OPERATOR)
    await datasets.register(seeder, "globex", "customers", demo_customers())
    await datasets.register(seeder, "acme", "accounts",
                            [f"customer-{n}@example.com" for n in range(0, 3000, 3)])
