"""One real embedded ArcadeDB (over Bolt) and one real uvicorn server for the whole run.

Tests isolate by tenant: each gets fresh tenant names, which is also what the product
promises its tenants.
"""

import asyncio
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.helpers import OPERATOR, free_port
from trustfabric.app import create_app
from trustfabric.client.psi import PsiClient
from trustfabric.domain.auth import Role
from trustfabric.domain.provenance.ingest import plan_batch
from trustfabric.graph.embedded import EmbeddedServer
from trustfabric.migrations import migrate
from trustfabric.runtime.demo import demo_batch
from trustfabric.runtime.services import Services
from trustfabric.settings import Settings
from trustfabric.web.serving import HttpProtocol

TESTS = Path(__file__).resolve().parent
LAYERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test is marked with its layer, the directory it is in: `pytest -m unit` runs
    the pure tests alone, and starts no database (no unit test asks for its fixtures)."""
    for item in items:
        layer = item.path.relative_to(TESTS).parts[0]
        if layer in LAYERS:
            item.add_marker(layer)

@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
             ) -> Iterator[EmbeddedServer]:
    # a page cache set apart from the heap, as a sized deployment runs it
    server = EmbeddedServer(tmp_path_factory.mktemp("graph"), "trustfabric", free_port(),
                            free_port(), heap="1g", page_cache_mb=384)
    leak = driver_socket_leak(server.bolt_port)
    # the ini line holds for the tests that follow; the running test's filters are set
    warnings.filterwarnings("ignore", leak, pytest.PytestUnraisableExceptionWarning)
    pytestconfig.addinivalue_line(
        "filterwarnings", f"ignore:{leak}:pytest.PytestUnraisableExceptionWarning")
    with server:
        yield server


def driver_socket_leak(bolt_port: int) -> str:
    """The warning the one leak the suite does not own raises. When a statement's deadline
    (`TF_NEO4J_QUERY_TIMEOUT_S`) cancels the driver while it opens a connection, neo4j 6.4
    leaves that socket to the garbage collector (its cleanup catches `Exception`, and
    cancellation is not one): on a host the browser tests starve, the collector then reports
    it in whichever test runs next. Only sockets to this database's Bolt port are let go."""
    return rf"Exception ignored in. <socket.socket .*raddr=\('127.0.0.1', {bolt_port}\)>"


@pytest.fixture(scope="session")
def settings(embedded: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        neo4j_uri=embedded.uri,
        neo4j_password=embedded.password,
        data_dir=Path(tmp_path_factory.mktemp("data")),
        token_cache_ttl_s=0.5,
        controls_cache_s=0.0,
        # the proof worker runs as the `worker` fixture, which crash tests stop and restart
        psi_worker_in_process=False,
        psi_lease_s=2.0,
        # two cores running the suite's crypto and database make the loop late now and then;
        # that must not shed the tests' requests (shedding by lag has its own test)
        psi_max_loop_lag_s=10.0,
        webhook_allow_private=True,  # the receivers are on loopback
        webhook_backoff_base_s=0.05,
        webhook_interval_s=0.1,
        webhook_max_attempts=3,
        # long enough for a test's next decision to fall in it, short enough to wait out
        policy_soak_s=5.0,
        _env_file=None,
    )


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[Services]:
    services = Services.open(settings)
    await migrate(services.executor)
    await services.seed_controls()
    yield services
    await services.close()


class WorkerControl:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.worker = services.worker()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.worker.run(self.services.events.wake))

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None


@pytest.fixture(scope="session")
async def worker(services: Services) -> AsyncIterator[WorkerControl]:
    control = WorkerControl(services)
    control.start()
    yield control
    await control.stop()
    control.worker.close()


@dataclass(frozen=True)
class Api:
    """The API as the suite serves it: its address, and the services its lifespan opened
    (its own, apart from the `services` fixture's: its event bus, its view of the load)."""

    url: str
    services: Services


@pytest.fixture(scope="session")
async def api(settings: Settings, services: Services, worker: WorkerControl
              ) -> AsyncIterator[Api]:
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(),
                            log_level="warning", lifespan="on", http=HttpProtocol)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    yield Api(f"http://127.0.0.1:{config.port}", server.lifespan.state["services"])
    server.should_exit = True
    await task


@pytest.fixture(scope="session")
def base_url(api: Api) -> str:
    return api.url


@pytest.fixture(scope="session")
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture
def tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


TokenFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def make_token(services: Services) -> TokenFactory:
    async def make(tenant: str, role: Role = Role.MEMBER) -> str:
        _, secret = await services.repos.tokens.create(tenant, role, "test")
        return secret

    return make


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(self, query: str, token: str | None = None, **variables: Any) -> dict:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post("/graphql", json={"query": query, "variables": variables},
                                        headers=headers)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture
async def demo_tenant(services: Services, tenant: str) -> str:
    """A tenant holding the demo data set (2 repos x 6 commits, jobs, anomalies)."""
    await services.repos.ingest.apply(plan_batch(demo_batch(tenant), tenant, 10_000),
                                      await services.suppressions.paging(tenant))
    return tenant


@pytest.fixture
async def psi_pair(services: Services, tenant: str) -> dict[str, Any]:
    """A partner with a 1,000-item dataset, and a tenant allowed PSI and PSI-CA against it."""
    partner = f"{tenant}-partner"
    items = [f"customer-{n}@example.com" for n in range(0, 2000, 2)]
    dataset = await services.datasets.register(OPERATOR, partner, "customers", items)
    await services.controls.change(
        OPERATOR,
        lambda c: c.with_tenant(tenant, psi=True, psi_ca=True, scopes=(dataset.id,)),
        f"tenant:{tenant}",
    )
    return {"tenant": tenant, "partner": partner, "dataset": dataset.id, "items": items}


@pytest.fixture
async def client(base_url: str, make_token: TokenFactory, psi_pair: dict[str, Any]
                 ) -> AsyncIterator[PsiClient]:
    """A PSI client of `psi_pair`'s tenant."""
    async with PsiClient(base_url, await make_token(psi_pair["tenant"])) as client:
        yield client
