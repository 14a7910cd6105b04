"""Policy versions, environments, snapshots and promotions in the graph, each write with its
audit event in the same transaction."""

import json
from typing import Any

from trustfabric.domain.audit import AuditEvent, now_iso
from trustfabric.domain.events.records import PROPOSAL, JobEvent, announced
from trustfabric.domain.policy.facts import Facts
from trustfabric.domain.policy.insights import Baseline
from trustfabric.domain.policy.proposals import Proposal, ProposalStatus
from trustfabric.domain.policy.records import (
    EnvironmentRecord,
    PromotionRecord,
    SnapshotRecord,
    StoredVersion,
)
from trustfabric.domain.policy.rules import PolicyVersion
from trustfabric.domain.provenance.model import entity_key
from trustfabric.errors import BadUserInput, NotFound
from trustfabric.graph.audit import AuditRepository
from trustfabric.graph.executor import GraphExecutor, Tx
from trustfabric.graph.job_events import Outbox
from trustfabric.graph.queries import ingest
from trustfabric.graph.queries import policy as q


class PolicyRepository:
    def __init__(self, executor: GraphExecutor, outbox: Outbox) -> None:
        self._executor = executor
        self._outbox = outbox  # a drift proposal's moves are announced as events

    async def version(self, key: str, tenant: str | None) -> StoredVersion:
        rows = await self._executor.read(q.VERSION, key=key, tenant=tenant)
        if not rows:
            raise NotFound(f"policy version {key.split(':', 2)[-1]}")
        return StoredVersion.from_row(rows[0]["version"])

    async def submit_version(self, tenant: str, version: PolicyVersion,
                             audit: AuditEvent) -> StoredVersion:
        policy_key = entity_key("Policy", tenant, version.policy_id)
        key = entity_key("PolicyVersion", tenant, f"{version.policy_id}@{version.version}")
        rules = json.dumps([rule.document() for rule in version.rules], sort_keys=True)
        now = now_iso()

        async def work(tx: Tx) -> StoredVersion:
            await tx.run(ingest.ENSURE_TENANT, tenant=tenant, now=now)
            await tx.run(ingest.CREATE_MISSING["Policy"], rows=[{"key": policy_key, "props": {
                "key": policy_key, "kind": "Policy", "tenant": tenant,
                "policyId": version.policy_id}}])
            await tx.run(ingest.CREATE_MISSING["PolicyVersion"], rows=[{"key": key, "props": {
                "key": key, "kind": "PolicyVersion", "tenant": tenant,
                "policyId": version.policy_id, "version": version.version,
                "hash": version.hash, "rules": rules, "createdAt": now}}])
            rows = await tx.run(q.COMPLETE_VERSION, key=key, hash=version.hash, rules=rules)
            stored = StoredVersion.from_row(rows[0]["version"])
            if stored.policy != version:  # rolled back: nothing of it is written
                raise BadUserInput(f"policy {version.policy_id} version {version.version} "
                                   "was recorded with other content: versions are immutable")
            await tx.run(ingest.LINKS["HAS_VERSION"],
                         rows=[{"source": policy_key, "target": key}])
            # the rules as nodes too: which versions hold a rule is a graph question
            rule_keys = {rule.id: entity_key("Rule", tenant, f"{version.policy_id}@"
                                             f"{version.version}#{rule.id}")
                         for rule in version.rules}
            rule_rows = [{"key": rule_keys[rule.id], "props": {
                "key": rule_keys[rule.id], "kind": "Rule", "tenant": tenant,
                "ruleId": rule.id, "cel": rule.expression, "mode": rule.mode.value,
                "severity": rule.severity.value}} for rule in version.rules]
            await tx.run(ingest.CREATE_MISSING["Rule"], rows=rule_rows)
            await tx.run(ingest.LINKS["HAS_RULE"],
                         rows=[{"source": key, "target": row["key"]} for row in rule_rows])
            await AuditRepository.record_in(tx, audit)
            return stored

        return await self._executor.write_tx(work)

    async def environment(self, key: str, tenant: str | None) -> EnvironmentRecord:
        rows = await self._executor.read(q.ENVIRONMENT, key=key, tenant=tenant)
        if not rows:
            raise NotFound(f"environment {key.split(':', 2)[-1]}")
        return EnvironmentRecord.from_row(rows[0]["environment"])

    async def drifted(self) -> dict[str, int]:
        """Every tenant's count of drifted environments (those with none are left out)."""
        return {row["tenant"]: row["drifted"] for row in await self._executor.read(q.DRIFTED)}

    async def environments(self, tenant: str) -> list[EnvironmentRecord]:
        rows = await self._executor.read(q.ENVIRONMENTS, tenant=tenant)
        return [EnvironmentRecord.from_row(row["environment"]) for row in rows]

    async def set_environment(self, tenant: str, name: str, *, position: int | None,
                              policy_id: str | None, declared: str | None,
                              deployed: str | None, audit: AuditEvent) -> EnvironmentRecord:
        key = entity_key("Environment", tenant, name)
        now = now_iso()

        async def work(tx: Tx) -> EnvironmentRecord:
            await tx.run(ingest.ENSURE_TENANT, tenant=tenant, now=now)
            await tx.run(ingest.CREATE_MISSING["Environment"], rows=[{"key": key, "props": {
                "key": key, "kind": "Environment", "tenant": tenant, "name": name,
                "createdAt": now}}])
            rows = await tx.run(q.UPDATE_ENVIRONMENT, key=key, position=position,
                                policyId=policy_id, declared=declared, deployed=deployed,
                                now=now)
            await AuditRepository.record_in(tx, audit)
            return EnvironmentRecord.from_row(rows[0]["environment"])

        return await self._executor.write_tx(work)

    async def latest_snapshot(self, image_key: str) -> SnapshotRecord | None:
        rows = await self._executor.read(q.LATEST_SNAPSHOT, imageKey=image_key)
        return SnapshotRecord.from_row(rows[0]["snapshot"]) if rows else None

    async def snapshots(self, tenant: str, limit: int) -> list[tuple[str, Facts]]:
        rows = await self._executor.read(q.SNAPSHOTS, tenant=tenant, limit=limit)
        return [(row["key"], json.loads(row["facts"])) for row in rows]

    async def promotion(self, key: str, tenant: str | None) -> PromotionRecord | None:
        rows = await self._executor.read(q.PROMOTION, key=key, tenant=tenant)
        return PromotionRecord.from_row(rows[0]["promotion"]) if rows else None

    async def promotions_of_image(self, image_key: str, tenant: str | None,
                                  limit: int) -> list[PromotionRecord]:
        rows = await self._executor.read(q.PROMOTIONS_OF_IMAGE, imageKey=image_key,
                                         tenant=tenant, limit=limit)
        return [PromotionRecord.from_row(row["promotion"]) for row in rows]

    async def record_promotion(self, props: dict[str, Any],
                               audit: AuditEvent) -> PromotionRecord | None:
        """None when a promotion under the same key was recorded first."""

        async def work(tx: Tx) -> PromotionRecord | None:
            created = await tx.run(ingest.CREATE_MISSING["Promotion"],
                                   rows=[{"key": props["key"], "props": props}])
            if not created or not created[0]["created"]:
                return None
            for type, target in (("OF", props["imageKey"]), ("UNDER", props["versionKey"]),
                                 ("USED", props["snapshotKey"])):
                await tx.run(ingest.LINKS[type], rows=[{"source": props["key"],
                                                        "target": target}])
            await AuditRepository.record_in(tx, audit)
            rows = await tx.run(q.PROMOTION, key=props["key"], tenant=props["tenant"])
            return PromotionRecord.from_row(rows[0]["promotion"])

        return await self._executor.write_tx(work)

    async def baseline(self, tenant: str, image_key: str, to: str,
                       at: str) -> Baseline | None:
        rows = await self._executor.read(q.BASELINE, tenant=tenant, imageKey=image_key,
                                         to=to, at=at)
        if not rows:
            return None
        version = StoredVersion.from_row(rows[0]["version"])
        if version.policy is None:
            return None
        return Baseline(rows[0]["promotionId"], version.policy, json.loads(rows[0]["facts"]),
                        rows[0]["imageDigest"])

    async def create_proposal(self, proposal: Proposal, audit: AuditEvent) -> None:
        await self._outbox.create(
            self._executor, "DriftProposal", proposal.document(), audit,
            announced(PROPOSAL, proposal.tenant, proposal.id, proposal.status.value))

    async def proposal(self, key: str, tenant: str | None) -> Proposal | None:
        rows = await self._executor.read(q.PROPOSAL, key=key, tenant=tenant)
        return Proposal.from_row(rows[0]["proposal"]) if rows else None

    async def proposals(self, tenant: str) -> list[Proposal]:
        rows = await self._executor.read(q.PROPOSALS, tenant=tenant)
        return [Proposal.from_row(row["proposal"]) for row in rows]

    async def soaking(self, tenant: str, environment: str) -> list[Proposal]:
        rows = await self._executor.read(q.SOAKING, tenant=tenant, environment=environment)
        return [Proposal.from_row(row["proposal"]) for row in rows]

    async def due(self, now: str) -> list[Proposal]:
        rows = await self._executor.read(q.DUE, now=now)
        return [Proposal.from_row(row["proposal"]) for row in rows]

    async def move(self, key: str, expected: ProposalStatus, changes: dict[str, Any],
                   audit: AuditEvent, deployed: str | None = None) -> Proposal | None:
        """The proposal moved on from `expected` (None: it had moved already), with its
        environment's deployed version when it merges, in one transaction, and announced
        (a rollback or a merge reaches webhooks)."""
        events: list[JobEvent] = []

        async def work(tx: Tx) -> Proposal | None:
            rows = await tx.run(q.MOVE_PROPOSAL, key=key, expected=expected.value,
                                changes=changes)
            if not rows:
                return None
            moved = Proposal.from_row(rows[0]["proposal"])
            if deployed is not None:
                await tx.run(q.SET_DEPLOYED, deployed=deployed, now=now_iso(),
                             key=entity_key("Environment", moved.tenant, moved.environment))
            await AuditRepository.record_in(tx, audit)
            events[:] = [announced(PROPOSAL, moved.tenant, moved.id, moved.status.value)]
            await self._outbox.write_in(tx, events)
            return moved

        moved = await self._executor.write_tx(work)
        if moved is not None:
            self._outbox.told(events)
        return moved

    async def image_origin(self, image_key: str) -> tuple[str | None, list[str]]:
        """The commit an image was built from, and the images it is based on."""
        rows = await self._executor.read(q.IMAGE_ORIGIN, imageKey=image_key)
        return (rows[0]["commit"], list(rows[0]["baseImages"])) if rows else (None, [])

    async def recent_decisions(self, tenant: str, to: str,
                               limit: int) -> list[tuple[str, Facts]]:
        rows = await self._executor.read(q.RECENT_DECISIONS, tenant=tenant, to=to, limit=limit)
        return [(row["key"], json.loads(row["facts"])) for row in rows]
