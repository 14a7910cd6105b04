"""Suppression rules in the graph, and the anomalies' paging decisions."""

import json
from typing import Any

from trustfabric.domain.audit import AuditEvent, now_iso
from trustfabric.domain.events.records import ANOMALY, SUPPRESSION, JobEvent, announced
from trustfabric.domain.provenance.enums import Severity
from trustfabric.domain.provenance.model import Entity
from trustfabric.domain.suppressions.rules import (
    AnomalyFacts,
    RuleStatus,
    Scope,
    SuppressionRule,
)
from trustfabric.domain.suppressions.service import Paging
from trustfabric.graph.audit import AuditRepository
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.job_events import Outbox
from trustfabric.graph.queries import suppressions as q


def rule_from_row(row: dict[str, Any]) -> SuppressionRule:
    return SuppressionRule(
        row["key"], row["ruleId"], row["tenant"], Scope.from_document(json.loads(row["scope"])),
        row["startsAt"], row["endsAt"], row["reason"], row.get("lineageLink"), row["author"],
        row.get("approver"), RuleStatus(row["status"]), row["createdAt"],
        row.get("lastMatchedAt"))


def facts_from_row(row: dict[str, Any]) -> AnomalyFacts:
    return AnomalyFacts(row["key"], row["anomalyId"], row["kind"], Severity(row["severity"]),
                        row["fingerprint"] or "", row["jobId"], row["pipeline"],
                        row["imageDigest"], row["commitSha"], row["observedAt"])


async def decide_in(tx: Tx, tenant: str, keys: list[str], paging: Paging,
                    outbox: Outbox) -> list[JobEvent]:
    """Within an ingest's transaction: each anomaly not yet decided gets its decision, an
    event of it in the outbox, and the rules that suppressed one are marked as matching.
    Returns the events, for this process's own subscribers (its poller reads only other
    processes')."""
    now = now_iso()
    facts = [facts_from_row(row) for row in await tx.run(q.UNDECIDED, keys=keys, now=now)]
    if not facts:
        return []
    since = min(paging.since(f.observed_at) for f in facts)
    paged = {row["fingerprint"] for row in await tx.run(
        q.PAGED_SINCE, tenant=tenant, fingerprints=sorted({f.fingerprint for f in facts}),
        since=since)}
    decided = paging.decide(facts, paged)
    await tx.run(q.SET_DECISIONS, now=now, rows=[
        {"key": f.key, "decision": d.value, "suppressedBy": r.id if r else None}
        for f, d, r in decided])
    matched = sorted({r.key for _, _, r in decided if r is not None})
    if matched:
        await tx.run(q.TOUCH_RULES, keys=matched, now=now)
    events = [announced(ANOMALY, tenant, f.anomaly_id, d.value) for f, d, _ in decided]
    await outbox.write_in(tx, events)
    return events


class SuppressionRepository:
    def __init__(self, executor: GraphExecutor, outbox: Outbox) -> None:
        self._executor = executor
        self._outbox = outbox  # a rule's changes are announced as events

    async def create_rule(self, rule: SuppressionRule, audit: AuditEvent) -> None:
        props = {"key": rule.key, "kind": "SuppressionRule", "tenant": rule.tenant,
                 "ruleId": rule.id, "scope": json.dumps(rule.scope.document()),
                 "startsAt": rule.starts_at, "endsAt": rule.ends_at, "reason": rule.reason,
                 "lineageLink": rule.lineage_link, "author": rule.author,
                 "status": rule.status.value, "createdAt": rule.created_at}

        await self._outbox.create(self._executor, "SuppressionRule", props, audit,
                                  announced(SUPPRESSION, rule.tenant, rule.id, rule.status.value))

    async def rule(self, key: str, tenant: str | None) -> SuppressionRule | None:
        rows = await self._executor.read(q.RULE, key=key, tenant=tenant)
        return rule_from_row(rows[0]["rule"]) if rows else None

    async def rules(self, tenant: str) -> list[SuppressionRule]:
        rows = await self._executor.read(q.RULES, tenant=tenant)
        return [rule_from_row(row["rule"]) for row in rows]

    async def move_rule(self, key: str, expected: RuleStatus, changes: dict[str, Any],
                        audit: AuditEvent, announce: str) -> SuppressionRule | None:
        """None when the rule had moved on already; else moved, audited and announced
        (`announce`: what happened to it, e.g. APPROVED or EXTENDED)."""
        events: list[JobEvent] = []

        async def work(tx: Tx) -> SuppressionRule | None:
            rows = await tx.run(q.MOVE_RULE, key=key, expected=expected.value, changes=changes)
            if not rows:
                return None
            moved = rule_from_row(rows[0]["rule"])
            await AuditRepository.record_in(tx, audit)
            events[:] = [announced(SUPPRESSION, moved.tenant, moved.id, announce)]
            await self._outbox.write_in(tx, events)
            return moved

        moved = await self._executor.write_tx(work)
        if moved is not None:
            self._outbox.told(events)
        return moved

    async def recent_anomalies(self, tenant: str, since: str,
                               limit: int) -> list[tuple[AnomalyFacts, bool]]:
        rows = await self._executor.read(q.RECENT_ANOMALIES, tenant=tenant, since=since,
                                         limit=limit, now=now_iso())
        return [(facts_from_row(row), row["verdict"] == "TRUE_POSITIVE") for row in rows]

    async def due_to_expire(self, now: str, idle_before: str) -> list[SuppressionRule]:
        rows = await self._executor.read(q.DUE_TO_EXPIRE, now=now, idleBefore=idle_before)
        return [rule_from_row(row["rule"]) for row in rows]

    async def label(self, key: str, tenant: str | None, verdict: str) -> Entity | None:
        rows = await self._executor.write(q.LABEL_ANOMALY, key=key, tenant=tenant,
                                          verdict=verdict)
        return Entity.from_row(rows[0]["node"]) if rows else None
