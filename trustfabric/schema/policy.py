"""Policies as code (LAC): versions of CEL rules, environments, promotions that explain
themselves, drift, and coaching hints."""

import dataclasses
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from trustfabric.domain.policy import hints as domain_hints
from trustfabric.domain.policy.drift import Assessment, Risk
from trustfabric.domain.policy.insights import Cause
from trustfabric.domain.policy.proposals import Proposal, ProposalStatus
from trustfabric.domain.policy.records import EnvironmentRecord, PromotionRecord, StoredVersion
from trustfabric.domain.policy.rules import Rule, RuleMode
from trustfabric.schema.described import described, described_enum
from trustfabric.schema.provenance import Severity

# The domain's enums, registered with the schema under these names (in place: the fields
# below are annotated with the domain classes themselves).
described_enum(RuleMode, name="PolicyRuleMode",
               description="ENFORCE denies a promotion on failure; AUDIT warns.",
               values={
                   RuleMode.ENFORCE: "A failure denies the promotion.",
                   RuleMode.AUDIT: "A failure is reported as a warning; the promotion passes.",
               })
described_enum(Cause, name="PromotionCause",
               description="What changed since the last passing promotion.",
               values={
                   Cause.POLICY_CHANGE: "The policy version changed: the earlier facts fail "
                                        "the new version too.",
                   Cause.DATA_CHANGE: "The facts changed: the earlier version fails the new "
                                      "facts too.",
                   Cause.BOTH: "Only the two changes together fail, or each fails alone.",
                   Cause.NO_BASELINE: "No earlier passing promotion of this lineage to "
                                      "compare with.",
               })
described_enum(Risk, name="DriftRisk",
               description="LOW drift may be merged by a reviewed proposal.",
               values={
                   Risk.LOW: "Safe to merge through a reviewed proposal (proposeDriftFix).",
                   Risk.HIGH: "Not for a proposal: an enforced rule removed or loosened, or a "
                              "recent decision would flip (see reasons).",
               })
described_enum(ProposalStatus, name="DriftProposalStatus",
               description="PROPOSED → SOAKING → MERGED, or ROLLED_BACK, or REJECTED.",
               values={
                   ProposalStatus.PROPOSED: "Waiting for a reviewer.",
                   ProposalStatus.SOAKING: "Approved: decided beside the deployed version "
                                           "until soakUntil, then merged.",
                   ProposalStatus.MERGED: "The environment runs the declared version.",
                   ProposalStatus.ROLLED_BACK: "A decision differed during the soak: the "
                                               "deployed version stays (see reason).",
                   ProposalStatus.REJECTED: "A reviewer refused it.",
               })



@strawberry.type(description="One CEL rule of a policy version.")
class PolicyRule:
    id: str = described("The rule's id, unique in its version.")
    expression: str = described("A CEL expression over the declared facts; true passes.")
    severity: Severity = described("How much a failure matters.")
    message: str = described("What an author is told when the rule fails.")
    mode: RuleMode = described("ENFORCE or AUDIT.")
    template: str | None = described("The catalogue entry its mitigations come from.")

    @classmethod
    def from_rule(cls, rule: Rule) -> "PolicyRule":
        return cls(id=rule.id, expression=rule.expression, severity=rule.severity,
                   message=rule.message, mode=rule.mode, template=rule.template)


@strawberry.type(description="An immutable, content-hashed policy version and its rules.")
class PolicyDefinition:
    key: strawberry.Private[str]
    policy_id: str = described("The policy's id.")
    version: str = described("The version's name.")
    hash: str = described("sha256 of the rules: the version's identity.")
    rules: list[PolicyRule] = described("Its rules; empty when only its hash was recorded.")

    @strawberry.field(description="The lineage's node id of this version (node(id)).")
    def id(self) -> strawberry.ID:
        return strawberry.ID(_global_id("PolicyVersion", self.key))

    @classmethod
    def from_stored(cls, stored: StoredVersion) -> "PolicyDefinition":
        rules = stored.policy.rules if stored.policy else ()
        return cls(key=stored.key, policy_id=stored.policy_id, version=stored.version,
                   hash=stored.hash, rules=[PolicyRule.from_rule(r) for r in rules])


