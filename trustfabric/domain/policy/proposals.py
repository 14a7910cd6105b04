"""Safe auto-merge of low-risk drift (AG2): a change proposal with its patch, its rollback
and the regression set it was replayed against; approved by a reviewer who is not its
author; merged after a soak in which new decisions are compared under both versions, and
rolled back by itself if one differs."""

import enum
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from trustfabric.domain.audit import AuditEvent, AuditLog, audit_event, iso, now_iso
from trustfabric.domain.auth import Caller
from trustfabric.domain.policy.drift import Assessment, Risk, assess
from trustfabric.domain.policy.evaluation import evaluate
from trustfabric.domain.policy.facts import Facts
from trustfabric.domain.policy.records import EnvironmentRecord, StoredVersion
from trustfabric.domain.policy.rules import PolicyVersion, compiled
from trustfabric.domain.provenance.model import entity_key
from trustfabric.errors import AppError, BadUserInput, Conflict, NotFound


class ProposalStatus(enum.Enum):
    PROPOSED = "PROPOSED"  # waiting for a reviewer
    SOAKING = "SOAKING"  # approved: compared with the deployed version until it merges
    MERGED = "MERGED"  # the environment runs the declared version
    ROLLED_BACK = "ROLLED_BACK"  # a decision differed in the soak: the old version stays
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class Proposal:
    key: str
    id: str
    tenant: str
    environment: str
    from_version: str  # the deployed version's key
    to_version: str  # the declared version's key
    patch: list[dict[str, Any]]
    rollback: list[dict[str, Any]]
    replayed: int
    content_hash: str
    author: str
    status: ProposalStatus
    reviewer: str | None
    soak_until: str | None
    reason: str | None
    created_at: str

    def document(self) -> dict[str, Any]:
        """Its properties as stored."""
        return {"key": self.key, "kind": "DriftProposal", "tenant": self.tenant,
                "proposalId": self.id, "environment": self.environment,
                "fromVersion": self.from_version, "toVersion": self.to_version,
                "patch": json.dumps(self.patch), "rollback": json.dumps(self.rollback),
                "replayed": self.replayed, "contentHash": self.content_hash,
                "author": self.author, "status": self.status.value, "reviewer": self.reviewer,
                "soakUntil": self.soak_until, "reason": self.reason,
                "createdAt": self.created_at}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Proposal":
        return cls(row["key"], row["proposalId"], row["tenant"], row["environment"],
                   row["fromVersion"], row["toVersion"], json.loads(row["patch"]),
                   json.loads(row["rollback"]), row["replayed"], row["contentHash"],
                   row["author"], ProposalStatus(row["status"]), row.get("reviewer"),
                   row.get("soakUntil"), row.get("reason"), row["createdAt"])


class ProposalStore(Protocol):
    async def version(self, key: str, tenant: str | None) -> StoredVersion: ...

    async def environment(self, key: str, tenant: str | None) -> EnvironmentRecord: ...

    async def recent_decisions(self, tenant: str, to: str,
                               limit: int) -> list[tuple[str, Facts]]: ...

    async def create_proposal(self, proposal: Proposal, audit: AuditEvent) -> None: ...

    async def proposal(self, key: str, tenant: str | None) -> Proposal | None: ...

    async def proposals(self, tenant: str) -> list[Proposal]: ...

    async def soaking(self, tenant: str, environment: str) -> list[Proposal]: ...

    async def due(self, now: str) -> list[Proposal]: ...

    async def move(self, key: str, expected: ProposalStatus, changes: dict[str, Any],
                   audit: AuditEvent, deployed: str | None = None) -> Proposal | None: ...


def patch_of(old: PolicyVersion, new: PolicyVersion) -> list[dict[str, Any]]:
    """The rule changes from `old` to `new`: what a reviewer reads and the hash covers."""
    before = {rule.id: rule.document() for rule in old.rules}
    after = {rule.id: rule.document() for rule in new.rules}
    return ([{"op": "add", "rule": after[i]} for i in sorted(after.keys() - before.keys())]
            + [{"op": "remove", "rule": before[i]} for i in sorted(before.keys() - after.keys())]
            + [{"op": "replace", "rule": after[i], "previous": before[i]}
               for i in sorted(after.keys() & before.keys()) if after[i] != before[i]])


def content_hash(environment: str, from_version: str, to_version: str,
                 patch: list[dict[str, Any]]) -> str:
    body = json.dumps([environment, from_version, to_version, patch], sort_keys=True)
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


REPLAYED = 200  # the recent decisions a proposal is replayed against


