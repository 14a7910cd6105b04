"""The typed per-request context: who is calling, the repositories, fresh DataLoaders."""

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from trustfabric.domain.auth import Caller, bearer_secret
from trustfabric.domain.controls import ControlsService
from trustfabric.domain.events.bus import EventBus
from trustfabric.domain.policy.proposals import DriftProposals
from trustfabric.domain.policy.service import PolicyService
from trustfabric.domain.psi.bundles import SigningKey
from trustfabric.domain.psi.datasets import DatasetService, SetupCache
from trustfabric.domain.psi.requests import PsiRequests
from trustfabric.domain.psi.results import PsiResults
from trustfabric.domain.rollups.service import RollupService
from trustfabric.domain.suppressions.service import SuppressionService
from trustfabric.errors import Unauthenticated
from trustfabric.graph.audit import AuditRepository
from trustfabric.graph.controls import ControlsRepository
from trustfabric.graph.datasets import DatasetRepository
from trustfabric.graph.ingest import IngestRepository
from trustfabric.graph.job_events import JobEventRepository
from trustfabric.graph.lineage import LineageRepository
from trustfabric.graph.policy import PolicyRepository
from trustfabric.graph.provenance import ProvenanceRepository
from trustfabric.graph.psi import PsiJobRepository
from trustfabric.graph.rollups import RollupRepository
from trustfabric.graph.suppressions import SuppressionRepository
from trustfabric.graph.tokens import TokenRepository
from trustfabric.graph.webhooks import WebhookRepository
from trustfabric.loaders import Loaders
from trustfabric.settings import Settings


@dataclass(frozen=True)
class Repositories:
    tokens: TokenRepository
    provenance: ProvenanceRepository
    lineage: LineageRepository
    ingest: IngestRepository
    datasets: DatasetRepository
    jobs: PsiJobRepository
    job_events: JobEventRepository
    audit: AuditRepository
    controls: ControlsRepository
    webhooks: WebhookRepository
    policy: PolicyRepository
    suppressions: SuppressionRepository
    rollups: RollupRepository


@dataclass
class Context:
    request: HTTPConnection
    response: Any
    settings: Settings
    repos: Repositories
    psi: PsiRequests
    datasets: DatasetService
    setups: SetupCache
    controls: ControlsService
    policy: PolicyService
    proposals: DriftProposals
    suppressions: SuppressionService
    rollups: RollupService
    results: PsiResults
    signing: SigningKey
    events: EventBus
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

    async def reauthenticate(self) -> Caller:
        """The caller looked up again (through the tokens' short cache): a subscription
        outlives its request, and its token may have been revoked since."""
        self._caller = None
        return await self.authenticate()

    @property
    def caller(self) -> Caller:
        if self._caller is None:
            raise Unauthenticated("not authenticated")
        return self._caller

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders(self.repos.provenance, self.policy, self.results,
                                    self.caller)
        return self._loaders
