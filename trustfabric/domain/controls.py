"""Pilot controls: per-tenant flags, scopes and quotas, opt-outs, request-size bounds.

The document starts from `pilot-controls.yaml` and lives in the graph afterwards, where
operator mutations change it (each change audited). Decisions here are pure functions.
"""

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import yaml
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from trustfabric.domain.audit import AuditEvent, audit_event
from trustfabric.domain.auth import Caller
from trustfabric.domain.fairness.load import LoadState
from trustfabric.domain.ids import check_name
from trustfabric.domain.psi.protocol import Mode
from trustfabric.errors import BadUserInput, Forbidden, QuotaExceeded


@dataclass(frozen=True)
class Quota:
    """A sustained rate (`requests` per `per_seconds`) and a burst: about `burst` a second,
    which smooths a tenant's spikes before they reach the queue. Both are sliding-window
    counts (QuotaGate): across a window's edge a little more may pass, up to twice the
    burst within one second at most."""

    requests: int = 600
    per_seconds: int = 60
    burst: int = 100


@dataclass(frozen=True)
class TenantControls:
    psi: bool = False
    psi_ca: bool = False
    scopes: tuple[str, ...] = ()
    quota: Quota = field(default_factory=Quota)
    weight: float = 1.0  # its share when tenants compete for the workers

    def allows(self, mode: Mode) -> bool:
        return self.psi if mode is Mode.PSI else self.psi_ca


