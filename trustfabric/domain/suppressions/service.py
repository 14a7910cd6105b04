"""Suppression rules through their life (proposed, approved by another person, extended,
expired, deleted; each audited) and the paging decision an ingested anomaly gets."""

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import yaml

from trustfabric.domain.audit import AuditEvent, AuditLog, audit_event, iso, now_iso
from trustfabric.domain.auth import Caller
from trustfabric.domain.ids import IDENT
from trustfabric.domain.provenance.model import entity_key
from trustfabric.domain.suppressions.rules import (
    AnomalyFacts,
    Decision,
    RuleStatus,
    Scope,
    SuppressionRule,
    decide,
    guarded,
)
from trustfabric.errors import AppError, BadUserInput, Conflict, NotFound


@dataclass(frozen=True)
class Guards:
    """The limits every rule is held to (settings)."""

    max_duration: timedelta
    max_share: float  # of a tenant's recent anomalies a rule may match
    dry_run_days: int
    always_page: frozenset[str]
    dedup_window: timedelta
    idle_expiry: timedelta
    # a tenant's own maximum duration, where it has one (shorter or longer than the default)
    max_duration_by_tenant: dict[str, timedelta] = field(default_factory=dict)

    def longest(self, tenant: str) -> timedelta:
        return self.max_duration_by_tenant.get(tenant, self.max_duration)


@dataclass(frozen=True)
class DryRun:
    rule: Scope
    examined: int
    matched: list[AnomalyFacts]
    true_positives: list[str]  # matched anomalies later marked true positives
    guarded: int  # matched by scope, never suppressed (critical or always-page)

    @property
    def share(self) -> float:
        return len(self.matched) / self.examined if self.examined else 0.0


class SuppressionStore(Protocol):
    async def create_rule(self, rule: SuppressionRule, audit: AuditEvent) -> None: ...

    async def rule(self, key: str, tenant: str | None) -> SuppressionRule | None: ...

    async def rules(self, tenant: str) -> list[SuppressionRule]: ...

    async def move_rule(self, key: str, expected: RuleStatus, changes: dict[str, Any],
                        audit: AuditEvent, announce: str) -> SuppressionRule | None: ...

    async def recent_anomalies(self, tenant: str, since: str,
                               limit: int) -> list[tuple[AnomalyFacts, bool]]: ...

    async def due_to_expire(self, now: str, idle_before: str) -> list[SuppressionRule]: ...


class Paging:
    """Decides a batch of anomalies with the tenant's rules, read once before the write."""

    def __init__(self, rules: list[SuppressionRule], guards: Guards) -> None:
        self._rules = rules
        self.guards = guards

    def since(self, observed_at: str) -> str:
        """Where the deduplication window of an anomaly observed then starts."""
        return iso(datetime.fromisoformat(observed_at) - self.guards.dedup_window)

    def decide(self, anomalies: list[AnomalyFacts], paged: set[str]
               ) -> list[tuple[AnomalyFacts, Decision, SuppressionRule | None]]:
        """In order: a page earlier in the batch deduplicates later repeats in it."""
        decided = []
        for anomaly in sorted(anomalies, key=lambda a: (a.observed_at, a.key)):
            decision, rule = decide(anomaly, self._rules, paged, self.guards.always_page)
            if decision is Decision.PAGE:
                paged.add(anomaly.fingerprint)
            decided.append((anomaly, decision, rule))
        return decided


def _text(value: str | None, limit: int, what: str) -> str | None:
    if value is not None and len(value) > limit:
        raise BadUserInput(f"{what}: at most {limit} characters")
    return value


