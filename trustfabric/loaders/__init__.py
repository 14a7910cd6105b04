"""DataLoaders, one module per domain, built fresh for each request (`Loaders`): a loader's
cache is scoped to one caller's tenant, so a loader shared across requests would leak."""

from trustfabric.domain.auth import Caller
from trustfabric.domain.policy.service import PolicyService
from trustfabric.domain.psi.results import PsiResults
from trustfabric.graph.provenance import ProvenanceRepository
from trustfabric.loaders.policy import PolicyLoaders
from trustfabric.loaders.provenance import ProvenanceLoaders
from trustfabric.loaders.psi import PsiLoaders


class Loaders:
    """Every DataLoader a request may use, per domain."""

    def __init__(self, provenance: ProvenanceRepository, policy: PolicyService,
                 results: PsiResults, caller: Caller) -> None:
        self.provenance = ProvenanceLoaders(provenance, caller)
        self.policy = PolicyLoaders(policy, caller)
        self.psi = PsiLoaders(results)
