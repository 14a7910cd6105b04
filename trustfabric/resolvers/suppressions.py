"""Suppression rules and anomaly verdicts: thin resolvers over the suppression service."""

from datetime import datetime

from strawberry import relay

from trustfabric.domain.suppressions.rules import Verdict
from trustfabric.errors import NotFound
from trustfabric.resolvers.provenance import key_of
from trustfabric.schema.provenance import Anomaly, Info, to_node
from trustfabric.schema.suppressions import (
    ProposeSuppressionInput,
    SuppressionDryRun,
    SuppressionRuleType,
    SuppressionScopeInput,
)


async def propose_suppression(info: Info, input: ProposeSuppressionInput) -> SuppressionRuleType:
    rule = await info.context.suppressions.propose(
        info.context.caller, input.tenant, input.scope.to_scope(), input.starts_at,
        input.ends_at, input.reason, input.lineage_link)
    return SuppressionRuleType.from_rule(rule)


async def approve_suppression(info: Info, id: str,
                              tenant: str | None = None) -> SuppressionRuleType:
    return SuppressionRuleType.from_rule(
        await info.context.suppressions.approve(info.context.caller, tenant, id))


async def extend_suppression(info: Info, id: str, ends_at: datetime,
                             tenant: str | None = None) -> SuppressionRuleType:
    return SuppressionRuleType.from_rule(
        await info.context.suppressions.extend(info.context.caller, tenant, id, ends_at))


async def expire_suppression(info: Info, id: str,
                             tenant: str | None = None) -> SuppressionRuleType:
    return SuppressionRuleType.from_rule(
        await info.context.suppressions.expire(info.context.caller, tenant, id))


async def delete_suppression(info: Info, id: str,
                             tenant: str | None = None) -> SuppressionRuleType:
    return SuppressionRuleType.from_rule(
        await info.context.suppressions.delete(info.context.caller, tenant, id))


async def import_suppressions(info: Info, yaml: str,
                              tenant: str | None = None) -> list[SuppressionRuleType]:
    rules = await info.context.suppressions.import_yaml(info.context.caller, tenant, yaml)
    return [SuppressionRuleType.from_rule(r) for r in rules]


async def suppression_rules(info: Info, tenant: str | None = None) -> list[SuppressionRuleType]:
    rules = await info.context.suppressions.rules(info.context.caller, tenant)
    return [SuppressionRuleType.from_rule(r) for r in rules]


async def export_suppressions(info: Info, tenant: str | None = None) -> str:
    return await info.context.suppressions.export_yaml(info.context.caller, tenant)


async def dry_run_suppression(info: Info, scope: SuppressionScopeInput, days: int = 14,
                              tenant: str | None = None) -> SuppressionDryRun:
    run = await info.context.suppressions.dry_run(info.context.caller, tenant,
                                                  scope.to_scope(), days)
    return SuppressionDryRun.from_run(run)


async def label_anomaly(info: Info, id: relay.GlobalID, true_positive: bool) -> Anomaly:
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
