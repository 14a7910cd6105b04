"""PSI orchestration: checks a request against the pilot controls, records a durable job,
serves dataset setups from a cache, and manages datasets and controls with audit events."""

import asyncio
import base64
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from async_lru import alru_cache

from trustfabric.domain.audit import audit_event, iso, now_iso
from trustfabric.domain.auth import Caller
from trustfabric.domain.batching import GroupCommit
from trustfabric.domain.controls import PilotControls, QuotaGate, diff
from trustfabric.domain.fairness.load import LoadState
from trustfabric.domain.provenance.ingest import IDENT
from trustfabric.domain.psi import protocol as psi
from trustfabric.domain.psi.backlog import Backlog
from trustfabric.errors import AppError, BadUserInput, Forbidden, Unavailable
from trustfabric.graph.audit import AuditRepository
from trustfabric.graph.controls import ControlsRepository
from trustfabric.graph.psi import (
    DatasetRecord,
    DatasetRepository,
    JobRecord,
    NewJob,
    PsiJobRepository,
    VersionRecord,
)

log = logging.getLogger(__name__)

DATASET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Setup:
    dataset: DatasetRecord
    setup_id: str  # names dataset version, server key and size bound; an ETag for clients
    message: bytes
    max_client_items: int


class SetupCache:
    """The encoded dataset per (version, server key, size bound): ~0.9 s of CPU for 10,000
    items, so it is built once, off the event loop, and pre-seeded at start-up."""

    def __init__(self, datasets: DatasetRepository, key: psi.ServerKey, fpr: float) -> None:
        self._datasets = datasets
        self._key = key
        self._fpr = fpr
        self._setups: dict[str, bytes] = {}
        self._building: dict[str, asyncio.Task[bytes]] = {}

    def setup_id(self, dataset: DatasetRecord, max_items: int) -> str:
        return f"{dataset.version_key}|{dataset.hash}|{self._key.key_id}|{max_items}"

    async def get(self, dataset: DatasetRecord, max_items: int) -> Setup:
        if dataset.version == 0:
            raise BadUserInput(f"dataset {dataset.id} has no version yet")
        setup_id = self.setup_id(dataset, max_items)
        if setup_id not in self._setups:
            if setup_id not in self._building:  # one build, however many ask at once
                self._building[setup_id] = asyncio.create_task(self._build(dataset, max_items))
            try:
                # shielded: one caller giving up must not cancel the build for the others
                self._setups[setup_id] = await asyncio.shield(self._building[setup_id])
            finally:
                self._building.pop(setup_id, None)
        return Setup(dataset, setup_id, self._setups[setup_id], max_items)

    async def _build(self, dataset: DatasetRecord, max_items: int) -> bytes:
        items = await self._datasets.items(dataset.version_key)
        return await asyncio.to_thread(psi.create_setup, self._key, items, max_items, self._fpr)

    async def for_version(self, version: VersionRecord, max_items: int) -> Setup:
        """The setup of one particular version: what a job's response must be read with."""
        dataset = await self._datasets.get(version.dataset_id)
        return await self.get(replace(dataset, version=version.version, hash=version.hash,
                                      size=version.size, uploaded_at=version.uploaded_at),
                              max_items)

    async def preseed(self, max_items: int) -> int:
        versions = await self._datasets.current_versions()
        for version in versions:
            await self.get(await self._datasets.get(version.dataset_id), max_items)
        return len(versions)


# Shed requests are audited as counts a second, at most this many records a second ...
MAX_SHED_RECORDS = 100
# ... past which the rest of a tenant's token's counts go under this subject
OTHER_DATASETS = "*"


def check_ids(dataset_id: str, idempotency_key: str) -> None:
    """Before either is written anywhere, audit included."""
    if not DATASET_ID.match(dataset_id):
        raise BadUserInput("datasetId must be <partner>/<name>")
    if not IDENT.match(idempotency_key):
        raise BadUserInput("idempotencyKey: letters, digits, '.', '_' or '-', at most 128")


