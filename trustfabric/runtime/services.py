"""Long-lived resources of one process: the graph connection, repositories, keys, caches."""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import HTTPConnection

from trustfabric.context import Context, Repositories
from trustfabric.domain.audit import iso
from trustfabric.domain.controls import PilotControls, QuotaGate
from trustfabric.domain.events.bus import EventBus
from trustfabric.domain.fairness.load import LoadState, settle_collector
from trustfabric.domain.psi.backlog import Backlog
from trustfabric.domain.psi.bundles import SigningKey
from trustfabric.domain.psi.protocol import ServerKey
from trustfabric.domain.psi.requests import PsiService, SetupCache
from trustfabric.domain.psi.worker import ProofWorker
from trustfabric.domain.webhooks import WebhookDispatcher
from trustfabric.errors import AppError
from trustfabric.graph.audit import AuditRepository
from trustfabric.graph.controls import ControlsRepository
from trustfabric.graph.executor import ORIGIN, GraphExecutor
from trustfabric.graph.ingest import IngestRepository
from trustfabric.graph.lineage import LineageRepository
from trustfabric.graph.provenance import ProvenanceRepository
from trustfabric.graph.psi import DatasetRepository, PsiJobRepository
from trustfabric.graph.tokens import TokenRepository
from trustfabric.graph.webhooks import WebhookRepository
from trustfabric.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    executor: GraphExecutor
    repos: Repositories
    psi: PsiService
    signing: SigningKey
    events: EventBus
    webhooks: WebhookRepository

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
        keys = settings.data_dir / "keys"
        server_key = ServerKey.load_or_create(
            keys / "psi-server.key",
            settings.psi_server_key.get_secret_value() if settings.psi_server_key else None,
        )
        signing = SigningKey.load_or_create(
            keys / "bundle-signing.pem",
            settings.bundle_signing_key.get_secret_value() if settings.bundle_signing_key
            else None,
        )
        datasets, jobs = DatasetRepository(executor), PsiJobRepository(executor)
        load = LoadState(settings.psi_queue_wait_s, min_queued=settings.psi_batch_size,
                         max_loop_lag_s=settings.psi_max_loop_lag_s)
        # what other processes accept and serve is part of this one's view of the load
        events = EventBus(jobs, settings.psi_poll_interval_s * 2, observer=load.heard)
        jobs.on_events = events.publish_many
        service = PsiService(
            datasets=datasets, jobs=jobs, controls=ControlsRepository(executor, settings.controls_cache_s),
            audit=AuditRepository(executor),
            setups=SetupCache(datasets, server_key, settings.psi_false_positive_rate),
            key=server_key, quotas=QuotaGate(), max_dataset_items=settings.psi_max_dataset_items,
            wake=events.wake, queue=load, write_spacing_s=settings.psi_write_spacing_s,
        )
        return cls(settings, executor, repos, service, signing, events,
                   WebhookRepository(executor, jobs, settings.webhook_max_per_tenant))

    def context(self, request: HTTPConnection, response: Any) -> Context:
        return Context(request, response, self.settings, self.repos, self.psi, self.signing,
                       self.events, self.webhooks)

    async def seed_controls(self) -> None:
        """First start: the pilot-controls file becomes the controls document."""
        await self.psi.controls.init(PilotControls.from_yaml(self.settings.pilot_controls_file))

    def worker(self) -> ProofWorker:
        s = self.settings
        return ProofWorker(self.psi, self.signing, processes=s.psi_worker_processes,
                           batch_size=s.psi_batch_size, batch_selectors=s.psi_batch_selectors,
                           in_flight=s.psi_batches_in_flight,
                           lease_s=s.psi_lease_s, poll_s=s.psi_poll_interval_s,
                           fpr=s.psi_false_positive_rate, write_spacing_s=s.psi_write_spacing_s,
                           nice=s.psi_worker_nice)

    async def run_background(self) -> list[asyncio.Task[None]]:
        """Tasks this process runs beside requests: the event poller, setup pre-seeding,
        webhook dispatch, and the proof worker when it runs in-process."""
        s = self.settings
        dispatcher = WebhookDispatcher(
            self.webhooks, max_attempts=s.webhook_max_attempts,
            backoff_base_s=s.webhook_backoff_base_s, timeout_s=s.webhook_timeout_s,
            interval_s=s.webhook_interval_s, allow_private=s.webhook_allow_private,
        )
        tasks = [asyncio.create_task(self.events.run()), asyncio.create_task(self._preseed()),
                 asyncio.create_task(dispatcher.run()),
                 asyncio.create_task(self._retire_events()),
                 asyncio.create_task(self.psi.queue.watch_loop())]
        settle_collector()
        if self.settings.psi_worker_in_process:
            self.psi.backlog = Backlog()
            worker = self.worker()
            tasks.append(asyncio.create_task(_run_worker(worker, self.events.wake)))
        else:  # no worker here to report the queue: look at it for back-pressure
            tasks.append(asyncio.create_task(self._watch_queue()))
        return tasks

    async def _preseed(self) -> None:
        ORIGIN.set("background")
        try:
            controls, _ = await self.psi.controls.current()
            await self.psi.setups.preseed(controls.max_request_size)
        except AppError:
            log.warning("could not pre-seed dataset setups; they are built on first use")

    async def _watch_queue(self) -> None:
        ORIGIN.set("background")
        while True:
            try:
                depth = await self.psi.jobs.queue_depth()
                self.psi.queue.observe_depth(depth)
                await self.psi.weights(depth)
            except Exception:  # a stale view only delays back-pressure; keep watching
                log.exception("could not read the PSI queue depth or the tenants' weights")
            await asyncio.sleep(0.5)

    async def _retire_events(self) -> None:
        """Drops job events and webhook deliveries past their retention, once a minute."""
        ORIGIN.set("background")
        while True:
            now = datetime.now(UTC)
            before = iso(now - timedelta(seconds=self.settings.psi_event_retention_s))
            try:
                # a stalled webhook fan-out keeps the events it has still to deliver
                before = min(before, await self.webhooks.fanned_out_until() or before)
                await self.psi.jobs.drop_events(before)
                deliveries = iso(now - timedelta(seconds=self.settings.webhook_retention_s))
                while await self.webhooks.drop_settled(deliveries) > 0:
                    pass
            except Exception:  # old records only cost index space; try again later
                log.exception("could not drop old job events or webhook deliveries")
            await asyncio.sleep(60)

    async def close(self) -> None:
        await self.executor.close()


async def _run_worker(worker: ProofWorker, wake: asyncio.Event) -> None:
    try:
        await worker.run(wake)
    finally:
        await asyncio.to_thread(worker.close)
