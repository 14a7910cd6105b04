"""Authoring, environments and promotions: what the API's policy mutations do, with the
storage they need named as a Protocol (`graph.policy.PolicyRepository`)."""

import dataclasses
import enum
import json
from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client import Gauge

from trustfabric.domain.audit import AuditEvent, audit_event, now_iso
from trustfabric.domain.auth import Caller
from trustfabric.domain.ids import DIGEST, IDENT, IDENT_RULE
from trustfabric.domain.policy import hints
from trustfabric.domain.policy.drift import Assessment, assess
from trustfabric.domain.policy.evaluation import Decision, evaluate
from trustfabric.domain.policy.facts import Facts
from trustfabric.domain.policy.insights import Baseline, Links, explain, markdown
from trustfabric.domain.policy.proposals import DriftProposals
from trustfabric.domain.policy.records import (
    EnvironmentRecord,
    PromotionRecord,
    SnapshotRecord,
    StoredVersion,
)
from trustfabric.domain.policy.rules import PolicyRejected, PolicyVersion, compiled
from trustfabric.domain.provenance.model import entity_key
from trustfabric.errors import BadUserInput, NotFound

DRIFTED = Gauge("tf_policy_drifted_environments",
                "Environments whose deployed policy version is not the declared one",
                ["tenant"])

# The recent decisions a drift is replayed against, and the snapshots hints look at.
REPLAYED = 200
HINT_SNAPSHOTS = 200


class PolicyStore(Protocol):
    async def version(self, key: str, tenant: str | None) -> StoredVersion: ...

    async def submit_version(self, tenant: str, version: PolicyVersion,
                             audit: AuditEvent) -> StoredVersion: ...

    async def environment(self, key: str, tenant: str | None) -> EnvironmentRecord: ...

    async def environments(self, tenant: str) -> list[EnvironmentRecord]: ...

    async def drifted(self) -> dict[str, int]: ...

    async def set_environment(self, tenant: str, name: str, *, position: int | None,
                              policy_id: str | None, declared: str | None,
                              deployed: str | None, audit: AuditEvent) -> EnvironmentRecord: ...

    async def latest_snapshot(self, image_key: str) -> SnapshotRecord | None: ...

    async def snapshots(self, tenant: str, limit: int) -> list[tuple[str, Facts]]: ...

    async def promotion(self, key: str, tenant: str | None) -> PromotionRecord | None: ...

    async def promotions_of_image(self, image_key: str, tenant: str | None,
                                  limit: int) -> list[PromotionRecord]: ...

    async def record_promotion(self, props: dict[str, Any],
                               audit: AuditEvent) -> PromotionRecord | None: ...

    async def baseline(self, tenant: str, image_key: str, to: str,
                       at: str) -> Baseline | None: ...

    async def recent_decisions(self, tenant: str, to: str,
                               limit: int) -> list[tuple[str, Facts]]: ...

    async def image_origin(self, image_key: str) -> tuple[str | None, list[str]]: ...


def _checked(value: str, what: str) -> str:
    if not IDENT.fullmatch(value):
        raise BadUserInput(f"{what}: {IDENT_RULE}")
    return value