class PsiService:
    def __init__(
        self, *, datasets: DatasetRepository, jobs: PsiJobRepository,
        controls: ControlsRepository, audit: AuditRepository, setups: SetupCache,
        key: psi.ServerKey, quotas: QuotaGate, max_dataset_items: int,
        wake: asyncio.Event, queue: LoadState, write_spacing_s: float = 0.0,
    ) -> None:
        self.datasets = datasets
        self.jobs = jobs
        self.controls = controls
        self.audit = audit
        self.setups = setups
        self.key = key
        self.quotas = quotas
        self.max_dataset_items = max_dataset_items
        self._wake = wake
        self.queue = queue
        # set when this process runs a proof worker: accepted jobs are handed to it directly
        self.backlog: Backlog | None = None
        # jobs in a write under way: committed, maybe, so counted in the graph's queue, and
        # not yet in the backlog (the worker must not take them for jobs queued elsewhere)
        self.writing: Counter[str] = Counter()
        self.writer: GroupCommit[NewJob, tuple[JobRecord, bool]] = GroupCommit(
            self._create, spacing_s=write_spacing_s)
        # refusals are audited in batches too: under overload they are most of the traffic
        self.refusals: GroupCommit[dict[str, Any], None] = GroupCommit(self._audit_many)
        # and requests shed under overload are audited per second, counted by tenant, token,
        # dataset and mode: one record per request would load the database being relieved
        self._shed: Counter[tuple[str, str, str, str]] = Counter()
        self._auditing: set[asyncio.Task[None]] = set()
        # and a refused request looks for its own earlier job in one read with the others
        self.earlier: GroupCommit[str, JobRecord | None] = GroupCommit(
            jobs.by_idempotency_keys)
        # Dataset metadata read per request is the hottest read: trusted for a second, one
        # read for all who ask meanwhile, and dropped here at once when this process
        # uploads a version.
        self._dataset = alru_cache(maxsize=10_000, ttl=1.0)(self.datasets.get)

    async def weights(self, tenants: Iterable[str]) -> dict[str, float]:
        """The tenants' weights in the pilot controls. The view of the load learns them
        too, and those of every tenant with demand lately (one only shed has nothing
        queued): its Gini measures service against the weighted fair shares."""
        controls, _ = await self.controls.current()
        weights = {tenant: controls.for_tenant(tenant).weight
                   for tenant in set(tenants) | self.queue.demanding()}
        self.queue.weights.update(weights)
        return weights

    # -- PSI runs ------------------------------------------------------------------------
    async def request(
        self, caller: Caller, dataset_id: str, mode: psi.Mode, encoded_request: str,
        idempotency_key: str, setup_id: str | None,
    ) -> JobRecord:
        tenant = caller.tenant
        check_ids(dataset_id, idempotency_key)
        # first: under overload most requests are shed, and shedding must cost nothing
        # (no lookup, no decoding, no quota spent; a retry of an accepted request is told
        # to come back too)
        self.shed(caller, dataset_id, mode)
        details: dict[str, Any] = {"mode": mode.value, "datasetId": dataset_id}
        try:
            controls, _ = await self.controls.current()
            dataset = await self._dataset(dataset_id)
            details["partner"] = dataset.partner
            controls.check(tenant, mode, dataset.id, dataset.partner)
            checked = psi.check_request(encoded_request, mode, controls.min_request_size,
                                        controls.max_request_size)
            details |= {"requestSize": checked.size, "requestCommitment": checked.commitment}
            if dataset.version == 0:
                raise BadUserInput(f"dataset {dataset.id} has no version yet")
            if setup_id is not None and setup_id != self.setups.setup_id(
                dataset, controls.max_request_size
            ):
                raise BadUserInput("the setup is stale (new dataset version or server key): "
                                   "fetch datasetSetup again")
            await self.quotas.take(tenant, controls.for_tenant(tenant).quota)
        except AppError as refusal:
            # A retry of an accepted request gets its job back, whatever would refuse a new
            # one now (quota spent, controls changed, a newer dataset version). Looked up
            # only here: on the way in, the write itself finds an existing job.
            existing = await self.earlier.submit(f"{tenant}:{idempotency_key}")
            if existing is not None:
                return _replayed(existing, dataset_id, mode, encoded_request)
            self.queue.refused(tenant, refusal.code)
            await self.refusals.submit(audit_event(
                tenant=tenant, actor=caller.token_id, action="psi.request", subject=dataset_id,
                outcome="refused", reason=refusal.code, **details))
            raise
        job_id = psi.new_job_id()
        props = {
            "id": job_id, "tenant": tenant, "partner": dataset.partner, "datasetId": dataset.id,
            "datasetVersion": dataset.version, "datasetHash": dataset.hash, "mode": mode.value,
            "status": "QUEUED", "requestSize": checked.size,
            "requestCommitment": checked.commitment, "serverKeyId": self.key.key_id,
            "request": base64.b64encode(checked.raw).decode(), "createdAt": now_iso(),
            "idempotencyKey": idempotency_key,
            "setupId": self.setups.setup_id(dataset, controls.max_request_size),
            "maxClientItems": controls.max_request_size,
        }
        self.queue.queued(tenant)  # counts against the budget from now on
        created = False
        try:
            job, created = await self.writer.submit(NewJob(
                props, f"{tenant}:{idempotency_key}",
                audit_event(tenant=tenant, actor=caller.token_id, action="psi.request",
                            subject=job_id, outcome="accepted", **details,
                            idempotencyKeyHash=_hash(idempotency_key)),
            ))
        finally:
            self.queue.handed_over(tenant, created)
        if not created:  # accepted concurrently under the same key
            return _replayed(job, dataset_id, mode, encoded_request)
        self.queue.accepted(tenant)
        self._wake.set()
        return job

    async def _create(self, jobs: list[NewJob]) -> list[tuple[JobRecord, bool]]:
        writing = Counter(job.props["tenant"] for job in jobs)
        self.writing += writing
        try:
            results = await self.jobs.create_many(jobs)
        finally:
            self.writing -= writing
        if self.backlog is not None:  # in the same step: the worker never sees them missing
            for job, created in results:
                if created:
                    self.backlog.put(job.tenant, job.id)
        return results

    def shed(self, caller: Caller, dataset_id: str, mode: psi.Mode) -> None:
        """Refuses a new job under overload, the flooding tenant first (`LoadState.admit`).
        Shed requests are audited as counts a second by tenant, token, dataset and mode: one
        record each would load the database being relieved. Called before GraphQL runs
        too (`middleware.ShedOverload`), so it reads nothing and decodes nothing."""
        try:
            self.queue.admit(caller.tenant)
        except Unavailable as refusal:
            self.queue.refused(caller.tenant, refusal.code)
            if not self._shed:
                asyncio.get_running_loop().call_later(1.0, self._audit_shed)
            key = (caller.tenant, caller.token_id, dataset_id, mode.value)
            if key not in self._shed and len(self._shed) >= MAX_SHED_RECORDS - 1:
                # the dataset id is the caller's text, checked only for its form: varied,
                # it would make a record a request again
                key = (caller.tenant, caller.token_id, OTHER_DATASETS, mode.value)
            self._shed[key] += 1
            raise

    def _audit_shed(self) -> None:
        shed, self._shed = self._shed, Counter()
        task = asyncio.create_task(self._audit_later([
            audit_event(tenant=tenant, actor=actor, action="psi.request", subject=dataset_id,
                        outcome="refused", reason="OVERLOADED", mode=mode, count=count)
            for (tenant, actor, dataset_id, mode), count in shed.items()]))
        self._auditing.add(task)
        task.add_done_callback(self._auditing.discard)

    async def _audit_later(self, events: list[dict[str, Any]]) -> None:
        try:
            await self.audit.record(*events)
        except AppError:  # an outage: the counts are lost, the refusals were answered
            log.warning("could not audit requests shed under overload")

    async def _audit_many(self, events: list[dict[str, Any]]) -> list[None]:
        await self.audit.record(*events)
        return [None] * len(events)

    async def cancel(self, caller: Caller, job_id: str) -> None:
        caller.require_write()
        await self.jobs.cancel(job_id, caller.read_scope, audit_event(
            tenant=caller.tenant, actor=caller.token_id, action="psi.cancel", subject=job_id,
            outcome="cancelled"))

    # -- datasets ------------------------------------------------------------------------
    async def register_dataset(self, caller: Caller, partner: str | None, name: str,
                               items: list[str]) -> DatasetRecord:
        caller.require_write()
        partner = caller.tenant_for(partner)
        if not IDENT.match(name):
            raise BadUserInput("name: letters, digits, '.', '_' or '-', at most 128")
        dataset_id = f"{partner}/{name}"
        unique, content_hash = self._checked_items(items)
        dataset, _ = await self.datasets.add_version(
            dataset_id, unique, content_hash, new=(partner, name), audit=[
                audit_event(tenant=partner, actor=caller.token_id, action="dataset.register",
                            subject=dataset_id, outcome="created"),
                self._version_audit(caller, partner, dataset_id, content_hash, len(unique)),
            ])
        return dataset

    async def upload_version(self, caller: Caller, dataset_id: str,
                             items: list[str]) -> DatasetRecord:
        caller.require_write()
        dataset = await self.datasets.get(dataset_id)
        if caller.tenant_for(dataset.partner) != dataset.partner:
            raise Forbidden("only the partner or an operator may upload versions")
        unique, content_hash = self._checked_items(items)
        updated, _ = await self.datasets.add_version(dataset_id, unique, content_hash, audit=[
            self._version_audit(caller, dataset.partner, dataset_id, content_hash, len(unique))])
        self._dataset.cache_invalidate(dataset_id)
        return updated

    def _checked_items(self, items: list[str]) -> tuple[list[str], str]:
        unique = sorted(set(items))
        if not 1 <= len(unique) <= self.max_dataset_items:
            raise BadUserInput(f"a dataset holds 1 to {self.max_dataset_items} distinct items")
        return unique, psi.dataset_hash(unique)

    @staticmethod
    def _version_audit(caller: Caller, partner: str, dataset_id: str, content_hash: str,
                       size: int) -> dict[str, Any]:
        return audit_event(tenant=partner, actor=caller.token_id, action="dataset.version",
                           subject=dataset_id, outcome="created", datasetHash=content_hash,
                           size=size)

    # -- controls ------------------------------------------------------------------------
    async def change_controls(self, caller: Caller, edit: Any, subject: str) -> PilotControls:
        if not caller.crosses_tenants:
            raise Forbidden("only operators change pilot controls")

        def audit(before: PilotControls, after: PilotControls) -> list[dict[str, Any]]:
            return [audit_event(tenant=caller.tenant, actor=caller.token_id,
                                action="controls.change", subject=subject, outcome="changed",
                                changed=diff(before, after))]

        _, after = await self.controls.change(edit, audit)
        return after

    async def set_opt_out(self, caller: Caller, party: str, opted_out: bool) -> PilotControls:
        def edit(c: PilotControls) -> PilotControls:
            parties = set(c.opted_out) | {party} if opted_out else set(c.opted_out) - {party}
            return replace(c, opted_out=frozenset(parties))

        after = await self.change_controls(caller, edit, f"optOut:{party}")
        if opted_out:
            await self.jobs.cancel_for_party(party)
        return after


def _replayed(job: JobRecord, dataset_id: str, mode: psi.Mode, encoded: str) -> JobRecord:
    try:
        sent = psi.commitment(base64.b64decode(encoded, validate=True))
    except ValueError:
        sent = None
    if (job.request_commitment, job.dataset_id, job.mode) != (sent, dataset_id,
                                                               mode.value):
        raise BadUserInput("idempotencyKey was already used for a different request")
    return job


def _hash(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def lease_until(seconds: float) -> str:
    return iso(datetime.now(UTC) + timedelta(seconds=seconds))
