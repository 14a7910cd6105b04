"""Coaching hints of the policy versions a request's promotions name, found once per tick."""

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from trustfabric.domain.auth import Caller
from trustfabric.domain.policy.hints import Hint
from trustfabric.domain.policy.service import PolicyService


class PolicyLoaders:
    def __init__(self, policy: PolicyService, caller: Caller) -> None:
        async def load_hints(version_keys: Sequence[str]) -> list[list[Hint]]:
            return await policy.hints_of_versions(caller, version_keys)

        self.hints: DataLoader[str, list[Hint]] = DataLoader(load_fn=load_hints)
