"""Weekly rollups: thin resolvers over the rollup service."""

from trustfabric.schema.provenance import Info
from trustfabric.schema.rollups import RollupReadership, RollupType


async def rollup(info: Info, week: str, tenant: str | None = None) -> RollupType:
    return RollupType.from_rollup(await info.context.rollups.read(info.context.caller, tenant,
                                                                  week))


async def generate_rollup(info: Info, week: str, tenant: str | None = None) -> RollupType:
    return RollupType.from_rollup(await info.context.rollups.on_demand(info.context.caller,
                                                                       tenant, week))


async def complete_rollup_action(info: Info, week: str, item: str,
                                 tenant: str | None = None) -> RollupType:
    return RollupType.from_rollup(await info.context.rollups.complete(
        info.context.caller, tenant, week, item))


async def rollup_readership(info: Info, week: str) -> list[RollupReadership]:
    read = await info.context.rollups.readership(info.context.caller, week)
    return [RollupReadership(tenant=tenant, read=seen) for tenant, seen in sorted(read.items())]