class DriftProposals:
    def __init__(self, store: ProposalStore, audit: AuditLog, soak_s: float) -> None:
        self._store = store
        self._audit = audit
        self._soak_s = soak_s

    async def _assess(self, tenant: str, env: EnvironmentRecord
                      ) -> tuple[StoredVersion, StoredVersion, Assessment]:
        if not env.drifted or env.declared is None or env.deployed is None:
            raise BadUserInput(f"environment {env.name} has no drift")
        declared = await self._store.version(env.declared, tenant)
        deployed = await self._store.version(env.deployed, tenant)
        if declared.policy is None or deployed.policy is None:
            raise BadUserInput(f"environment {env.name}: a version has no rules")
        decisions = await self._store.recent_decisions(tenant, env.name, REPLAYED)
        return declared, deployed, assess(declared.policy, deployed.policy, decisions)

    async def propose(self, caller: Caller, tenant: str | None, environment: str) -> Proposal:
        """A proposal to run the declared version where the deployed one runs; only for
        LOW-risk drift."""
        caller.require_write()
        owner = caller.tenant_for(tenant)
        env = await self._store.environment(entity_key("Environment", owner, environment),
                                            owner)
        declared, deployed, assessment = await self._assess(owner, env)
        if assessment.risk is Risk.HIGH:
            await self._refused(caller, owner, environment, "HIGH_RISK")
            raise BadUserInput(f"the drift of {environment} is HIGH risk: "
                               + "; ".join(assessment.reasons), reasons=list(assessment.reasons))
        assert declared.policy is not None and deployed.policy is not None  # checked above
        patch = patch_of(deployed.policy, declared.policy)
        proposal_id = "dp_" + secrets.token_hex(6)
        proposal = Proposal(
            entity_key("DriftProposal", owner, proposal_id), proposal_id, owner, environment,
            deployed.key, declared.key, patch, patch_of(declared.policy, deployed.policy),
            assessment.replayed, content_hash(environment, deployed.key, declared.key, patch),
            caller.token_id, ProposalStatus.PROPOSED, None, None, None, now_iso())
        await self._store.create_proposal(proposal, self._event(
            caller, owner, proposal_id, "policy.proposal.create", "created"))
        return proposal

    async def review(self, caller: Caller, tenant: str | None, proposal_id: str,
                     approve: bool, reviewed_hash: str) -> Proposal:
        """Approval starts the soak; every refusal is audited and coded."""
        owner = caller.tenant_for(tenant)
        proposal = await self._store.proposal(entity_key("DriftProposal", owner, proposal_id),
                                              caller.read_scope)
        if proposal is None:
            raise NotFound(f"drift proposal {proposal_id}")
        action = "policy.proposal.review"
        try:
            caller.require_reviewer(proposal.tenant, proposal.author)
            if proposal.status is not ProposalStatus.PROPOSED:
                raise BadUserInput(f"the proposal is {proposal.status.value}, not PROPOSED")
            if reviewed_hash != proposal.content_hash:
                raise Conflict("the proposal changed since it was reviewed: review it again")
            env = await self._store.environment(
                entity_key("Environment", proposal.tenant, proposal.environment),
                proposal.tenant)
            declared, deployed, assessment = await self._assess(proposal.tenant, env)
            if (deployed.key, declared.key) != (proposal.from_version, proposal.to_version):
                raise Conflict("the environment changed since it was proposed")
            if approve and assessment.risk is Risk.HIGH:
                raise BadUserInput("the drift is HIGH risk now: "
                                   + "; ".join(assessment.reasons))
        except AppError as refusal:
            await self._audit.record(self._event(caller, proposal.tenant, proposal_id, action,
                                                 "refused", reason=refusal.code))
            raise
        status = ProposalStatus.SOAKING if approve else ProposalStatus.REJECTED
        changes: dict[str, Any] = {"status": status.value, "reviewer": caller.token_id}
        if approve:
            changes["soakUntil"] = iso(datetime.now(UTC) + timedelta(seconds=self._soak_s))
        moved = await self._store.move(proposal.key, ProposalStatus.PROPOSED, changes,
                                       self._event(caller, proposal.tenant, proposal_id,
                                                   action, status.value.lower()))
        if moved is None:
            raise Conflict("the proposal was reviewed concurrently")
        return moved

    async def canary(self, tenant: str, environment: str, snapshot: str,
                     facts: Facts) -> list[Proposal]:
        """A new decision in an environment under soak, taken under both versions: if they
        differ, the proposal rolls back (the deployed version stays)."""
        rolled_back = []
        for proposal in await self._store.soaking(tenant, environment):
            old = await self._store.version(proposal.from_version, tenant)
            new = await self._store.version(proposal.to_version, tenant)
            if old.policy is None or new.policy is None:
                continue
            before = evaluate(compiled(old.policy), facts).allowed
            after = evaluate(compiled(new.policy), facts).allowed
            if before != after:
                moved = await self._store.move(
                    proposal.key, ProposalStatus.SOAKING,
                    {"status": ProposalStatus.ROLLED_BACK.value,
                     "reason": f"snapshot {snapshot}: allowed {before} before, {after} after"},
                    audit_event(tenant=tenant, actor="policy-canary",
                                action="policy.proposal.rollback", subject=proposal.id,
                                outcome="rolled_back"))
                if moved is not None:
                    rolled_back.append(moved)
        return rolled_back

    async def merge_due(self) -> list[Proposal]:
        """Proposals whose soak ended with no regression: the environment now runs the
        declared version."""
        merged = []
        for proposal in await self._store.due(now_iso()):
            moved = await self._store.move(
                proposal.key, ProposalStatus.SOAKING, {"status": ProposalStatus.MERGED.value},
                audit_event(tenant=proposal.tenant, actor="policy-merge",
                            action="policy.proposal.merge", subject=proposal.id,
                            outcome="merged"),
                deployed=proposal.to_version)
            if moved is not None:
                merged.append(moved)
        return merged

    async def of_tenant(self, caller: Caller, tenant: str | None) -> list[Proposal]:
        return await self._store.proposals(caller.tenant_for(tenant))

    async def _refused(self, caller: Caller, tenant: str, subject: str, reason: str) -> None:
        await self._audit.record(self._event(caller, tenant, subject, "policy.proposal.create",
                                             "refused", reason=reason))

    @staticmethod
    def _event(caller: Caller, tenant: str, subject: str, action: str, outcome: str,
               **details: Any) -> AuditEvent:
        return audit_event(tenant=tenant, actor=caller.token_id, action=action,
                           subject=subject, outcome=outcome, **details)