def _global_id(kind: str, key: str) -> str:
    return str(relay.GlobalID(kind, key.split(":", 1)[1]))


@strawberry.type(description="An authoring mistake, with what to check and a template.")
class CoachingHint:
    rule_id: str = described("The rule it is about ('-' for the version).")
    kind: str = described("SYNTAX, UNKNOWN_FACT, TYPE, ALWAYS_TRUE, AUDIT_SHADOWED, …")
    hint: str = described("What is wrong, in a sentence.")
    checklist: list[str] = described("What to check.")
    template: str = described("The template under docs/lac/templates/ that shows the way.")

    @classmethod
    def from_hint(cls, hint: domain_hints.Hint) -> "CoachingHint":
        return cls(**{**dataclasses.asdict(hint), "checklist": list(hint.checklist),
                      "template": f"docs/lac/templates/{hint.template}.md"})


@strawberry.type(description="A submitted version with the hints found over recorded facts.")
class PolicySubmission:
    definition: PolicyDefinition = described("The version as recorded.")
    hints: list[CoachingHint] = described("Coaching hints for the version.")


@strawberry.input(description="One rule of a version being submitted.")
class PolicyRuleInput:
    id: str = described("The rule's id.")
    expression: str = described("A CEL expression over the declared facts.")
    severity: Severity = described("How much a failure matters.")
    message: str = described("What an author is told when it fails.")
    mode: RuleMode = strawberry.field(default=RuleMode.ENFORCE,
                                            description="ENFORCE (default) or AUDIT.")
    template: str | None = strawberry.field(default=None,
                                            description="A mitigation catalogue entry.")


@strawberry.input(description="A new, immutable version of a policy.")
class SubmitPolicyVersionInput:
    policy_id: str = described("The policy's id.")
    version: str = described("The new version's name.")
    rules: list[PolicyRuleInput] = described("Its rules, 1 to 100.")
    tenant: str | None = strawberry.field(default=None,
                                          description="Operators: the owning tenant.")


@strawberry.input(description="An environment's policy: the version declared in force, or the "
                              "one reported deployed.")
class SetEnvironmentInput:
    name: str = described("The environment (dev, staging, prod …).")
    position: int | None = strawberry.field(default=None,
                                            description="Its place in the promotion order.")
    policy_id: str | None = strawberry.field(default=None, description="The policy it runs.")
    declared: str | None = strawberry.field(default=None,
                                            description="The version declared in force.")
    deployed: str | None = strawberry.field(default=None,
                                            description="The version reported deployed.")
    tenant: str | None = strawberry.field(default=None,
                                          description="Operators: the owning tenant.")


@strawberry.type(description="An environment images are promoted into.")
class Environment:
    name: str = described("Its name.")
    position: int = described("Its place in the promotion order.")
    policy_id: str | None = described("The policy it runs.")
    declared: str | None = described("Key of the version declared in force.")
    deployed: str | None = described("Key of the version reported deployed.")
    drifted: bool = described("Deployed differs from declared.")

    @classmethod
    def from_record(cls, env: EnvironmentRecord) -> "Environment":
        return cls(name=env.name, position=env.position, policy_id=env.policy_id,
                   declared=env.declared, deployed=env.deployed, drifted=env.drifted)


@strawberry.input(description="Promote an image from one environment to the next.")
class PromoteInput:
    image: str = described("The image's sha256 digest.")
    from_: str = strawberry.field(name="from", description="The environment it leaves.")
    to: str = described("The environment it enters: its declared version decides.")
    idempotency_key: str = described("One promotion per key: a retry returns it.")
    tenant: str | None = strawberry.field(default=None,
                                          description="Operators: the owning tenant.")


@strawberry.type(description="One rule's outcome in a promotion.")
class RuleOutcome:
    rule_id: str = described("The rule.")
    mode: RuleMode = described("ENFORCE or AUDIT.")
    passed: bool = described("It held on the facts.")
    values: JSON = described("The facts it read, as they were.")
    error: str | None = described("Why it could not be evaluated (counted as failed).")


@strawberry.type(description="A failing constraint: the values that failed it and the "
                             "nearest that pass.")
