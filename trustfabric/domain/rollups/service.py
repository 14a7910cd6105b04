"""Rollups through their life: generated once per tenant and week (on schedule or on
demand), read by the tenant's people (tracked), their action items marked done."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from trustfabric.domain.audit import AuditEvent, audit_event, now_iso
from trustfabric.domain.auth import Caller
from trustfabric.domain.provenance.model import entity_key
from trustfabric.domain.rollups.digest import (
    WeekFigures,
    body,
    content_hash,
    week_of,
    week_range,
)
from trustfabric.errors import BadUserInput, Conflict, Forbidden, NotFound


@dataclass(frozen=True)
class Rollup:
    key: str
    tenant: str
    week: str
    hash: str
    content: dict[str, Any]
    generated_at: str
    done: frozenset[str]  # action items marked done
    readers: int  # distinct tokens that opened it


class RollupStore(Protocol):
    async def figures(self, tenant: str, start: str, end: str) -> WeekFigures: ...

    async def rollup(self, key: str, tenant: str | None) -> Rollup | None: ...

    async def latest_before(self, tenant: str, week: str) -> Rollup | None: ...

    async def create(self, rollup: Rollup, audit: AuditEvent) -> Rollup | None: ...

    async def mark_read(self, key: str, reader: str, at: str) -> bool: ...

    async def mark_done(self, key: str, item: str) -> bool: ...

    async def tenants(self) -> list[str]: ...

    async def readership(self, week: str) -> dict[str, int]: ...


class RollupService:
    def __init__(self, store: RollupStore) -> None:
        self._store = store

    async def generate(self, tenant: str, week: str, actor: str = "rollup-schedule") -> Rollup:
        """The tenant's digest of `week`, made once: later calls return the same one."""
        key = entity_key("Rollup", tenant, week)
        existing = await self._store.rollup(key, tenant)
        if existing is not None:
            return existing
        start, end = week_range(week)
        if start > now_iso():
            raise BadUserInput(f"week {week} has not started")
        last = await self._store.latest_before(tenant, week)
        carried = [item for item in last.content["actionItems"]
                   if item["id"] not in last.done] if last else []
        content = body(tenant, week, await self._store.figures(tenant, start, end), carried)
        rollup = Rollup(key, tenant, week, content_hash(content), content, now_iso(),
                        frozenset(), 0)
        created = await self._store.create(rollup, audit_event(
            tenant=tenant, actor=actor, action="rollup.generate", subject=week,
            outcome="created"))
        if created is None:  # made concurrently: the one made first stands
            found = await self._store.rollup(key, tenant)
            if found is None:
                raise Conflict(f"rollup {week} was not recorded")
            return found
        return created

    async def on_demand(self, caller: Caller, tenant: str | None, week: str) -> Rollup:
        caller.require_write()
        return await self.generate(caller.tenant_for(tenant), week, caller.token_id)

    async def generate_due(self) -> int:
        """The week that just ended, for every tenant that has none yet."""
        week = week_of(datetime.now(UTC) - timedelta(days=7))
        made = 0
        for tenant in await self._store.tenants():
            if await self._store.rollup(entity_key("Rollup", tenant, week), tenant) is None:
                await self.generate(tenant, week)
                made += 1
        return made

    async def read(self, caller: Caller, tenant: str | None, week: str) -> Rollup:
        """The digest, as `caller` opens it: counted when one of the tenant's own people
        does (an operator looking in is not its owner reading it)."""
        owner = caller.tenant_for(tenant)
        week_range(week)
        key = entity_key("Rollup", owner, week)
        found = await self._store.rollup(key, caller.read_scope)
        if found is None:
            raise NotFound(f"rollup of {owner} for {week}")
        if caller.tenant == owner:
            await self._store.mark_read(key, caller.token_id, now_iso())
        return found

    async def complete(self, caller: Caller, tenant: str | None, week: str,
                       item: str) -> Rollup:
        caller.require_write()
        owner = caller.tenant_for(tenant)
        key = entity_key("Rollup", owner, week)
        found = await self._store.rollup(key, caller.read_scope)
        if found is None:
            raise NotFound(f"rollup of {owner} for {week}")
        if item not in {i["id"] for i in found.content["actionItems"]}:
            raise NotFound(f"action item {item}")
        await self._store.mark_done(key, item)
        again = await self._store.rollup(key, owner)
        assert again is not None  # just found, never deleted
        return again

    async def readership(self, caller: Caller, week: str) -> dict[str, bool]:
        """Operators: for each tenant with a digest of `week`, whether anyone read it."""
        if not caller.crosses_tenants:
            raise Forbidden("readership across tenants is for operators")
        week_range(week)
        return {tenant: readers > 0 for tenant, readers in
                (await self._store.readership(week)).items()}
