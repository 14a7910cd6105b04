"""Suppression rules and anomaly verdicts: thin resolvers over the suppression service."""

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay

from trustfabric.domain.events.rechecked import rechecked
from trustfabric.domain.events.records import ANOMALY, JobEvent
from trustfabric.domain.suppressions.rules import Decision, Verdict
from trustfabric.errors import NotFound
from trustfabric.resolvers.provenance import key_of
from trustfabric.schema.provenance import Anomaly, Info, to_node
from trustfabric.schema.suppressions import (
    AnomalyEvent,
    ProposeSuppressionInput,
    SuppressionDryRun,
    SuppressionRuleType,
    SuppressionScopeInput,
)

# the arguments the rule mutations share
RuleId = Annotated[str, strawberry.argument(description="The rule's id (SuppressionRule.id).")]
Tenant = Annotated[str | None, strawberry.argument(
    description="Operators: the tenant the rule belongs to (default: the caller's own).")]


async def propose_suppression(
    info: Info,
    input: Annotated[ProposeSuppressionInput, strawberry.argument(
        description="The rule: its scope, end and reason.")],
) -> SuppressionRuleType:
    rule = await info.context.suppressions.propose(
        info.context.caller, input.tenant, input.scope.to_scope(), input.starts_at,
        input.ends_at, input.reason, input.lineage_link)
    return SuppressionRuleType.from_rule(rule)


async def approve_suppression(info: Info, id: RuleId,
                              tenant: Tenant = None) -> SuppressionRuleType:
    return SuppressionRuleType.from_rule(
        await info.context.suppressions.approve(info.context.caller, tenant, id))


async def extend_suppression(
    info: Info, id: RuleId,
    ends_at: Annotated[datetime, strawberry.argument(
        description="The new end, with a time zone: after the start and within the tenant's "
                    "maximum duration from it.")],
    tenant: Tenant = None,
) -> SuppressionRuleType:
    return SuppressionRuleType.from_rule(
        await info.context.suppressions.extend(info.context.caller, tenant, id, ends_at))


async def expire_suppression(info: Info, id: RuleId,
                             tenant: Tenant = None) -> SuppressionRuleType:
    return SuppressionRuleType.from_rule(
        await info.context.suppressions.expire(info.context.caller, tenant, id))


async def delete_suppression(info: Info, id: RuleId,
                             tenant: Tenant = None) -> SuppressionRuleType:
    return SuppressionRuleType.from_rule(
        await info.context.suppressions.delete(info.context.caller, tenant, id))


async def import_suppressions(
    info: Info,
    yaml: Annotated[str, strawberry.argument(
        description="A rules.yaml file as exportSuppressions writes it: `rules:`, a list of "
                    "at most 100, at most 200,000 characters.")],
    tenant: Annotated[str | None, strawberry.argument(
        description="Operators: the tenant the rules are for (default: the caller's own).")]
    = None,
) -> list[SuppressionRuleType]:
    rules = await info.context.suppressions.import_yaml(info.context.caller, tenant, yaml)
    return [SuppressionRuleType.from_rule(r) for r in rules]


async def suppression_rules(
    info: Info,
    tenant: Annotated[str | None, strawberry.argument(
        description="Operators: whose rules (default: the caller's own tenant).")] = None,
) -> list[SuppressionRuleType]:
    rules = await info.context.suppressions.rules(info.context.caller, tenant)
    return [SuppressionRuleType.from_rule(r) for r in rules]


async def export_suppressions(
    info: Info,
    tenant: Annotated[str | None, strawberry.argument(
        description="Operators: whose rules (default: the caller's own tenant).")] = None,
) -> str:
    return await info.context.suppressions.export_yaml(info.context.caller, tenant)


async def dry_run_suppression(
    info: Info,
    scope: Annotated[SuppressionScopeInput, strawberry.argument(
        description="What the rule would match.")],
    days: Annotated[int, strawberry.argument(
        description="How many days back to replay, 1 to 90.")] = 14,
    tenant: Annotated[str | None, strawberry.argument(
        description="Operators: whose anomalies (default: the caller's own tenant).")] = None,
) -> SuppressionDryRun:
    run = await info.context.suppressions.dry_run(info.context.caller, tenant,
                                                  scope.to_scope(), days)
    return SuppressionDryRun.from_run(run)


async def label_anomaly(
    info: Info,
    id: Annotated[relay.GlobalID, strawberry.argument(description="The anomaly's Relay id.")],
    true_positive: Annotated[bool, strawberry.argument(
        description="true: a real problem (TRUE_POSITIVE); false: BENIGN.")],
) -> Anomaly:
    caller = info.context.caller
    caller.require_write()
    verdict = Verdict.TRUE_POSITIVE if true_positive else Verdict.BENIGN
    entity = await info.context.repos.suppressions.label(key_of(id, "Anomaly"),
                                                         caller.read_scope, verdict.value)
    if entity is None:
        raise NotFound(f"node {id}")
    node = to_node(entity)
    assert isinstance(node, Anomaly)
    return node


async def anomaly_events(
    info: Info,
    decisions: Annotated[list[Decision] | None, strawberry.argument(
        description="Only these decisions, e.g. [PAGE] (default: every one).")] = None,
) -> AsyncGenerator[AnomalyEvent, None]:
    caller = await info.context.authenticate()
    wanted = {decision.value for decision in decisions} if decisions else None

    def matches(event: JobEvent) -> bool:
        return event.topic == ANOMALY and (wanted is None or event.status in wanted)

    # re-checked every token TTL, as the PSI job events are
    events = rechecked(info.context.events.subscribe(caller.tenant, matches),
                       info.context.settings.token_cache_ttl_s, info.context.reauthenticate)
    async for event in events:
        yield AnomalyEvent(
            id=strawberry.ID(str(relay.GlobalID("Anomaly", f"{event.tenant}:{event.job_id}"))),
            anomaly_id=event.job_id, decision=Decision(event.status),
            at=datetime.fromisoformat(event.at))