@dataclass(frozen=True)
class PilotControls:
    defaults: TenantControls = field(default_factory=TenantControls)
    tenants: dict[str, TenantControls] = field(default_factory=dict)
    opted_out: frozenset[str] = frozenset()
    min_request_size: int = 8
    max_request_size: int = 1000

    def for_tenant(self, tenant: str) -> TenantControls:
        return self.tenants.get(tenant, self.defaults)

    def check_scope(self, tenant: str, dataset_id: str, partner: str) -> None:
        """Refuses a tenant access to a dataset: opted out on either side, or out of scope."""
        if tenant in self.opted_out:
            raise Forbidden(f"tenant {tenant} has opted out of PSI")
        if partner in self.opted_out:
            raise Forbidden(f"partner {partner} has opted out of PSI")
        if dataset_id not in self.for_tenant(tenant).scopes:
            raise Forbidden(f"dataset {dataset_id} is outside tenant {tenant}'s scopes")

    def check(self, tenant: str, mode: Mode, dataset_id: str, partner: str) -> None:
        """Refuses a run the controls do not allow, saying which control refused it."""
        self.check_scope(tenant, dataset_id, partner)
        if not self.for_tenant(tenant).allows(mode):
            raise Forbidden(f"{mode.value} is not enabled for tenant {tenant}")

    def in_force(self, tenant: str) -> dict[str, Any]:
        """What the explainer states: the controls that applied to this tenant."""
        own = self.for_tenant(tenant)
        return {
            "flags": {"psi": own.psi, "psiCa": own.psi_ca},
            "scopes": list(own.scopes),
            "quota": {"requests": own.quota.requests, "perSeconds": own.quota.per_seconds,
                      "burst": own.quota.burst},
            "weight": own.weight,
            "minRequestSize": self.min_request_size,
            "maxRequestSize": self.max_request_size,
        }

    # -- the stored document ---------------------------------------------------------------
    def to_document(self) -> dict[str, Any]:
        return {
            "defaults": _tenant_doc(self.defaults),
            "tenants": {name: _tenant_doc(t) for name, t in sorted(self.tenants.items())},
            "optedOut": sorted(self.opted_out),
            "minRequestSize": self.min_request_size,
            "maxRequestSize": self.max_request_size,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "PilotControls":
        try:
            defaults = _tenant(doc.get("defaults") or {}, TenantControls())
            controls = cls(
                defaults=defaults,
                tenants={name: _tenant(t or {}, defaults)
                         for name, t in (doc.get("tenants") or {}).items()},
                opted_out=frozenset(doc.get("optedOut") or ()),
                min_request_size=int(doc.get("minRequestSize", 8)),
                max_request_size=int(doc.get("maxRequestSize", 1000)),
            )
        except (TypeError, ValueError, AttributeError) as error:
            raise BadUserInput(f"malformed pilot controls: {error}") from None
        if not 1 <= controls.min_request_size <= controls.max_request_size:
            raise BadUserInput("minRequestSize must be at least 1 and at most maxRequestSize")
        return controls

    @classmethod
    def from_yaml(cls, path: Path) -> "PilotControls":
        if not path.exists():
            return cls()
        controls = cls.from_document(yaml.safe_load(path.read_text()) or {})
        # names as the mutations take them; what is already stored is read as it is
        for name in (*controls.tenants, *controls.opted_out):
            check_name(str(name), f"{path.name}: a tenant or party name")
        return controls

    def with_tenant(self, tenant: str, **changes: Any) -> "PilotControls":
        check_name(tenant, "tenant")
        return replace(self, tenants={**self.tenants,
                                      tenant: replace(self.for_tenant(tenant), **changes)})


def _tenant_doc(t: TenantControls) -> dict[str, Any]:
    return {"flags": {"psi": t.psi, "psiCa": t.psi_ca}, "scopes": list(t.scopes),
            "quota": {"requests": t.quota.requests, "perSeconds": t.quota.per_seconds,
                      "burst": t.quota.burst},
            "weight": t.weight}


def _tenant(doc: dict[str, Any], base: TenantControls) -> TenantControls:
    flags = doc.get("flags") or {}
    quota = doc.get("quota") or {}
    return TenantControls(
        psi=bool(flags.get("psi", base.psi)),
        psi_ca=bool(flags.get("psiCa", base.psi_ca)),
        scopes=tuple(doc.get("scopes", base.scopes)),
        quota=Quota(int(quota.get("requests", base.quota.requests)),
                    int(quota.get("perSeconds", base.quota.per_seconds)),
                    int(quota.get("burst", base.quota.burst))),
        weight=_weight(doc.get("weight", base.weight)),
    )


MIN_WEIGHT, MAX_WEIGHT = 0.01, 100.0


def _weight(value: Any) -> float:
    """A share when tenants compete, brought within [MIN_WEIGHT, MAX_WEIGHT]: a weight of 0
    would never be served (and hung the fair queue), and a document written before the
    bounds must still be read. The mutation refuses weights outside them."""
    return min(max(float(value), MIN_WEIGHT), MAX_WEIGHT)


def diff(before: PilotControls, after: PilotControls) -> list[str]:
    """Which top-level settings a change touched, for the audit event."""
    old, new = before.to_document(), after.to_document()
    changed = [k for k in ("defaults", "optedOut", "minRequestSize", "maxRequestSize")
               if old[k] != new[k]]
    tenants = set(old["tenants"]) | set(new["tenants"])
    changed += [f"tenants.{t}" for t in sorted(tenants)
                if old["tenants"].get(t) != new["tenants"].get(t)]
    return changed


class QuotaGate:
    """Per-tenant request quotas over sliding windows (the `limits` library's maths): the
    previous window's count, weighted by how much of it still overlaps, smooths the edge.
    Constant time per request, where a moving window keeps (and shifts) one timestamp per
    request: with a quota of 100,000 a minute that showed in the profile. The asyncio
    storage expires keys on the event loop, not with a timer thread fighting it for the GIL.
    Counts are per process: with N API processes a tenant's effective quota is N times."""

    def __init__(self) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    async def take(self, tenant: str, quota: Quota) -> None:
        # Each limit counts under its own name: `limits` keys a count by amount and window,
        # so a burst equal to a one-second quota would otherwise share (and double) it.
        limits = (("burst", RateLimitItemPerSecond(quota.burst, 1)),
                  ("sustained", RateLimitItemPerSecond(quota.requests, quota.per_seconds)))
        for name, item in limits:
            if not await self._limiter.test(item, name, tenant):
                reset = (await self._limiter.get_window_stats(item, name, tenant)).reset_time
                raise QuotaExceeded(f"tenant {tenant} is over its PSI quota",
                                    retryAfterSeconds=max(1, math.ceil(reset - time.time())))
        for name, item in limits:
            await self._limiter.hit(item, name, tenant)




class ControlsStore(Protocol):
    """Where the controls document lives (`graph.controls.ControlsRepository`)."""

    async def current(self, fresh: bool = False) -> tuple[PilotControls, int]: ...

    async def change(
        self,
        edit: Callable[[PilotControls], PilotControls],
        audit: Callable[[PilotControls, PilotControls], list[AuditEvent]],
    ) -> tuple[PilotControls, PilotControls]: ...


class ControlsService:
    """Operators' changes to the controls, each audited with what changed; and the tenants'
    weights, which the view of the load learns from them."""

    def __init__(self, store: ControlsStore, load: LoadState,
                 cancel_for_party: Callable[[str], Any]) -> None:
        self._store = store
        self._load = load
        # an opted-out party's pending jobs are cancelled with the change
        self._cancel_for_party = cancel_for_party

    async def change(self, caller: Caller, edit: Callable[[PilotControls], PilotControls],
                     subject: str) -> PilotControls:
        if not caller.crosses_tenants:
            raise Forbidden("only operators change pilot controls")

        def audit(before: PilotControls, after: PilotControls) -> list[AuditEvent]:
            return [audit_event(tenant=caller.tenant, actor=caller.token_id,
                                action="controls.change", subject=subject, outcome="changed",
                                changed=diff(before, after))]

        _, after = await self._store.change(edit, audit)
        return after

    async def set_opt_out(self, caller: Caller, party: str, opted_out: bool) -> PilotControls:
        check_name(party, "party")
        def edit(c: PilotControls) -> PilotControls:
            parties = set(c.opted_out) | {party} if opted_out else set(c.opted_out) - {party}
            return replace(c, opted_out=frozenset(parties))

        after = await self.change(caller, edit, f"optOut:{party}")
        if opted_out:
            await self._cancel_for_party(party)
        return after

    async def weights(self, tenants: Iterable[str]) -> dict[str, float]:
        """The tenants' weights in the pilot controls. The view of the load learns them
        too, and those of every tenant with demand lately (one only shed has nothing
        queued): its Gini measures service against the weighted fair shares."""
        controls, _ = await self._store.current()
        weights = {tenant: controls.for_tenant(tenant).weight
                   for tenant in set(tenants) | self._load.demanding()}
        self._load.weights.update(weights)
        return weights
