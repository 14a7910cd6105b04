"""Identifiers are whole values: `re.match(... $)` also accepts a value followed by a
newline, which made `sha256:<64 hex>\\n` a second image. Each pattern, where it is used."""

import re

import pytest

from trustfabric.domain.ids import DATASET_ID, DIGEST, IDENT, SHA, check_ids
from trustfabric.domain.provenance.enums import JobKind, JobStatus, Severity
from trustfabric.domain.provenance.events import (
    AnomalyEvent,
    BuildEvent,
    IngestBatch,
    JobRunEvent,
    PolicyVersionEvent,
)
from trustfabric.domain.provenance.ingest import plan_batch
from trustfabric.errors import BadUserInput
from trustfabric.migrations import _FILE

DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
SHA_C = "c" * 40
TAILS = ["\n", "\r\n", " ", "\x00"]


@pytest.mark.parametrize("pattern, value", [
    (DIGEST, DIGEST_A), (SHA, SHA_C), (SHA, "d" * 64), (IDENT, "policy-1.2_x"),
    (DATASET_ID, "partner/name"), (_FILE, "0001_constraints.cypher"),
])
@pytest.mark.parametrize("tail", TAILS)
def test_every_pattern_is_a_full_match(pattern: re.Pattern[str], value: str, tail: str) -> None:
    """Whatever method reads them: a `$` in a pattern read by `match` is the bug."""
    assert not pattern.pattern.endswith("$")
    assert pattern.fullmatch(value)
    assert not pattern.fullmatch(value + tail)


@pytest.mark.parametrize("tail", TAILS)
def test_check_ids_refuses_a_tail(tail: str) -> None:
    check_ids("partner/name", "key")
    with pytest.raises(BadUserInput):
        check_ids("partner/name" + tail, "key")
    with pytest.raises(BadUserInput):
        check_ids("partner/name", "key" + tail)


def _paths(batch: IngestBatch) -> set[str]:
    with pytest.raises(BadUserInput) as refused:
        plan_batch(batch, "acme", 1000)
    return {p["path"] for p in refused.value.extensions["problems"]}


@pytest.mark.parametrize("tail", ["\n", "\r\n"])
def test_ingest_refuses_every_identifier_with_a_trailing_newline(tail: str) -> None:
    job = JobRunEvent("job-1", JobKind.BUILD, JobStatus.SUCCEEDED, DIGEST_A, "policy", "1")
    good = IngestBatch(
        builds=[BuildEvent(DIGEST_A, repo_url="https://example.org/r", commit_sha=SHA_C,
                           parent_shas=[SHA_C], base_image_digests=[DIGEST_B])],
        policy_versions=[PolicyVersionEvent("policy", "1", DIGEST_B)],
        job_runs=[job],
        anomalies=[AnomalyEvent("anomaly-1", "job-1", "drift", Severity.HIGH)],
    )
    plan_batch(good, "acme", 1000)
    t = tail
    bad = IngestBatch(
        builds=[BuildEvent(DIGEST_A + t, repo_url="https://example.org/r",
                           commit_sha=SHA_C + t, parent_shas=[SHA_C + t],
                           base_image_digests=[DIGEST_B + t])],
        policy_versions=[PolicyVersionEvent("policy" + t, "1" + t, DIGEST_B + t)],
        job_runs=[JobRunEvent("job-1" + t, JobKind.BUILD, JobStatus.SUCCEEDED, DIGEST_A + t,
                              "policy" + t, "1" + t)],
        anomalies=[AnomalyEvent("anomaly-1" + t, "job-1" + t, "drift" + t, Severity.HIGH)],
    )
    assert _paths(bad) >= {
        "builds[0].imageDigest", "builds[0].commitSha", "builds[0].parentShas[0]",
        "builds[0].baseImageDigests[0]", "policyVersions[0].policyId",
        "policyVersions[0].version", "policyVersions[0].hash", "jobRuns[0].jobId",
        "jobRuns[0].imageDigest", "jobRuns[0].policyVersion", "anomalies[0].anomalyId",
        "anomalies[0].jobId", "anomalies[0].kind",
    }
