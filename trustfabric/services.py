"""Long-lived resources of one process: the graph connection and the repositories."""

from dataclasses import dataclass

from trustfabric.context import Repositories
from trustfabric.errors import AppError
from trustfabric.graph.executor import GraphExecutor
from trustfabric.graph.ingest import IngestRepository
from trustfabric.graph.lineage import LineageRepository
from trustfabric.graph.provenance import ProvenanceRepository
from trustfabric.graph.tokens import TokenRepository
from trustfabric.settings import Settings


@dataclass
class Services:
    settings: Settings
    executor: GraphExecutor
    repos: Repositories

    @classmethod
    def open(cls, settings: Settings) -> "Services":
        if settings.neo4j_uri is None or settings.neo4j_password is None:
            raise AppError("TF_NEO4J_URI and TF_NEO4J_PASSWORD must be set (`trustfabric serve` "
                           "sets them for the embedded database)")
        executor = GraphExecutor.connect(
            settings.neo4j_uri, settings.neo4j_user,
            settings.neo4j_password.get_secret_value(), settings.neo4j_database,
            connect_timeout_s=settings.neo4j_connect_timeout_s,
            retry_time_s=settings.neo4j_retry_time_s,
            pool_size=settings.neo4j_pool_size,
        )
        repos = Repositories(
            tokens=TokenRepository(executor, settings.token_cache_ttl_s),
            provenance=ProvenanceRepository(executor),
            lineage=LineageRepository(executor),
            ingest=IngestRepository(executor),
        )
        return cls(settings, executor, repos)

    async def close(self) -> None:
        await self.executor.close()