class SuppressionService:
    def __init__(self, store: SuppressionStore, audit: AuditLog, guards: Guards) -> None:
        self._store = store
        self._audit = audit
        self.guards = guards

    async def paging(self, tenant: str) -> Paging:
        return Paging([r for r in await self._store.rules(tenant)
                       if r.status is RuleStatus.ACTIVE], self.guards)

    # -- proposing ------------------------------------------------------------------------
    def _checked_scope(self, scope: Scope) -> Scope:
        if not any((scope.job_pattern, scope.kind, scope.fingerprint, scope.commit_sha)):
            raise BadUserInput("a rule names at least one of jobPattern, kind, fingerprint "
                               "or commitSha")
        _text(scope.job_pattern, 200, "jobPattern")
        _text(scope.fingerprint, 500, "fingerprint")
        if scope.kind is not None and not IDENT.fullmatch(scope.kind):
            raise BadUserInput("kind: letters, digits, '.', '_' or '-', at most 128")
        if scope.fuzzy_threshold is not None and not 50 <= scope.fuzzy_threshold <= 100:
            raise BadUserInput("fuzzyThreshold: between 50 and 100")
        if scope.fuzzy_threshold is not None and scope.fingerprint is None:
            raise BadUserInput("fuzzyThreshold needs a fingerprint")
        return scope

    def _checked_window(self, tenant: str, starts_at: datetime | None,
                        ends_at: datetime | None) -> tuple[str, str]:
        if ends_at is None:
            raise BadUserInput("a rule has an end (endsAt)")
        if (starts_at or ends_at).tzinfo is None or ends_at.tzinfo is None:
            raise BadUserInput("timestamps must carry a time zone")
        start = starts_at or datetime.now(UTC)
        if ends_at <= start:
            raise BadUserInput("endsAt must be after startsAt")
        longest = self.guards.longest(tenant)
        if ends_at - start > longest:
            raise BadUserInput(f"a rule of tenant {tenant} lasts at most {longest.days} days")
        return iso(start), iso(ends_at)

    async def propose(self, caller: Caller, tenant: str | None, scope: Scope,
                      starts_at: datetime | None, ends_at: datetime | None, reason: str,
                      lineage_link: str | None = None) -> SuppressionRule:
        caller.require_write()
        owner = caller.tenant_for(tenant)
        scope = self._checked_scope(scope)
        start, end = self._checked_window(owner, starts_at, ends_at)
        if not reason.strip():
            raise BadUserInput("a rule says why (reason)")
        run = await self.dry_run(caller, owner, scope, self.guards.dry_run_days)
        if run.share > self.guards.max_share:
            await self._audit.record(audit_event(
                tenant=owner, actor=caller.token_id, action="suppression.create",
                subject="-", outcome="refused", reason="TOO_BROAD"))
            raise BadUserInput(
                f"too broad: it would have suppressed {len(run.matched)} of {run.examined} "
                f"anomalies of the last {self.guards.dry_run_days} days (at most "
                f"{self.guards.max_share:.0%})")
        rule_id = "sr_" + secrets.token_hex(6)
        rule = SuppressionRule(
            entity_key("SuppressionRule", owner, rule_id), rule_id, owner, scope, start, end,
            _text(reason, 1000, "reason") or "", _text(lineage_link, 300, "lineageLink"),
            caller.token_id, None, RuleStatus.PROPOSED, now_iso())
        await self._store.create_rule(rule, self._event(caller, owner, rule_id, "create",
                                                        "proposed"))
        return rule

    # -- its life -------------------------------------------------------------------------
    async def _rule(self, caller: Caller, tenant: str | None, rule_id: str) -> SuppressionRule:
        owner = caller.tenant_for(tenant)
        rule = await self._store.rule(entity_key("SuppressionRule", owner, rule_id),
                                      caller.read_scope)
        if rule is None:
            raise NotFound(f"suppression rule {rule_id}")
        return rule

    async def approve(self, caller: Caller, tenant: str | None, rule_id: str
                      ) -> SuppressionRule:
        rule = await self._rule(caller, tenant, rule_id)
        try:
            caller.require_reviewer(rule.tenant, rule.author)
        except AppError as refusal:
            await self._audit.record(self._event(caller, rule.tenant, rule_id, "approve",
                                                 "refused", reason=refusal.code))
            raise
        return await self._move(caller, rule, RuleStatus.PROPOSED,
                                {"status": RuleStatus.ACTIVE.value, "approver": caller.token_id,
                                 "approvedAt": now_iso()}, "approve", "approved")

    async def extend(self, caller: Caller, tenant: str | None, rule_id: str,
                     ends_at: datetime) -> SuppressionRule:
        caller.require_write()
        rule = await self._rule(caller, tenant, rule_id)
        if rule.status not in (RuleStatus.PROPOSED, RuleStatus.ACTIVE):
            raise BadUserInput(f"the rule is {rule.status.value}")
        _, end = self._checked_window(rule.tenant, datetime.fromisoformat(rule.starts_at),
                                      ends_at)
        return await self._move(caller, rule, rule.status, {"endsAt": end}, "extend", "extended")

    async def expire(self, caller: Caller, tenant: str | None, rule_id: str
                     ) -> SuppressionRule:
        caller.require_write()
        rule = await self._rule(caller, tenant, rule_id)
        if rule.status not in (RuleStatus.PROPOSED, RuleStatus.ACTIVE):
            raise BadUserInput(f"the rule is {rule.status.value}")
        return await self._move(caller, rule, rule.status,
                                {"status": RuleStatus.EXPIRED.value, "endsAt": now_iso()},
                                "expire", "expired")

    async def delete(self, caller: Caller, tenant: str | None, rule_id: str
                     ) -> SuppressionRule:
        caller.require_write()
        rule = await self._rule(caller, tenant, rule_id)
        return await self._move(caller, rule, rule.status,
                                {"status": RuleStatus.DELETED.value}, "delete", "deleted")

    async def _move(self, caller: Caller, rule: SuppressionRule, expected: RuleStatus,
                    changes: dict[str, Any], action: str, outcome: str) -> SuppressionRule:
        moved = await self._store.move_rule(rule.key, expected, changes, self._event(
            caller, rule.tenant, rule.id, action, outcome), outcome.upper())
        if moved is None:
            raise Conflict("the rule changed concurrently: read it again")
        return moved

    async def expire_due(self) -> list[SuppressionRule]:
        """Rules past their end, and rules that matched nothing for the idle time."""
        now = datetime.now(UTC)
        expired = []
        for rule in await self._store.due_to_expire(iso(now), iso(now - self.guards.idle_expiry)):
            moved = await self._store.move_rule(
                rule.key, RuleStatus.ACTIVE, {"status": RuleStatus.EXPIRED.value},
                audit_event(tenant=rule.tenant, actor="suppression-expiry",
                            action="suppression.expire", subject=rule.id, outcome="expired",
                            reason="ENDED" if rule.ends_at <= iso(now) else "IDLE"),
                "EXPIRED")
            if moved is not None:
                expired.append(moved)
        return expired

    async def rules(self, caller: Caller, tenant: str | None) -> list[SuppressionRule]:
        return await self._store.rules(caller.tenant_for(tenant))

    # -- before approving -----------------------------------------------------------------
    async def dry_run(self, caller: Caller, tenant: str | None, scope: Scope,
                      days: int) -> DryRun:
        """What the scope would have suppressed over the last `days`, and which of those
        were later marked true positives."""
        owner = caller.tenant_for(tenant)
        if not 1 <= days <= 90:
            raise BadUserInput("days: 1 to 90")
        scope = self._checked_scope(scope)  # once, and before anything is read
        since = iso(datetime.now(UTC) - timedelta(days=days))
        seen = await self._store.recent_anomalies(owner, since, 50_000)
        hits = [(a, tp) for a, tp in seen if scope.matches(a)]
        allowed = [(a, tp) for a, tp in hits if not guarded(a, self.guards.always_page)]
        return DryRun(scope, len(seen), [a for a, _ in allowed],
                      [a.anomaly_id for a, tp in allowed if tp], len(hits) - len(allowed))

    # -- files ----------------------------------------------------------------------------
    async def import_yaml(self, caller: Caller, tenant: str | None,
                          text: str) -> list[SuppressionRule]:
        """`pcq/suppression/rules.yaml`-style: each rule proposed, still to be approved."""
        if len(text) > 200_000:
            raise BadUserInput("a rules file holds at most 200,000 characters")
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise BadUserInput(f"not YAML: {str(error).splitlines()[0]}") from None
        entries = doc.get("rules") if isinstance(doc, dict) else None
        if not isinstance(entries, list) or len(entries) > 100:
            raise BadUserInput("a rules file holds `rules:`, a list of at most 100")
        proposed = []
        for n, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise BadUserInput(f"rules[{n}]: a mapping")
            match = entry.get("match") or {}
            try:
                scope = Scope(match.get("job"), match.get("kind"), match.get("fingerprint"),
                              match.get("fuzzy"), match.get("commit"))
                ends = datetime.fromisoformat(str(entry["ends"])) if "ends" in entry else None
                starts = (datetime.fromisoformat(str(entry["starts"])) if "starts" in entry
                          else None)
            except (ValueError, AttributeError) as error:
                raise BadUserInput(f"rules[{n}]: {error}") from None
            proposed.append(await self.propose(caller, tenant, scope, starts, ends,
                                               str(entry.get("reason", "")),
                                               entry.get("lineage")))
        return proposed

    async def export_yaml(self, caller: Caller, tenant: str | None) -> str:
        live = [r for r in await self.rules(caller, tenant)
                if r.status in (RuleStatus.PROPOSED, RuleStatus.ACTIVE)]
        return yaml.safe_dump({"rules": [{
            "id": r.id, "status": r.status.value, "reason": r.reason, "starts": r.starts_at,
            "ends": r.ends_at, "lineage": r.lineage_link,
            "match": {k: v for k, v in {"job": r.scope.job_pattern, "kind": r.scope.kind,
                                        "fingerprint": r.scope.fingerprint,
                                        "fuzzy": r.scope.fuzzy_threshold,
                                        "commit": r.scope.commit_sha}.items() if v is not None},
        } for r in live]}, sort_keys=False)

    @staticmethod
    def _event(caller: Caller, tenant: str, subject: str, action: str, outcome: str,
               **details: Any) -> AuditEvent:
        return audit_event(tenant=tenant, actor=caller.token_id,
                           action=f"suppression.{action}", subject=subject, outcome=outcome,
                           **details)

