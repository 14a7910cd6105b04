"""Policies as code: thin resolvers over the policy service."""

from typing import Annotated

import strawberry
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

Tenant = Annotated[str | None, strawberry.argument(
    description="Operators: the tenant to act on or read (default: the caller's own).")]


async def submit_policy_version(
    info: Info,
    input: Annotated[SubmitPolicyVersionInput, strawberry.argument(
        description="The policy, the new version's name and its rules.")],
) -> PolicySubmission:
    version = PolicyVersion(input.policy_id, input.version, tuple(
        Rule(r.id, r.expression, r.severity, r.message, r.mode, r.template) for r in input.rules))
    stored, hints = await info.context.policy.submit_version(info.context.caller, input.tenant,
                                                             version)
    return PolicySubmission(definition=PolicyDefinition.from_stored(stored),
                            hints=[CoachingHint.from_hint(h) for h in hints])


async def policy_hints(
    info: Info,
    version_id: Annotated[relay.GlobalID, strawberry.argument(
        description="The PolicyVersion's Relay id (PolicyDefinition.id).")],
) -> list[CoachingHint]:
    hints = await info.context.policy.hints(info.context.caller,
                                            key_of(version_id, "PolicyVersion"))
    return [CoachingHint.from_hint(h) for h in hints]


async def set_environment(
    info: Info,
    input: Annotated[SetEnvironmentInput, strawberry.argument(
        description="The environment, and the version declared in force or reported "
                    "deployed.")],
) -> Environment:
    env = await info.context.policy.set_environment(
        info.context.caller, input.tenant, input.name, position=input.position,
        policy_id=input.policy_id, declared=input.declared, deployed=input.deployed)
    return Environment.from_record(env)


async def environments(info: Info, tenant: Tenant = None) -> list[Environment]:
    found = await info.context.policy.environments(info.context.caller, tenant)
    return [Environment.from_record(env) for env in found]


async def promote(
    info: Info,
    input: Annotated[PromoteInput, strawberry.argument(
        description="The image, the environments it moves between and an idempotency key.")],
) -> Promotion:
    promotion = await info.context.policy.promote(
        info.context.caller, input.tenant, input.image, input.from_, input.to,
        input.idempotency_key)
    return Promotion.from_record(promotion)


async def promotion(
    info: Info,
    id: Annotated[str, strawberry.argument(
        description="The idempotency key the promotion was asked with (Promotion.id).")],
    tenant: Tenant = None,
) -> Promotion:
    return Promotion.from_record(await info.context.policy.promotion(info.context.caller, id,
                                                                     tenant))


async def promotions(
    info: Info,
    image: Annotated[str, strawberry.argument(
        description="The image's digest: sha256: and 64 lower-case hex digits.")],
    first: Annotated[int, strawberry.argument(
        description="How many of the newest to return, 1 to 100.")] = 20,
    tenant: Tenant = None,
) -> list[Promotion]:
    found = await info.context.policy.promotions_of_image(info.context.caller, image, tenant,
                                                          first)
    return [Promotion.from_record(p) for p in found]


async def policy_drift(info: Info, tenant: Tenant = None) -> list[PolicyDrift]:
    found = await info.context.policy.drift(info.context.caller, tenant)
    return [PolicyDrift.from_assessment(*item) for item in found]


async def propose_drift_fix(
    info: Info,
    environment: Annotated[str, strawberry.argument(
        description="The drifted environment's name (PolicyDrift.environment.name).")],
    tenant: Tenant = None,
) -> DriftProposal:
    proposal = await info.context.proposals.propose(info.context.caller, tenant, environment)
    return DriftProposal.from_proposal(proposal)


async def review_drift_proposal(
    info: Info,
    id: Annotated[str, strawberry.argument(description="The proposal's id.")],
    approve: Annotated[bool, strawberry.argument(
        description="true approves and starts the soak; false rejects.")],
    content_hash: Annotated[str, strawberry.argument(
        description="The contentHash of the proposal as reviewed; refused if it changed.")],
    tenant: Tenant = None,
) -> DriftProposal:
    proposal = await info.context.proposals.review(info.context.caller, tenant, id, approve,
                                                   content_hash)
    return DriftProposal.from_proposal(proposal)


async def drift_proposals(info: Info, tenant: Tenant = None) -> list[DriftProposal]:
    found = await info.context.proposals.of_tenant(info.context.caller, tenant)
    return [DriftProposal.from_proposal(p) for p in found]