class FailedConstraint:
    rule_id: str = described("The rule.")
    expression: str = described("Its CEL expression.")
    message: str = described("Its message.")
    severity: str = described("Its severity.")
    mode: str = described("ENFORCE or AUDIT.")
    values: JSON = described("The facts that failed it.")
    expected: JSON | None = described("One fact's value that would pass it, when derived.")
    error: str | None = described("Why it could not be evaluated, if it could not.")
    cause: Cause = described("Which change made this rule fail.")


@strawberry.type(description="A rule added, removed or changed since the baseline.")
class RuleChange:
    rule_id: str = described("The rule.")
    kind: str = described("ADDED, REMOVED or CHANGED.")
    old_expression: str | None = described("Before.")
    new_expression: str | None = described("After.")


@strawberry.type(description="A fact that changed since the baseline.")
class FactChange:
    fact: str = described("The fact.")
    old: JSON | None = described("Its value at the baseline.")
    new: JSON | None = described("Its value now.")


@strawberry.type(description="What to do, most useful first.")
class Mitigation:
    rank: int = described("1 first.")
    rule_id: str = described("The rule it addresses.")
    action: str = described("What to do.")
    change: JSON | None = described("The facts that would pass the rule, when derived.")
    template: str | None = described("The catalogue entry.")


@strawberry.type(description="Where to look in the lineage (Relay ids, for node(id)).")
class InsightLinks:
    image: strawberry.ID = described("The image promoted.")
    commit: strawberry.ID | None = described("The commit it was built from.")
    base_images: list[strawberry.ID] = described("The images it is based on.")
    baseline_image: strawberry.ID | None = described("The image of the last passing promotion.")

    @classmethod
    def from_document(cls, tenant: str, doc: dict[str, Any]) -> "InsightLinks":
        def node(kind: str, natural: str | None) -> strawberry.ID | None:
            return strawberry.ID(str(relay.GlobalID(kind, f"{tenant}:{natural}"))) \
                if natural else None

        return cls(image=strawberry.ID(str(relay.GlobalID("Image", f"{tenant}:{doc['image']}"))),
                   commit=node("Commit", doc["commit"]),
                   base_images=[strawberry.ID(str(relay.GlobalID("Image", f"{tenant}:{b}")))
                                for b in doc["base_images"]],
                   baseline_image=node("Image", doc["baseline_image"]))


@strawberry.type(description="Why a promotion failed: constraints, the policy↔data diff "
                             "against the last passing promotion, the cause, mitigations.")
class PromotionInsight:
    cause: Cause = described("POLICY_CHANGE, DATA_CHANGE, BOTH or NO_BASELINE.")
    deciding_rule: str | None = described("The enforced rule that decides the cause.")
    deciding_fact: str | None = described("The changed fact that rule read.")
    constraints: list[FailedConstraint] = described("Every failing rule.")
    rule_changes: list[RuleChange] = described("Rules changed since the baseline.")
    fact_changes: list[FactChange] = described("Facts changed since the baseline.")
    mitigations: list[Mitigation] = described("Ranked mitigations.")
    baseline_promotion: str | None = described("The last passing promotion compared with.")
    links: InsightLinks = described("Where to look in the lineage.")

    @classmethod
    def from_document(cls, tenant: str, doc: dict[str, Any]) -> "PromotionInsight":
        return cls(
            cause=Cause(doc["cause"]), deciding_rule=doc["deciding_rule"],
            deciding_fact=doc["deciding_fact"],
            constraints=[FailedConstraint(**{**c, "cause": Cause(c["cause"])})
                         for c in doc["constraints"]],
            rule_changes=[RuleChange(**c) for c in doc["rule_changes"]],
            fact_changes=[FactChange(**c) for c in doc["fact_changes"]],
            mitigations=[Mitigation(**m) for m in doc["mitigations"]],
            baseline_promotion=doc["baseline_promotion"],
            links=InsightLinks.from_document(tenant, doc["links"]))


