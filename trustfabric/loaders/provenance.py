"""Provenance nodes by key, and their neighbours by relation, batched per tick."""

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from trustfabric.domain.auth import Caller
from trustfabric.domain.provenance.model import Entity
from trustfabric.graph.provenance import ProvenanceRepository


class ProvenanceLoaders:
    def __init__(self, repo: ProvenanceRepository, caller: Caller) -> None:
        self._repo = repo
        scope = caller.read_scope

        async def load_entities(keys: Sequence[str]) -> list[Entity | None]:
            return await repo.get_by_keys(keys, scope)

        self.entities: DataLoader[str, Entity | None] = DataLoader(load_fn=load_entities)
        self._related: dict[str, DataLoader[str, list[Entity]]] = {}

    def related(self, relation: str) -> DataLoader[str, list[Entity]]:
        """One loader per relation (`Job.image` …), batching every key asked in a tick."""
        if relation not in self._related:
            repo = self._repo

            async def load(keys: Sequence[str]) -> list[list[Entity]]:
                return await repo.related(relation, keys)

            self._related[relation] = DataLoader(load_fn=load)
        return self._related[relation]
