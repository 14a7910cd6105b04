"""The paging decision and what a suppression rule matches, as plain Python."""

from datetime import timedelta

from trustfabric.domain.provenance.enums import Severity
from trustfabric.domain.suppressions.rules import (
    AnomalyFacts,
    Decision,
    RuleStatus,
    Scope,
    SuppressionRule,
    decide,
    fingerprint,
)
from trustfabric.domain.suppressions.service import Guards, Paging

AT = "2026-12-01T10:00:00.000000+00:00"


def anomaly(n: int = 1, kind: str = "sbom-delta", summary: str = "12 packages changed",
            severity: Severity = Severity.LOW, pipeline: str = "billing-api",
            commit: str | None = None) -> AnomalyFacts:
    return AnomalyFacts(f"Anomaly:t:a{n}", f"a{n}", kind, severity, fingerprint(kind, summary),
                        f"nightly-{n}", pipeline, None, commit, AT)


def rule(scope: Scope, status: RuleStatus = RuleStatus.ACTIVE,
         ends: str = "2027-01-01T00:00:00+00:00") -> SuppressionRule:
    return SuppressionRule("SuppressionRule:t:r", "r", "t", scope, "2026-11-01T00:00:00+00:00",
                           ends, "why", None, "author", "approver", status, AT)


def test_repeats_share_a_fingerprint_whatever_their_numbers():
    assert fingerprint("k", "12 packages changed") == fingerprint("k", "310 Packages changed ")
    assert fingerprint("k", "12 packages changed") != fingerprint("k", "packages removed")


def test_a_scope_matches_on_every_part_it_names():
    a = anomaly(commit="c1")
    assert Scope(job_pattern="billing-*").matches(a)
    assert Scope(job_pattern="nightly-*", kind="sbom-delta").matches(a)
    assert not Scope(job_pattern="billing-*", kind="config-drift").matches(a)
    assert Scope(commit_sha="c1").matches(a) and not Scope(commit_sha="c2").matches(a)
    assert Scope(fingerprint="sbom-delta:# packages changed").matches(a)
    near = Scope(fingerprint="sbom-delta:# package changed", fuzzy_threshold=90)
    assert near.matches(a) and not Scope(fingerprint="sbom-delta:# package changed").matches(a)


def test_guard_rails_come_before_any_rule():
    everything = [rule(Scope(job_pattern="*"))]
    assert decide(anomaly(), everything, set(), frozenset())[0] is Decision.SUPPRESSED
    critical = anomaly(severity=Severity.CRITICAL)
    assert decide(critical, everything, set(), frozenset())[0] is Decision.PAGE
    leak = anomaly(kind="secret-leak")
    assert decide(leak, everything, set(), frozenset({"secret-leak"}))[0] is Decision.PAGE


def test_only_active_rules_in_their_window_suppress():
    scope = Scope(job_pattern="*")
    assert decide(anomaly(), [rule(scope, RuleStatus.PROPOSED)], set(), frozenset())[0] \
        is Decision.PAGE
    ended = rule(scope, ends="2026-11-30T00:00:00+00:00")
    assert decide(anomaly(), [ended], set(), frozenset())[0] is Decision.PAGE


def test_a_page_deduplicates_its_repeats_in_the_same_batch():
    guards = Guards(timedelta(days=14), 0.2, 14, frozenset(), timedelta(hours=1),
                    timedelta(days=7))
    decided = Paging([], guards).decide([anomaly(1), anomaly(2, summary="13 packages changed"),
                                         anomaly(3, summary="other")], set())
    assert [d for _, d, _ in decided] == [Decision.PAGE, Decision.DEDUPLICATED, Decision.PAGE]


def test_a_tenant_may_have_its_own_maximum_duration():
    guards = Guards(timedelta(days=14), 0.2, 14, frozenset(), timedelta(hours=1),
                    timedelta(days=7), max_duration_by_tenant={"acme": timedelta(days=3)})
    assert guards.longest("acme") == timedelta(days=3)
    assert guards.longest("globex") == timedelta(days=14)
