"""Policies as code: thin resolvers over the policy service."""

from strawberry import relay

from trustfabric.domain.policy.rules import PolicyVersion, Rule
from trustfabric.resolvers.provenance import key_of
from trustfabric.schema.policy import (
    CoachingHint,
    DriftProposal,
    Environment,
    PolicyDefinition,
    PolicyDrift,
    PolicySubmission,
    PromoteInput,
    Promotion,
    SetEnvironmentInput,
    SubmitPolicyVersionInput,
)
from trustfabric.schema.provenance import Info


async def submit_policy_version(info: Info, input: SubmitPolicyVersionInput) -> PolicySubmission:
    version = PolicyVersion(input.policy_id, input.version, tuple(
        Rule(r.id, r.expression, r.severity, r.message, r.mode, r.template) for r in input.rules))
    stored, hints = await info.context.policy.submit_version(info.context.caller, input.tenant,
                                                             version)
    return PolicySubmission(definition=PolicyDefinition.from_stored(stored),
                            hints=[CoachingHint.from_hint(h) for h in hints])


async def policy_hints(info: Info, version_id: relay.GlobalID) -> list[CoachingHint]:
    hints = await info.context.policy.hints(info.context.caller,
                                            key_of(version_id, "PolicyVersion"))
    return [CoachingHint.from_hint(h) for h in hints]


async def set_environment(info: Info, input: SetEnvironmentInput) -> Environment:
    env = await info.context.policy.set_environment(
        info.context.caller, input.tenant, input.name, position=input.position,
        policy_id=input.policy_id, declared=input.declared, deployed=input.deployed)
    return Environment.from_record(env)


async def environments(info: Info, tenant: str | None = None) -> list[Environment]:
    found = await info.context.policy.environments(info.context.caller, tenant)
    return [Environment.from_record(env) for env in found]


async def promote(info: Info, input: PromoteInput) -> Promotion:
    promotion = await info.context.policy.promote(
        info.context.caller, input.tenant, input.image, input.from_, input.to,
        input.idempotency_key)
    return Promotion.from_record(promotion)


async def promotion(info: Info, id: str, tenant: str | None = None) -> Promotion:
    return Promotion.from_record(await info.context.policy.promotion(info.context.caller, id,
                                                                     tenant))


async def policy_drift(info: Info, tenant: str | None = None) -> list[PolicyDrift]:
    found = await info.context.policy.drift(info.context.caller, tenant)
    return [PolicyDrift.from_assessment(*item) for item in found]


async def propose_drift_fix(info: Info, environment: str,
                            tenant: str | None = None) -> DriftProposal:
    proposal = await info.context.proposals.propose(info.context.caller, tenant, environment)
    return DriftProposal.from_proposal(proposal)


async def review_drift_proposal(info: Info, id: str, approve: bool, content_hash: str,
                                tenant: str | None = None) -> DriftProposal:
    proposal = await info.context.proposals.review(info.context.caller, tenant, id, approve,
                                                   content_hash)
    return DriftProposal.from_proposal(proposal)


async def drift_proposals(info: Info, tenant: str | None = None) -> list[DriftProposal]:
    found = await info.context.proposals.of_tenant(info.context.caller, tenant)
    return [DriftProposal.from_proposal(p) for p in found]
