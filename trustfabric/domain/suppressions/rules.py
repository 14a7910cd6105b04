"""Suppression rules and the paging decision: what an anomaly is, what a rule matches, and
the guard rails no rule passes."""

import enum
import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz

from trustfabric.domain.provenance.enums import Severity


class Decision(enum.Enum):
    PAGE = "PAGE"
    SUPPRESSED = "SUPPRESSED"  # by a rule, named with it
    DEDUPLICATED = "DEDUPLICATED"  # the same fingerprint paged within the window


class Verdict(enum.Enum):
    """What on-call concluded of an anomaly, once it did: dry runs show the true positives
    a rule would have hidden."""

    TRUE_POSITIVE = "TRUE_POSITIVE"
    BENIGN = "BENIGN"


class RuleStatus(enum.Enum):
    PROPOSED = "PROPOSED"  # waiting for an approver who is not its author
    ACTIVE = "ACTIVE"  # approved: suppresses from its start to its end
    EXPIRED = "EXPIRED"  # past its end, or matched nothing for too long, or expired by hand
    DELETED = "DELETED"


_NUMBERS = re.compile(r"\d+")


def fingerprint(kind: str, summary: str | None) -> str:
    """What repeats of one anomaly share: its kind and its summary with numbers blanked
    (a build number or a count differs from one repeat to the next)."""
    return f"{kind}:{_NUMBERS.sub('#', (summary or '').strip().lower())}"


@dataclass(frozen=True)
class AnomalyFacts:
    """What a decision reads of an anomaly and of the lineage it was observed in."""

    key: str
    anomaly_id: str
    kind: str
    severity: Severity
    fingerprint: str
    job_id: str | None
    pipeline: str | None
    image_digest: str | None
    commit_sha: str | None
    observed_at: str


@dataclass(frozen=True)
class Scope:
    """What a rule matches; every part given must match."""

    job_pattern: str | None = None  # a glob over the job id or its pipeline (service)
    kind: str | None = None
    fingerprint: str | None = None
    fuzzy_threshold: float | None = None  # None: the fingerprint must match exactly
    commit_sha: str | None = None  # images built from this commit (a lineage scope)

    def matches(self, anomaly: AnomalyFacts) -> bool:
        if self.kind is not None and anomaly.kind != self.kind:
            return False
        if self.job_pattern is not None and not any(
                value is not None and fnmatch.fnmatchcase(value, self.job_pattern)
                for value in (anomaly.job_id, anomaly.pipeline)):
            return False
        if self.commit_sha is not None and anomaly.commit_sha != self.commit_sha:
            return False
        if self.fingerprint is not None:
            if self.fuzzy_threshold is None:
                return anomaly.fingerprint == self.fingerprint
            return fuzz.ratio(anomaly.fingerprint, self.fingerprint) >= self.fuzzy_threshold
        return True

    def document(self) -> dict[str, Any]:
        return {"jobPattern": self.job_pattern, "kind": self.kind,
                "fingerprint": self.fingerprint, "fuzzyThreshold": self.fuzzy_threshold,
                "commitSha": self.commit_sha}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "Scope":
        return cls(doc.get("jobPattern"), doc.get("kind"), doc.get("fingerprint"),
                   doc.get("fuzzyThreshold"), doc.get("commitSha"))


@dataclass(frozen=True)
class SuppressionRule:
    key: str
    id: str
    tenant: str
    scope: Scope
    starts_at: str
    ends_at: str
    reason: str
    lineage_link: str | None  # the node (global id) that justifies it
    author: str
    approver: str | None
    status: RuleStatus
    created_at: str
    last_matched_at: str | None = None

    def in_force(self, at: str) -> bool:
        return self.status is RuleStatus.ACTIVE and self.starts_at <= at < self.ends_at


def guarded(anomaly: AnomalyFacts, always_page: frozenset[str]) -> bool:
    """Never suppressed, whatever a rule says: critical, or of a kind that always pages."""
    return anomaly.severity is Severity.CRITICAL or anomaly.kind in always_page


def decide(anomaly: AnomalyFacts, rules: list[SuppressionRule], paged_recently: set[str],
           always_page: frozenset[str]) -> tuple[Decision, SuppressionRule | None]:
    """The guard rails first, then the rules in force, then deduplication."""
    if guarded(anomaly, always_page):
        return Decision.PAGE, None
    for rule in rules:
        if rule.in_force(anomaly.observed_at) and rule.scope.matches(anomaly):
            return Decision.SUPPRESSED, rule
    if anomaly.fingerprint in paged_recently:
        return Decision.DEDUPLICATED, None
    return Decision.PAGE, None
