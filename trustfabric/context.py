"""The typed per-request context: who is calling, the repositories, fresh DataLoaders."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader

from trustfabric.domain.auth import Caller, bearer_secret
from trustfabric.errors import Unauthenticated
from trustfabric.graph.ingest import IngestRepository
from trustfabric.graph.lineage import LineageRepository
from trustfabric.graph.model import Entity
from trustfabric.graph.provenance import ProvenanceRepository
from trustfabric.graph.tokens import TokenRepository
from trustfabric.settings import Settings

if TYPE_CHECKING:
    from trustfabric.domain.events.bus import EventBus
    from trustfabric.domain.psi.bundles import SigningKey
    from trustfabric.domain.psi.requests import PsiService
    from trustfabric.graph.webhooks import WebhookRepository


@dataclass(frozen=True)
class Repositories:
    tokens: TokenRepository
    provenance: ProvenanceRepository
    lineage: LineageRepository
    ingest: IngestRepository


class Loaders:
    """Per request, never shared: a loader's cache is scoped to one caller's tenant."""

    def __init__(self, repos: Repositories, caller: Caller) -> None:
        self._repos = repos
        scope = caller.read_scope

        async def load_entities(keys: Sequence[str]) -> list[Entity | None]:
            return await repos.provenance.get_by_keys(keys, scope)

        self.entities: DataLoader[str, Entity | None] = DataLoader(load_fn=load_entities)
        self._related: dict[str, DataLoader[str, list[Entity]]] = {}

    def related(self, relation: str) -> DataLoader[str, list[Entity]]:
        """One loader per relation (`Job.image` …), batching every key asked in a tick."""
        if relation not in self._related:
            repo = self._repos.provenance

            async def load(keys: Sequence[str]) -> list[list[Entity]]:
                return await repo.related(relation, keys)

            self._related[relation] = DataLoader(load_fn=load)
        return self._related[relation]


@dataclass
class Context:
    request: HTTPConnection
    response: Any
    settings: Settings
    repos: Repositories
    psi: "PsiService"
    signing: "SigningKey"
    events: "EventBus"
    webhooks: "WebhookRepository"
    # graphql-ws clients send their token in the connection_init payload
    connection_params: dict[str, Any] | None = None
    _caller: Caller | None = None
    _loaders: Loaders | None = field(default=None, repr=False)

    async def authenticate(self) -> Caller:
        if self._caller is None:
            params = self.connection_params or {}
            header = self.request.headers.get("authorization") or str(
                params.get("Authorization") or params.get("authorization") or "")
            self._caller = await self.repos.tokens.verify(bearer_secret(header))
        return self._caller

    @property
    def caller(self) -> Caller:
        if self._caller is None:
            raise Unauthenticated("not authenticated")
        return self._caller

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.repos, self.caller)
        return self._loaders
