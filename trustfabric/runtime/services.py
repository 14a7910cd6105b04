"""Long-lived resources of one process: the graph connection, repositories, keys, caches,
the domain services built on them, and the background work beside requests."""

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import HTTPConnection

from trustfabric.blobs import PackStore
from trustfabric.context import Context, Repositories
from trustfabric.domain.audit import iso
from trustfabric.domain.controls import ControlsService, PilotControls, QuotaGate
from trustfabric.domain.events.bus import EventBus
from trustfabric.domain.fairness.load import LAG_PROBE_S, LoadState, settle_collector
from trustfabric.domain.policy.proposals import DriftProposals
from trustfabric.domain.policy.service import PolicyService
from trustfabric.domain.psi.backlog import Backlog
from trustfabric.domain.psi.bundles import SigningKey
from trustfabric.domain.psi.datasets import DatasetService, SetupCache
from trustfabric.domain.psi.protocol import ServerKey
from trustfabric.domain.psi.requests import PsiRequests
from trustfabric.domain.psi.results import PsiResults
from trustfabric.domain.psi.worker import ProofWorker
from trustfabric.domain.rollups.service import RollupService
from trustfabric.domain.sealing import SecretBox
from trustfabric.domain.suppressions.service import Guards, SuppressionService
from trustfabric.domain.webhooks import WebhookDispatcher
from trustfabric.errors import AppError
from trustfabric.graph.audit import AuditRepository
from trustfabric.graph.controls import ControlsRepository
from trustfabric.graph.datasets import DatasetRepository
from trustfabric.graph.executor import GraphExecutor
from trustfabric.graph.ingest import IngestRepository
from trustfabric.graph.job_events import JobEventRepository, Outbox
from trustfabric.graph.lineage import LineageRepository
from trustfabric.graph.policy import PolicyRepository
from trustfabric.graph.provenance import ProvenanceRepository
from trustfabric.graph.psi import PsiJobRepository
from trustfabric.graph.rollups import RollupRepository
from trustfabric.graph.suppressions import SuppressionRepository
from trustfabric.graph.tokens import TokenRepository
from trustfabric.graph.webhooks import WebhookRepository
from trustfabric.runtime.background import Background
from trustfabric.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    executor: GraphExecutor
    repos: Repositories
    load: LoadState
    events: EventBus
    datasets: DatasetService
    setups: SetupCache
    controls: ControlsService
    psi: PsiRequests
    policy: PolicyService
    proposals: DriftProposals
    suppressions: SuppressionService
    rollups: RollupService
    results: PsiResults
    server_key: ServerKey
    signing: SigningKey
    # jobs accepted here for this process's own proof worker; None when it runs none
    backlog: Backlog | None

    @classmethod
    def open(cls, settings: Settings, *, with_worker: bool = False) -> "Services":
        """`with_worker`: this process runs a proof worker beside accepting requests, and
        hands it the jobs it accepts in memory."""
        if settings.neo4j_uri is None or settings.neo4j_password is None:
            raise AppError("TF_NEO4J_URI and TF_NEO4J_PASSWORD must be set (`trustfabric serve` "
                           "sets them for the embedded database)")
        executor = GraphExecutor.connect(
            settings.neo4j_uri, settings.neo4j_user,
            settings.neo4j_password.get_secret_value(), settings.neo4j_database,
            connect_timeout_s=settings.neo4j_connect_timeout_s,
            retry_time_s=settings.neo4j_retry_time_s,
            pool_size=settings.neo4j_pool_size,
            query_timeout_s=settings.neo4j_query_timeout_s,
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
        load = LoadState(settings.psi_queue_wait_s, min_queued=settings.psi_batch_size,
                         max_loop_lag_s=settings.psi_max_loop_lag_s,
                         objective_s=settings.psi_latency_objective_s)
        # job events this process writes carry its origin: its poller reads only others'
        origin = secrets.token_hex(8)
        job_events = JobEventRepository(executor, origin)
        # what other processes accept and serve is part of this one's view of the load
        events = EventBus(job_events, settings.psi_poll_interval_s * 2, observer=load.heard)
        jobs = PsiJobRepository(executor, origin, on_events=events.publish_many)
        # the other changes' events: written in their transactions, told here on commit
        outbox = Outbox(origin, events.publish_many)
        repos = Repositories(
            tokens=TokenRepository(executor, settings.token_cache_ttl_s),
            provenance=ProvenanceRepository(executor),
            lineage=LineageRepository(executor),
            ingest=IngestRepository(executor, outbox),
            datasets=DatasetRepository(executor),
            jobs=jobs,
            job_events=job_events,
            audit=AuditRepository(executor),
            controls=ControlsRepository(executor, settings.controls_cache_s),
            webhooks=WebhookRepository(executor, job_events, settings.webhook_max_per_tenant,
                                       SecretBox.load_or_create(keys / "webhook-secrets.key")),
            policy=PolicyRepository(executor, outbox),
            suppressions=SuppressionRepository(executor, outbox),
            rollups=RollupRepository(executor, outbox),
        )
        datasets = DatasetService(repos.datasets, settings.psi_max_dataset_items)
        setups = SetupCache(repos.datasets, server_key, settings.psi_false_positive_rate)
        controls = ControlsService(repos.controls, load, jobs.cancel_for_party)
        backlog = Backlog() if with_worker else None
        proposals = DriftProposals(repos.policy, repos.audit, settings.policy_soak_s)
        suppressions = SuppressionService(repos.suppressions, repos.audit, Guards(
            max_duration=timedelta(seconds=settings.suppression_max_duration_s),
            max_share=settings.suppression_max_share,
            dry_run_days=settings.suppression_dry_run_days,
            always_page=frozenset(settings.paging_always_page),
            dedup_window=timedelta(seconds=settings.paging_dedup_window_s),
            idle_expiry=timedelta(seconds=settings.suppression_idle_expiry_s),
            max_duration_by_tenant={
                tenant: timedelta(seconds=seconds) for tenant, seconds
                in settings.suppression_max_duration_by_tenant_s.items()}))
        policy = PolicyService(repos.policy, proposals)
        psi = PsiRequests(
            jobs=jobs, datasets=datasets, setups=setups, controls=repos.controls,
            audit=repos.audit, key=server_key, quotas=QuotaGate(), load=load,
            wake=events.wake, backlog=backlog, write_spacing_s=settings.psi_write_spacing_s,
        )
        packs = PackStore(settings.psi_results_dir or settings.data_dir / "results",
                          settings.psi_results_fsync)
        results = PsiResults(jobs, packs, settings.psi_retention_days * 86400)
        return cls(settings, executor, repos, load, events, datasets, setups, controls, psi,
                   policy, proposals, suppressions, RollupService(repos.rollups), results,
                   server_key, signing, backlog)

    def context(self, request: HTTPConnection, response: Any) -> Context:
        return Context(request, response, self.settings, self.repos, self.psi, self.datasets,
                       self.setups, self.controls, self.policy, self.proposals,
                       self.suppressions, self.rollups, self.results, self.signing,
                       self.events)

    async def seed_controls(self) -> None:
        """First start: the pilot-controls file becomes the controls document."""
        await self.repos.controls.init(
            PilotControls.from_yaml(self.settings.pilot_controls_file))

    def worker(self) -> ProofWorker:
        s = self.settings
        return ProofWorker(
            self.repos.jobs, datasets=self.repos.datasets, controls=self.repos.controls,
            weights=self.controls.weights, load=self.load, backlog=self.backlog,
            key=self.server_key, signing=self.signing, packs=self.results.packs, processes=s.psi_worker_processes,
            batch_size=s.psi_batch_size, batch_selectors=s.psi_batch_selectors,
            in_flight=s.psi_batches_in_flight, lease_s=s.psi_lease_s,
            poll_s=s.psi_poll_interval_s, fpr=s.psi_false_positive_rate,
            write_spacing_s=s.psi_write_spacing_s, nice=s.psi_worker_nice)

    def start_background(self) -> Background:
        """What this process runs beside requests: the event poller, setup pre-seeding,
        webhook dispatch, retention, the load's probes, and the proof worker when it runs
        here (else a watch of the queue, for back-pressure)."""
        s = self.settings
        background = Background()
        dispatcher = WebhookDispatcher(
            self.repos.webhooks, max_attempts=s.webhook_max_attempts,
            backoff_base_s=s.webhook_backoff_base_s, timeout_s=s.webhook_timeout_s,
            interval_s=s.webhook_interval_s, allow_private=s.webhook_allow_private,
        )
        background.every("job-events", s.psi_poll_interval_s * 2, self.events.tick)
        background.run("setup-preseed", self._preseed)
        background.every("webhooks", s.webhook_interval_s, dispatcher.round,
                         on_stop=dispatcher.close)
        background.every("retention", 60.0, self._retire_events)
        background.every("load-probe", LAG_PROBE_S, self.load.tick)
        background.every("drift-merge", 5.0, self._merge_drift)
        background.every("drift-report", 10.0, self._report_drift)
        background.every("suppression-expiry", 60.0, self._expire_suppressions)
        # hourly: the week that ended is digested within the hour, once per tenant
        background.every("weekly-rollups", 3600.0, self._weekly_rollups)
        settle_collector()
        if self.backlog is not None:
            worker = self.worker()

            async def work() -> None:
                try:
                    await worker.run(self.events.wake)
                finally:
                    await asyncio.to_thread(worker.close)

            background.run("proof-worker", work)
        else:  # no worker here to report the queue: look at it for back-pressure
            background.every("queue-watch", 0.5, self._watch_queue)
        return background

    async def _report_drift(self) -> None:
        await self.policy.report_drift()

    async def _merge_drift(self) -> None:
        for merged in await self.proposals.merge_due():
            log.info("drift proposal %s merged: %s runs its declared version", merged.id,
                     merged.environment)

    async def _expire_suppressions(self) -> None:
        for rule in await self.suppressions.expire_due():
            log.info("suppression rule %s of %s expired", rule.id, rule.tenant)

    async def _weekly_rollups(self) -> None:
        made = await self.rollups.generate_due()
        if made:
            log.info("weekly rollups: %d tenants' digests made", made)

    async def _preseed(self) -> None:
        try:
            controls, _ = await self.repos.controls.current()
            await self.setups.preseed(controls.max_request_size)
        except AppError:
            log.warning("could not pre-seed dataset setups; they are built on first use")

    async def _watch_queue(self) -> None:
        depth = await self.repos.jobs.queue_depth()
        self.load.observe_depth(depth)
        await self.controls.weights(depth)

    async def _retire_events(self) -> None:
        """Drops job events, webhook deliveries and finished jobs past their retention."""
        now = datetime.now(UTC)
        before = iso(now - timedelta(seconds=self.settings.psi_event_retention_s))
        # a stalled webhook fan-out keeps the events it has still to deliver
        before = min(before, await self.repos.webhooks.fanned_out_until() or before)
        await self.repos.job_events.drop_events(before)
        deliveries = iso(now - timedelta(seconds=self.settings.webhook_retention_s))
        while await self.repos.webhooks.drop_settled(deliveries) > 0:
            pass
        await self.results.retire()

    async def close(self) -> None:
        await self.executor.close()
