"""One real embedded ArcadeDB (over Bolt) and one real uvicorn server for the whole run.

Tests isolate by tenant: each gets fresh tenant names, which is also what the product
promises its tenants.
"""

import asyncio
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from trustfabric.app import create_app
from trustfabric.domain.audit import iso, now_iso
from trustfabric.domain.auth import Caller, Role
from trustfabric.domain.provenance.ingest import plan_batch
from trustfabric.domain.psi.records import NewJob
from trustfabric.graph.cypher import Cypher
from trustfabric.graph.embedded import EmbeddedServer
from trustfabric.migrations import migrate
from trustfabric.runtime.demo import demo_batch
from trustfabric.runtime.services import Services
from trustfabric.settings import Settings
from trustfabric.web.serving import HttpProtocol


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    # a page cache set apart from the heap, as a sized deployment runs it
    server = EmbeddedServer(tmp_path_factory.mktemp("graph"), "trustfabric", free_port(),
                            free_port(), heap="1g", page_cache_mb=384)
    with server:
        yield server


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


@pytest.fixture(scope="session")
async def base_url(settings: Settings, services: Services, worker: WorkerControl
                   ) -> AsyncIterator[str]:
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(),
                            log_level="warning", lifespan="on", http=HttpProtocol)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{config.port}"
    server.should_exit = True
    await task


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


def raw_job(tenant: str, key: str, **props: Any) -> NewJob:
    """A PSI job written straight to the graph, as another process or version would have;
    `props` override the placeholders."""
    return NewJob(
        {"id": f"psi_{key}_{tenant}", "tenant": tenant, "partner": "p", "datasetId": "p/d",
         "datasetVersion": 1, "datasetHash": "sha256:x", "mode": "PSI", "requestSize": 16,
         "requestCommitment": "sha256:y", "serverKeyId": "k", "createdAt": now_iso(),
         "status": "QUEUED", **props},
        f"{tenant}:{key}", {"id": key, "key": key, "at": "a", "tenant": tenant, "actor": "t",
                            "action": "t", "subject": "t", "outcome": "t", "details": "{}"})


# A webhook delivery written straight to the graph: as the previous version left a pending
# one (no due entry), as a race with deactivating its endpoint can leave one (due), or
# settled long ago.
RAW_DELIVERY = Cypher("test.raw_delivery", """
    CREATE (d:WebhookDelivery {id: $id, endpointId: $endpointId, tenant: $tenant,
                               eventId: $id, jobId: 'j', jobStatus: 'DONE', eventAt: $at,
                               status: $status, attempts: 0, nextAttemptAt: $at})
    FOREACH (_ IN CASE WHEN $due THEN [1] ELSE [] END |
      CREATE (:WebhookDue {deliveryId: $id, endpointId: $endpointId, eventAt: $at,
                           nextAttemptAt: $at}))
    RETURN d.id AS id""")


RAW_JOB_EVENT = Cypher("test.raw_job_event", """
    CREATE (:JobEvent {id: $id, at: $at, tenant: $tenant, jobId: $jobId, status: 'DONE'})""")


# Batches of job events as another process writes them: one event each, at given times.
RAW_EVENT_BATCHES = Cypher("test.raw_event_batches", """
    UNWIND $events AS e
    CREATE (:JobEventBatch {at: e.at, origin: 'another-process', ids: [e.id], ats: [e.at],
                            tenants: [e.tenant], jobIds: [e.jobId], statuses: [e.status]})
    RETURN count(*) AS written""")
DROP_EVENT_BATCHES_FROM = Cypher("test.drop_event_batches_from", """
    MATCH (b:JobEventBatch) WHERE b.at >= $from DELETE b RETURN count(*) AS dropped""")


class Timeline:
    """Times hours ahead, where no event but a test's own falls."""

    def __init__(self, hours: int) -> None:
        self.base = datetime.now(UTC) + timedelta(hours=hours)

    def at(self, seconds: float) -> str:
        return iso(self.base + timedelta(seconds=seconds))

    def every(self, step: float, start: float, count: int) -> list[str]:
        return [self.at(start + i * step) for i in range(count)]

    async def drop(self, services: Services) -> None:
        await services.executor.write(DROP_EVENT_BATCHES_FROM, **{"from": self.at(-60)})


async def raw_event_batches(services: Services, tenant: str, ats: list[str],
                            status: str = "RUNNING") -> list[str]:
    """One batch of one event a time, committed now; the events' ids."""
    events = [{"at": at, "id": secrets.token_hex(8), "tenant": tenant, "status": status,
               "jobId": f"job-{secrets.token_hex(4)}"} for at in ats]
    await services.executor.write(RAW_EVENT_BATCHES, events=events)
    return [event["id"] for event in events]


async def raw_job_event(services: Services, tenant: str, job_id: str, at: str) -> str:
    """A job event as versions before 0010 wrote it: a node of its own."""
    event_id = f"{job_id}:legacy"
    await services.executor.write(RAW_JOB_EVENT, id=event_id, at=at, tenant=tenant,
                                  jobId=job_id)
    return event_id


async def raw_delivery(services: Services, endpoint: dict[str, Any], at: str, *,
                       due: bool = False, status: str = "PENDING") -> str:
    delivery_id = f"{endpoint['tenant']}-{endpoint['id']}"
    await services.executor.write(RAW_DELIVERY, id=delivery_id, endpointId=endpoint["id"],
                                  tenant=endpoint["tenant"], at=at, due=due, status=status)
    return delivery_id


async def until(condition, seconds: float = 15.0) -> None:
    """Waits, reading every 50 ms, until `condition()` holds or time is up."""
    for _ in range(int(seconds * 20)):
        if condition():
            return
        await asyncio.sleep(0.05)


async def polled(fetch, done, seconds: float = 10.0):
    """What `fetch()` returns, read every 50 ms until `done` holds for it or time is up."""
    for _ in range(int(seconds * 20)):
        if done(value := await fetch()):
            break
        await asyncio.sleep(0.05)
    return value


def codes(result: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in result.get("errors") or []]


@pytest.fixture
async def demo_tenant(services: Services, tenant: str) -> str:
    """A tenant holding the demo data set (2 repos x 6 commits, jobs, anomalies)."""
    await services.repos.ingest.apply(plan_batch(demo_batch(tenant), tenant, 10_000))
    return tenant


OPERATOR = Caller(token_id="test-operator", tenant="ops", role=Role.OPERATOR)


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