class PolicyService:
    def __init__(self, store: PolicyStore, proposals: DriftProposals) -> None:
        self._store = store
        # told of every decision: a drift fix under soak is compared on it
        self._proposals = proposals
        self._reported: set[str] = set()  # tenants the drift metric has a value for

    # -- authoring -----------------------------------------------------------------------
    async def submit_version(self, caller: Caller, tenant: str | None,
                             version: PolicyVersion) -> tuple[StoredVersion, list[hints.Hint]]:
        """Compiled and checked whole before anything is written; refused with the CEL
        errors and coaching hints. The same content under the same version is a replay;
        other content under a version already recorded is refused (versions are
        immutable)."""
        caller.require_write()
        owner = caller.tenant_for(tenant)
        try:
            checked = compiled(version)
        except PolicyRejected as refusal:
            refusal.extensions["hints"] = [dataclasses.asdict(h) for h in
                                           hints.for_problems(refusal.problems)]
            raise
        stored = await self._store.submit_version(owner, version, audit_event(
            tenant=owner, actor=caller.token_id, action="policy.version",
            subject=f"{version.policy_id}@{version.version}", outcome="created",
            size=len(version.rules)))
        seen = [facts for _, facts in await self._store.snapshots(owner, HINT_SNAPSHOTS)]
        return stored, hints.for_version(checked, seen)

    async def hints_of_versions(self, caller: Caller, version_keys: Sequence[str]
                                ) -> list[list[hints.Hint]]:
        """Each version's coaching hints: each version read once, and each tenant's recent
        snapshots once, however many times they are asked for (a page of promotions)."""
        versions = {key: await self._version(caller, key) for key in dict.fromkeys(version_keys)}
        seen: dict[str, list[Facts]] = {}
        for stored in versions.values():
            if stored.tenant not in seen:
                seen[stored.tenant] = [facts for _, facts in await self._store.snapshots(
                    stored.tenant, HINT_SNAPSHOTS)]
        found = {key: hints.for_version(compiled(stored.policy), seen[stored.tenant])
                 if stored.policy else [] for key, stored in versions.items()}
        return [found[key] for key in version_keys]

    # below hints_of_versions: in the class body, `hints` is this method from here on
    async def hints(self, caller: Caller, version_key: str) -> list[hints.Hint]:
        return (await self.hints_of_versions(caller, [version_key]))[0]

    async def _version(self, caller: Caller, key: str) -> StoredVersion:
        return await self._store.version(key, caller.read_scope)

    # -- environments --------------------------------------------------------------------
    async def set_environment(self, caller: Caller, tenant: str | None, name: str, *,
                              position: int | None = None, policy_id: str | None = None,
                              declared: str | None = None,
                              deployed: str | None = None) -> EnvironmentRecord:
        """Declares the version in force (`declared`), or reports the one actually running
        (`deployed`, from the deployer): they differ when drift happens."""
        caller.require_write()
        owner = caller.tenant_for(tenant)
        _checked(name, "environment")
        if policy_id is not None:
            _checked(policy_id, "policyId")
        keys = {}
        for field, version in (("declared", declared), ("deployed", deployed)):
            if version is not None:
                if policy_id is None:
                    raise BadUserInput(f"{field}: name the policyId too")
                key = entity_key("PolicyVersion", owner,
                                 f"{policy_id}@{_checked(version, field)}")
                stored = await self._store.version(key, owner)
                if stored.policy is None:
                    raise BadUserInput(f"{field}: version {version} has no rules submitted")
                keys[field] = key
        return await self._store.set_environment(
            owner, name, position=position, policy_id=policy_id,
            declared=keys.get("declared"), deployed=keys.get("deployed"),
            audit=audit_event(tenant=owner, actor=caller.token_id, action="policy.environment",
                              subject=name, outcome="changed"))

    async def report_drift(self) -> dict[str, int]:
        """Sets the drift metric: each tenant's drifted environments (0 once none is)."""
        drifted = await self._store.drifted()
        for tenant in set(drifted) | self._reported:
            DRIFTED.labels(tenant).set(drifted.get(tenant, 0))
        self._reported = set(drifted)
        return drifted

    async def environments(self, caller: Caller, tenant: str | None) -> list[EnvironmentRecord]:
        return await self._store.environments(caller.tenant_for(tenant))

    async def drift(self, caller: Caller, tenant: str | None
                    ) -> list[tuple[EnvironmentRecord, StoredVersion, StoredVersion, Assessment]]:
        """Each drifted environment with its declared and deployed versions and the risk of
        moving to the declared one, replayed against its recent decisions."""
        owner = caller.tenant_for(tenant)
        found = []
        for env in await self._store.environments(owner):
            if not env.drifted or env.declared is None or env.deployed is None:
                continue
            declared = await self._store.version(env.declared, owner)
            deployed = await self._store.version(env.deployed, owner)
            if declared.policy is None or deployed.policy is None:
                continue
            decisions = await self._store.recent_decisions(owner, env.name, REPLAYED)
            found.append((env, declared, deployed,
                          assess(declared.policy, deployed.policy, decisions)))
        return found

    # -- promotions ----------------------------------------------------------------------
    async def promote(self, caller: Caller, tenant: str | None, image_digest: str,
                      from_env: str, to_env: str, idempotency_key: str) -> PromotionRecord:
        """Evaluates the version in force for `to_env` against the image's latest snapshot
        and records the decision with every rule's result and, when denied, its insight.
        The same key returns the promotion already recorded."""
        caller.require_write()
        owner = caller.tenant_for(tenant)
        _checked(idempotency_key, "idempotencyKey")
        key = entity_key("Promotion", owner, idempotency_key)
        earlier = await self._store.promotion(key, owner)
        if earlier is not None:
            if (earlier.image_digest, earlier.from_env, earlier.to_env) != (
                    image_digest, from_env, to_env):
                raise BadUserInput("idempotencyKey was already used for another promotion")
            return earlier
        if not DIGEST.fullmatch(image_digest):
            raise BadUserInput("image: must be sha256: followed by 64 lowercase hex digits")
        env = await self._store.environment(
            entity_key("Environment", owner, _checked(to_env, "to")), owner)
        _checked(from_env, "from")
        if env.declared is None:
            raise BadUserInput(f"environment {to_env} has no policy version in force")
        stored = await self._store.version(env.declared, owner)
        if stored.policy is None:
            raise BadUserInput(f"environment {to_env}'s version has no rules submitted")
        image_key = entity_key("Image", owner, image_digest)
        snapshot = await self._store.latest_snapshot(image_key)
        if snapshot is None:
            raise NotFound(f"a snapshot of image {image_digest}")
        version = compiled(stored.policy)
        decision = evaluate(version, snapshot.facts)
        at = now_iso()
        insight = None
        if not decision.allowed:
            baseline = await self._store.baseline(owner, image_key, to_env, at)
            commit, bases = await self._store.image_origin(image_key)
            insight = explain(version, snapshot.facts, decision, baseline,
                              Links(image_digest, commit, tuple(bases)))
        props = {
            "key": key, "kind": "Promotion", "tenant": owner, "promotionId": idempotency_key,
            "imageKey": image_key, "imageDigest": image_digest, "from": from_env, "to": to_env,
            "versionKey": stored.key, "snapshotKey": snapshot.key,
            "allowed": decision.allowed, "results": json.dumps(_results(decision)),
            "insight": json.dumps(document(insight)) if insight else None, "at": at,
            "insightMarkdown": markdown(insight, {
                "id": idempotency_key, "image": image_digest, "from": from_env, "to": to_env,
            }) if insight else None,
        }
        recorded = await self._store.record_promotion(props, audit_event(
            tenant=owner, actor=caller.token_id, action="policy.promote",
            subject=idempotency_key, outcome="allowed" if decision.allowed else "denied",
            reason=insight.cause.value if insight else None))
        if recorded is not None:
            await self._proposals.canary(owner, to_env, snapshot.key, snapshot.facts)
        if recorded is None:  # recorded concurrently under the same key
            again = await self._store.promotion(key, owner)
            if again is None:
                raise NotFound(f"promotion {idempotency_key}")
            return again
        return recorded

    async def promotions_of_image(self, caller: Caller, image_digest: str,
                                  tenant: str | None = None, limit: int = 20
                                  ) -> list[PromotionRecord]:
        """The image's promotions, newest first: what the lineage's image hop shows."""
        if not DIGEST.fullmatch(image_digest):
            raise BadUserInput("image: must be sha256: followed by 64 lowercase hex digits")
        if not 1 <= limit <= 100:
            raise BadUserInput("first: 1 to 100")
        owner = caller.tenant_for(tenant)
        return await self._store.promotions_of_image(entity_key("Image", owner, image_digest),
                                                     caller.read_scope, limit)

    async def promotion(self, caller: Caller, promotion_id: str,
                        tenant: str | None = None) -> PromotionRecord:
        found = await self._store.promotion(
            entity_key("Promotion", caller.tenant_for(tenant), _checked(promotion_id, "id")),
            caller.read_scope)
        if found is None:
            raise NotFound(f"promotion {promotion_id}")
        return found


def _results(decision: Decision) -> list[dict[str, Any]]:
    return [{"ruleId": r.rule_id, "mode": r.mode.value, "passed": r.passed,
             "values": r.values, "error": r.error} for r in decision.results]


def document(value: Any) -> Any:
    """A record as JSON-ready data: dataclasses as dicts, enums as their values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: document(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: document(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [document(v) for v in value]
    return value