@strawberry.type(description="A promotion's decision, recorded with every rule's result.")
class Promotion:
    record: strawberry.Private[PromotionRecord]
    id: str = described("The idempotency key it was asked with.")
    image: str = described("The image's digest.")
    from_: str = strawberry.field(name="from", description="The environment it left.")
    to: str = described("The environment it entered, or was refused.")
    allowed: bool = described("False: denied by an enforced rule.")
    at: datetime = described("When it was decided.")
    results: list[RuleOutcome] = described("Every rule's outcome.")
    insight: PromotionInsight | None = described("Why it failed; null when allowed.")
    insight_markdown: str | None = described("The insight as a pull-request comment.")

    @strawberry.field(description="Coaching hints for the version that decided it, over the "
                                  "facts recorded so far (empty when allowed).")
    async def hints(self, info: strawberry.Info) -> list[CoachingHint]:
        if self.allowed:
            return []
        found = await info.context.loaders.policy.hints.load(self.record.version_key)
        return [CoachingHint.from_hint(h) for h in found]

    @classmethod
    def from_record(cls, p: PromotionRecord) -> "Promotion":
        return cls(record=p, id=p.id, image=p.image_digest, from_=p.from_env, to=p.to_env,
                   allowed=p.allowed, at=datetime.fromisoformat(p.at),
                   results=[RuleOutcome(rule_id=r["ruleId"], mode=RuleMode(r["mode"]),
                                        passed=r["passed"], values=r["values"],
                                        error=r["error"]) for r in p.results],
                   insight=PromotionInsight.from_document(p.tenant, p.insight)
                   if p.insight else None,
                   insight_markdown=p.insight_markdown)


@strawberry.type(description="A recorded decision the declared version would change.")
class DecisionFlip:
    snapshot: str = described("The snapshot decided.")
    before: bool = described("Allowed under the deployed version.")
    after: bool = described("Allowed under the declared version.")


@strawberry.type(description="An environment whose deployed version is not the declared one.")
class PolicyDrift:
    environment: Environment = described("The environment.")
    declared: PolicyDefinition = described("The version declared in force.")
    deployed: PolicyDefinition = described("The version running.")
    risk: Risk = described("LOW or HIGH, by the stated rules.")
    reasons: list[str] = described("Why HIGH (empty when LOW).")
    flips: list[DecisionFlip] = described("Recent decisions the change would flip.")
    replayed: int = described("How many recent decisions were replayed.")

    @classmethod
    def from_assessment(cls, env: EnvironmentRecord, declared: StoredVersion,
                        deployed: StoredVersion, a: Assessment) -> "PolicyDrift":
        return cls(environment=Environment.from_record(env),
                   declared=PolicyDefinition.from_stored(declared),
                   deployed=PolicyDefinition.from_stored(deployed), risk=a.risk,
                   reasons=list(a.reasons),
                   flips=[DecisionFlip(snapshot=f.snapshot, before=f.before, after=f.after)
                          for f in a.flips], replayed=a.replayed)


@strawberry.type(description="A change proposal that merges a LOW-risk drift: the declared "
                             "version, reviewed, soaked beside the deployed one, then merged.")
class DriftProposal:
    id: str = described("The proposal's id.")
    environment: str = described("The drifted environment.")
    from_version: str = described("Key of the version deployed now.")
    to_version: str = described("Key of the declared version it brings.")
    patch: JSON = described("The rule changes, as reviewed.")
    rollback: JSON = described("The rule changes that undo it.")
    replayed: int = described("Recent decisions replayed under both versions: none flipped.")
    content_hash: str = described("What an approval names: a changed proposal is refused.")
    author: str = described("The token that proposed it.")
    status: ProposalStatus = described("Where it stands.")
    reviewer: str | None = described("The token that reviewed it.")
    soak_until: datetime | None = described("When an approved proposal merges, if no decision "
                                         "differs until then.")
    reason: str | None = described("Why it rolled back.")

    @classmethod
    def from_proposal(cls, p: Proposal) -> "DriftProposal":
        return cls(id=p.id, environment=p.environment, from_version=p.from_version,
                   to_version=p.to_version, patch=JSON(p.patch), rollback=JSON(p.rollback),
                   replayed=p.replayed, content_hash=p.content_hash, author=p.author,
                   status=p.status, reviewer=p.reviewer,
                   soak_until=datetime.fromisoformat(p.soak_until) if p.soak_until else None,
                   reason=p.reason)
