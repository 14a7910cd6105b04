"""Suppression rules: what they match, when, why, who proposed and approved them; and dry
runs of a scope before anyone approves it."""

from datetime import datetime

import strawberry

from trustfabric.domain.suppressions.rules import Decision, RuleStatus, Scope, SuppressionRule
from trustfabric.domain.suppressions.service import DryRun
from trustfabric.schema.described import described, described_enum

described_enum(RuleStatus, name="SuppressionRuleStatus",
               description="Where a suppression rule stands: PROPOSED until another person "
                           "approves it, then ACTIVE from its start to its end.",
               values={
                   RuleStatus.PROPOSED: "Waiting for an approver who is not its author; "
                                        "suppresses nothing yet.",
                   RuleStatus.ACTIVE: "Approved: suppresses matching anomalies from "
                                      "startsAt to endsAt.",
                   RuleStatus.EXPIRED: "No longer suppresses: past its end, expired by "
                                       "hand, or matched nothing for too long.",
                   RuleStatus.DELETED: "Deleted; kept only in the audit log.",
               })



@strawberry.input(description="What a suppression rule matches: every part given must match.")
class SuppressionScopeInput:
    job_pattern: str | None = strawberry.field(
        default=None, description="A glob over the job id or its pipeline (service).")
    kind: str | None = strawberry.field(default=None, description="The anomaly kind.")
    fingerprint: str | None = strawberry.field(
        default=None, description="The anomaly fingerprint (see Anomaly.fingerprint).")
    fuzzy_threshold: float | None = strawberry.field(
        default=None, description="50-100: match fingerprints this similar (rapidfuzz ratio); "
                                  "absent: exactly.")
    commit_sha: str | None = strawberry.field(
        default=None, description="Only anomalies of images built from this commit.")

    def to_scope(self) -> Scope:
        return Scope(self.job_pattern, self.kind, self.fingerprint, self.fuzzy_threshold,
                     self.commit_sha)


@strawberry.input(description="A suppression rule to propose; it needs an approver.")
class ProposeSuppressionInput:
    scope: SuppressionScopeInput = described("What it matches.")
    ends_at: datetime = described("When it stops (at most the tenant's maximum duration).")
    reason: str = described("Why these anomalies are benign.")
    starts_at: datetime | None = strawberry.field(default=None,
                                                  description="When it starts (now).")
    lineage_link: str | None = strawberry.field(
        default=None, description="The node id that justifies it (a commit, an image …).")
    tenant: str | None = strawberry.field(default=None,
                                          description="Operators: the owning tenant.")


@strawberry.type(description="What a suppression rule matches.")
class SuppressionScope:
    job_pattern: str | None = described("A glob over the job id or its pipeline.")
    kind: str | None = described("The anomaly kind.")
    fingerprint: str | None = described("The fingerprint.")
    fuzzy_threshold: float | None = described("How similar a fingerprint must be; null: exact.")
    commit_sha: str | None = described("Images built from this commit only.")


@strawberry.type(name="SuppressionRule",
                 description="A scoped, time-boxed rule that silences known-benign anomalies.")
class SuppressionRuleType:
    id: str = described("The rule's id.")
    scope: SuppressionScope = described("What it matches.")
    starts_at: datetime = described("When it starts.")
    ends_at: datetime = described("When it ends.")
    reason: str = described("Why.")
    lineage_link: str | None = described("The node that justifies it.")
    author: str = described("The token that proposed it.")
    approver: str | None = described("The token that approved it.")
    status: RuleStatus = described("Where it stands.")
    last_matched_at: datetime | None = described("When it last silenced an anomaly.")

    @classmethod
    def from_rule(cls, r: SuppressionRule) -> "SuppressionRuleType":
        s = r.scope
        return cls(id=r.id, scope=SuppressionScope(job_pattern=s.job_pattern, kind=s.kind,
                                                   fingerprint=s.fingerprint,
                                                   fuzzy_threshold=s.fuzzy_threshold,
                                                   commit_sha=s.commit_sha),
                   starts_at=datetime.fromisoformat(r.starts_at),
                   ends_at=datetime.fromisoformat(r.ends_at), reason=r.reason,
                   lineage_link=r.lineage_link, author=r.author, approver=r.approver,
                   status=r.status,
                   last_matched_at=datetime.fromisoformat(r.last_matched_at)
                   if r.last_matched_at else None)


@strawberry.type(description="What a scope would have suppressed over the last days.")
class SuppressionDryRun:
    examined: int = described("Anomalies of the period.")
    matched: list[str] = described("The anomaly ids it would have suppressed.")
    share: float = described("matched / examined: above the tenant's limit, it is refused.")
    true_positives: list[str] = described("Matched anomalies later marked true positives.")
    guarded: int = described("Matched by scope but never suppressed (critical or always-page).")

    @classmethod
    def from_run(cls, run: DryRun) -> "SuppressionDryRun":
        return cls(examined=run.examined, matched=[a.anomaly_id for a in run.matched],
                   share=run.share, true_positives=run.true_positives, guarded=run.guarded)


@strawberry.type(description="An anomaly decided as it was recorded (live, as it happens).")
class AnomalyEvent:
    id: strawberry.ID = described("The anomaly's global id (node(id), lineage(anomalyId)).")
    anomaly_id: str = described("The anomaly's recorded id.")
    decision: Decision = described("PAGE, SUPPRESSED or DEDUPLICATED.")
    at: datetime = described("When it was decided.")
