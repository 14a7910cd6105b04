"""What tests share, besides the fixtures in conftest.py: waiting, ports, records written
straight to the graph as another process or version would have, and fakes. Test modules
import from here, never from one another."""

import asyncio
import inspect
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from strawberry import relay

from bench.common import healthy  # noqa: F401  (the suite waits for services as the benches do)
from trustfabric.domain.audit import iso, now_iso
from trustfabric.domain.auth import Caller, Role
from trustfabric.domain.psi.records import NewJob
from trustfabric.domain.webhooks import Delivery, DueDelivery, Endpoint, WebhookDispatcher
from trustfabric.graph.cypher import Cypher

ROOT = Path(__file__).resolve().parent.parent

OPERATOR = Caller(token_id="test-operator", tenant="ops", role=Role.OPERATOR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _described(condition: Callable[[], object]) -> str:
    try:
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return repr(condition)


async def until(condition: Callable[[], object], seconds: float = 15.0, *,
                what: str | None = None) -> None:
    """Waits, reading every 50 ms, until `condition()` holds; raises AssertionError naming
    `what` it waited for (else the condition's source) when `seconds` are up."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what or _described(condition)}")
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


def selectors(shared: int, own: int) -> list[str]:
    """`shared` selectors the partner holds (even numbers) and `own` it does not (odd)."""
    return ([f"customer-{n}@example.com" for n in range(0, 2 * shared, 2)]
            + [f"customer-{n}@example.com" for n in range(1, 2 * own, 2)])


def anomaly_id(tenant: str, repo: int = 0, commit: int = 0, stage: int = 0) -> str:
    """The global id of one of the demo data set's anomalies."""
    return str(relay.GlobalID("Anomaly", f"{tenant}:{tenant}-anomaly-{repo}-{commit}-{stage}"))


# -- records written straight to the graph ------------------------------------------------

def raw_job(tenant: str, key: str, **props: Any) -> NewJob:
    """A PSI job written straight to the graph, as another process or version would have;
    `props` override the placeholders."""
    return NewJob(
        {"id": f"psi_{key}_{tenant}", "tenant": tenant, "partner": "p", "datasetId": "p/d",
         "datasetVersion": 1, "datasetHash": "sha256:x", "mode": "PSI", "requestSize": 16,
         "requestCommitment": "sha256:y", "serverKeyId": "k", "createdAt": now_iso(),
         "status": "QUEUED", **props},
        f"{tenant}:{key}", {"id": key, "at": "a", "tenant": tenant, "actor": "t",
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


# A webhook endpoint's signing secret as stored, read and written straight (an earlier
# version stored it in clear).
STORED_SECRET = Cypher("test.stored_secret",
                       "MATCH (w:WebhookEndpoint {id: $id}) RETURN w.secret AS secret")
STORE_SECRET = Cypher("test.store_secret",
                      "MATCH (w:WebhookEndpoint {id: $id}) SET w.secret = $secret")


RAW_JOB_EVENT = Cypher("test.raw_job_event", """
    CREATE (:JobEvent {id: $id, at: $at, tenant: $tenant, jobId: $jobId, status: 'DONE'})""")


RAW_AUDIT_EVENT = Cypher("test.raw_audit_event", """
    CREATE (a:AuditEvent) SET a = $event""")


async def raw_audit_event(services: Any, event: dict[str, Any], *, tenant_key: bool) -> str:
    """An audit event as versions before 0018 wrote it, a node of its own under its own key
    (and before 0007, without the tenant's): its key."""
    key = f"{event['at']}|{event['id']}"
    node = event | {"key": key} | ({"tenantKey": f"{event['tenant']}|{key}"} if tenant_key else {})
    await services.executor.write(RAW_AUDIT_EVENT, event=node)
    return key


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

    async def drop(self, services: Any) -> None:
        await services.executor.write(DROP_EVENT_BATCHES_FROM, **{"from": self.at(-60)})


async def raw_event_batches(services: Any, tenant: str, ats: list[str],
                            status: str = "RUNNING") -> list[str]:
    """One batch of one event a time, committed now; the events' ids."""
    events = [{"at": at, "id": secrets.token_hex(8), "tenant": tenant, "status": status,
               "jobId": f"job-{secrets.token_hex(4)}"} for at in ats]
    await services.executor.write(RAW_EVENT_BATCHES, events=events)
    return [event["id"] for event in events]


async def raw_job_event(services: Any, tenant: str, job_id: str, at: str) -> str:
    """A job event as versions before 0010 wrote it: a node of its own."""
    event_id = f"{job_id}:legacy"
    await services.executor.write(RAW_JOB_EVENT, id=event_id, at=at, tenant=tenant,
                                  jobId=job_id)
    return event_id


async def raw_delivery(services: Any, endpoint: Endpoint, at: str, *,
                       due: bool = False, status: str = "PENDING") -> str:
    delivery_id = f"{endpoint.tenant}-{endpoint.id}"
    await services.executor.write(RAW_DELIVERY, id=delivery_id, endpointId=endpoint.id,
                                  tenant=endpoint.tenant, at=at, due=due, status=status)
    return delivery_id


async def outbox(services: Any, since: str, tenants: list[str] | None = None) -> list[Any]:
    """Every job event of the batches written after `since`, page after page: other tests
    and the worker write batches too, and a page holds about 100."""
    events, after = [], since
    while True:
        page = await services.repos.job_events.events_after(after, tenants=tenants)
        events += page.events
        if page.until is None:
            return events
        after = page.until


async def done_events(services: Any, job_id: str) -> int:
    """How many DONE events the job's outbox holds."""
    job = await services.repos.jobs.get(job_id, None)
    return sum(1 for e in await outbox(services, job.created_at)
               if e.job_id == job_id and e.status == "DONE")


# -- webhooks: receivers and a dispatcher without a database ------------------------------

async def serve(handle: Callable[[web.Request], Awaitable[web.Response]]
                ) -> tuple[web.AppRunner, str]:
    """An HTTP receiver on loopback, answering POSTs to /hook: its runner and URL."""
    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/hook"


class OneDelivery:
    """A repository with one delivery due, to the given URL; records what became of it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.outcomes: list[tuple[str, int]] = []

    async def claim_due(self, lease_until: str, limit: int, busy: object = ()
                        ) -> list[DueDelivery]:
        delivery = Delivery(id="d1", endpoint_id="wh_x", event_id="e1", tenant="t",
                            job_id="j", job_status="DONE", event_at=now_iso(),
                            status="PENDING", attempts=0)
        return [DueDelivery(delivery, self.url, "whsec_x", True)]

    async def retry_later(self, delivery_id: str, attempts: int, at: str, error: str) -> None:
        self.outcomes.append(("RETRY", attempts))

    async def settle(self, delivery_id: str, status: str, attempts: int,
                     error: str | None) -> None:
        self.outcomes.append((status, attempts))


def dispatcher_of(repo: object, timeout_s: float = 1.0,
                  allow_private: bool = False) -> WebhookDispatcher:
    """A dispatcher as a test runs it: three attempts, quick retries and rounds."""
    return WebhookDispatcher(repo, max_attempts=3, backoff_base_s=0.05,  # type: ignore[arg-type]
                             timeout_s=timeout_s, interval_s=0.1, allow_private=allow_private)


# -- the fairness alerts and dashboard ----------------------------------------------------

RULES = ROOT / "ops" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "psi-fairness.json"


def dashboard_queries() -> list[str]:
    """The dashboard's queries as Prometheus reads them (Grafana fills in the rate window
    from the scrape interval)."""
    return [target["expr"].replace("$__rate_interval", "1m")
            for panel in json.loads(DASHBOARD.read_text())["panels"]
            for target in panel["targets"]]


@asynccontextmanager
async def subscription(base_url: str, token: str, query: str
                       ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A graphql-ws (graphql-transport-ws) socket to the API, signed in with `token`, with
    `query` subscribed as id "1": its frames are the test's to read."""
    async with aiohttp.ClientSession() as session, session.ws_connect(
        base_url.replace("http", "ws", 1) + "/graphql", protocols=["graphql-transport-ws"],
    ) as ws:
        await ws.send_json({"type": "connection_init",
                            "payload": {"Authorization": f"Bearer {token}"}})
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        yield ws
