"""Weekly rollups: thin resolvers over the rollup service."""

from typing import Annotated

import strawberry

from trustfabric.schema.provenance import Info
from trustfabric.schema.rollups import RollupReadership, RollupType

Week = Annotated[str, strawberry.argument(
    description="An ISO week, e.g. 2026-W49.")]
Tenant = Annotated[str | None, strawberry.argument(
    description="Operators: whose digest (default: the caller's own tenant).")]


async def rollup(info: Info, week: Week, tenant: Tenant = None) -> RollupType:
    return RollupType.from_rollup(await info.context.rollups.read(info.context.caller, tenant,
                                                                  week))


async def generate_rollup(info: Info, week: Week, tenant: Tenant = None) -> RollupType:
    return RollupType.from_rollup(await info.context.rollups.on_demand(info.context.caller,
                                                                       tenant, week))


async def complete_rollup_action(
    info: Info, week: Week,
    item: Annotated[str, strawberry.argument(
        description="The action item's id (RollupActionItem.id).")],
    tenant: Tenant = None,
) -> RollupType:
    return RollupType.from_rollup(await info.context.rollups.complete(
        info.context.caller, tenant, week, item))


async def rollup_readership(info: Info, week: Week) -> list[RollupReadership]:
    read = await info.context.rollups.readership(info.context.caller, week)
    return [RollupReadership(tenant=tenant, read=seen) for tenant, seen in sorted(read.items())]
